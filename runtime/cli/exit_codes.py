"""The exit codes of every command, as the CLI's modules import them; defined in
``runtime.contract.exit_codes`` so the image's service commands (``runtime.services``) share them
without importing the CLI."""

from __future__ import annotations

from runtime.contract.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

__all__ = ["EXIT_ATTENTION", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE"]
