"""The command line: ``python -m runtime …`` and the ``ttp`` console script.

Job: parse arguments, call ``runtime.ops`` / ``runtime.pipeline`` / ``runtime.archive``, render the
result (rich tables or one JSON document) and map it to an exit code. Imports every other
subpackage; nothing imports ``runtime.cli``.
"""

from __future__ import annotations

from runtime.cli import ops_commands as _ops_commands  # noqa: F401  (registers the ops commands)
from runtime.cli.app import app, main

__all__ = ["app", "main"]
