"""Structured JSON logging (Powertools Logger) with per-thread context.

Every line carries the customer code (appended once per process) and, while a message is being
worked on, its change id and SQS message id (thread-local keys, since one process works on several
messages at once).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from aws_lambda_powertools import Logger

SERVICE = "transient-trigger-pipeline"

# An invalid TTP_LOG_LEVEL must not stop the import: the settings model reports it by name.
_LEVEL = os.environ.get("TTP_LOG_LEVEL", "INFO")
logger = Logger(service=SERVICE, level=_LEVEL if _LEVEL in {"DEBUG", "INFO", "WARNING", "ERROR"} else "INFO", utc=True)


@contextmanager
def log_context(**keys: object) -> Iterator[None]:
    """Add ``keys`` to every line logged by this thread until the block ends."""
    present = {k: v for k, v in keys.items() if v is not None}
    logger.thread_safe_append_keys(**present)
    try:
        yield
    finally:
        logger.thread_safe_remove_keys(list(present))


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of the write (not the one at import)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def logs_to_stderr() -> IO[str] | None:
    """Send the log lines to stderr; returns the previous stream for :func:`restore_log_stream`.

    For the CLI's one-shot commands, whose stdout holds their output only. The services keep
    logging on stdout (ECS's log driver reads both streams; nothing changes for them)."""
    handler = logger.registered_handler
    if not isinstance(handler, logging.StreamHandler):
        return None
    previous: IO[str] | None = handler.setStream(_CurrentStderr())
    return previous


def restore_log_stream(previous: IO[str] | None) -> None:
    handler = logger.registered_handler
    if previous is not None and isinstance(handler, logging.StreamHandler):
        handler.setStream(previous)
