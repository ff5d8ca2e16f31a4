"""Structured JSON logging (Powertools Logger) with per-thread context.

Every line carries the customer code (appended once per process) and, while a message is being
worked on, its change id and SQS message id (thread-local keys, since one process works on several
messages at once).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

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
