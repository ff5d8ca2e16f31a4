"""The ways a procedure can refuse, so that callers tell "cannot be done" from "bad request" from
"nothing to do" without the procedures knowing about exit codes (``runtime.cli`` maps them)."""

from __future__ import annotations


class OpsError(RuntimeError):
    """An operation that cannot be done (AWS error, missing object, refused); the message says what to do."""


class OpsUsageError(OpsError):
    """The request itself is wrong (an argument out of range): fix the arguments and run again."""


class NothingToDo(OpsError):
    """The request is valid but there is nothing to change; the message says why and what to pick instead."""
