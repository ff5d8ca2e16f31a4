"""How the commands fail: :func:`fail` (one ``error: …`` line, an exit code), :func:`exit_code_of` (an
``OpsError``'s exit code) and :class:`FailingCleanly` (the app's group class that applies both to
whatever escapes a command). Defined in ``runtime.cli.app``, which imports no other CLI module."""

from __future__ import annotations

from runtime.cli.app import FailingCleanly, exit_code_of, fail

__all__ = ["FailingCleanly", "exit_code_of", "fail"]
