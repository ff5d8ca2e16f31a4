"""The base of the runtime's own exceptions and its one notion of "retryable".

Each subpackage keeps its exceptions in its own ``errors`` module (``runtime.archive.errors``,
``runtime.notify.errors``, ``runtime.pipeline.errors``); every one of them derives from
:class:`PipelineError`, so the state machine classifies a failure by reading ``retryable`` instead of
listing exception types.
"""

from __future__ import annotations

from pydantic import ValidationError


class PipelineError(RuntimeError):
    """A failure the runtime anticipates.

    ``retryable``: retrying later (the message returning to the queue, trigger and lease kept) may
    succeed. False means it will not heal on its own: the message is dead-lettered. A class sets its
    default; an instance may decide for itself (a Graph error knows from its HTTP status).
    """

    retryable: bool = True


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, naming the field: ``customers.1: invalid customer code …``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "document"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
