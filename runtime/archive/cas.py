"""The compare-and-swap loop shared by the archive store and the processing store.

Every write is an S3 conditional PUT — ``IfMatch`` the ETag we read, or ``IfNoneMatch="*"`` to
create — so a concurrent writer makes ours fail with 409/412 instead of silently overwriting it; we
then re-read and re-apply the same *mutation* (a pure function of what we read) after a full-jitter
backoff. The stores differ only in how they read, parse and write their documents.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypedDict, TypeVar

from botocore.exceptions import ClientError

from runtime.archive.errors import ArchiveConflict, ArchiveMissing
from runtime.aws import error_code, http_status
from runtime.contract.metric_names import MetricName
from runtime.telemetry import MetricBatch

_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def is_conflict(exc: ClientError) -> bool:
    return http_status(exc) in (409, 412) or error_code(exc) in _CONFLICT_CODES


def is_missing(exc: ClientError) -> bool:
    return http_status(exc) == 404 or error_code(exc) in {"NoSuchKey", "404", "NotFound"}


class Tagged(Protocol):
    @property
    def etag(self) -> str: ...


V = TypeVar("V", bound=Tagged)
D = TypeVar("D")


class Unread:
    """Marks "not read yet": the first attempt must GET (unlike ``None``, which means "absent")."""


UNREAD = Unread()


class RetryOptions(TypedDict, total=False):
    """The compare-and-swap retry settings a store takes as keyword arguments (defaults: :class:`Backoff`'s)."""

    max_attempts: int
    base_delay: float
    max_delay: float
    sleep: Callable[[float], None]
    jitter: Callable[[], float]


@dataclass
class Backoff:
    max_attempts: int = 25
    base_delay: float = 0.02
    max_delay: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = field(default=random.random)

    def pause(self, attempt: int) -> None:
        self.sleep(self.jitter() * min(self.max_delay, self.base_delay * 2**attempt))


@dataclass
class CasLoop(Generic[V, D]):
    """One compare-and-swap update: ``load`` reads (None when absent), ``mutate`` decides (None: no
    write), ``put`` writes conditionally (``IfMatch`` the given version's ETag, or ``IfNoneMatch``
    when it is None) and returns the version written."""

    key: str
    load: Callable[[], V | None]
    mutate: Callable[[V | None], D | None]
    put: Callable[[D, V | None], V]
    backoff: Backoff

    def run(
        self, *, create: bool = False, current: V | Unread | None = UNREAD, metrics: MetricBatch | None = None
    ) -> V:
        """Returns the version written, or the current one when ``mutate`` decided nothing needs writing.

        ``current``: a version just read saves the first GET; ``None`` (with ``create``) means "assume
        it does not exist": the first attempt is a create (``IfNoneMatch="*"``) without any GET."""
        for attempt in range(self.backoff.max_attempts):
            version = current if attempt == 0 and not isinstance(current, Unread) else self.load()
            if version is None and not create:
                raise ArchiveMissing(f"{self.key} does not exist")
            updated = self.mutate(version)
            if updated is None:
                if version is None:
                    raise ArchiveMissing(f"{self.key} does not exist and the update created nothing")
                return version
            try:
                written = self.put(updated, version)
            except ClientError as exc:
                if is_conflict(exc) or (version is not None and is_missing(exc)):
                    self.backoff.pause(attempt)
                    continue
                if metrics:
                    metrics.add(MetricName.ARCHIVE_UPDATE_FAILURE)
                raise
            if metrics:
                metrics.add(MetricName.ARCHIVE_UPDATE_SUCCESS)
            return written
        if metrics:
            metrics.add(MetricName.ARCHIVE_UPDATE_FAILURE)
        raise ArchiveConflict(f"{self.key}: lost compare-and-swap {self.backoff.max_attempts} times in a row")
