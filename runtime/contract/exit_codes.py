"""The exit codes of every command, one meaning each, so scripts and the runbook can branch on them.

The procedures in ``runtime.ops`` return reports and raise ``OpsError``; only the CLI (``runtime.cli``)
and the image's service commands (``runtime.services``, which run without the CLI) turn those into
these numbers. They live in the contract so that both reach them without importing typer.
"""

from __future__ import annotations

EXIT_OK = 0
"""Done, nothing needs attention."""
EXIT_ATTENTION = 1
"""Done, and something needs attention (unhealthy, pending, stuck, DLQ not empty, refused)."""
EXIT_USAGE = 2
"""Bad arguments or configuration (typer uses 2 for usage errors too)."""
EXIT_FAILED = 3
"""The operation could not be done (AWS error, missing object); nothing was half-written."""
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C, 128 + SIGINT as shells report it); what was done is kept (see the message)."""
