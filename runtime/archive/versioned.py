"""The one versioned-JSON store: an S3 object holding one pydantic document, read with its ETag and the
storage clock, written only by compare-and-swap (:class:`~runtime.archive.cas.CasLoop`).

The archive (``archive/{id}.json``), processing (``processing/{C}/{id}.json``) and delivery
(``delivery/{C}/{id}.json``) stores are thin, typed uses of :class:`VersionedJson`: a key, a model, the
check that the document is the one its key names. Every reader of those documents goes through them,
the change coordinator included, so there is one load-validate-compare-and-swap path.

The storage clock (docs/design.md §2, "one clock"): lease expiry is judged on S3's time, never the local
clock of whichever process reads the object. The storage time of an answer is its ``Date`` HTTP header;
when an answer has none (some emulators), its ``Last-Modified`` (exact for a write; a lower bound for a
read of an older object); only when neither exists, the local UTC clock. :class:`StorageClock` also
keeps the offset of the last ``Date`` it saw, so a write can stamp a lease expiry on storage time.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Generic, Protocol, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from runtime.archive.cas import UNREAD, Backoff, CasLoop, Unread, is_missing
from runtime.archive.documents import _Document, utcnow
from runtime.archive.errors import ArchiveInvalid, ArchiveMissing
from runtime.aws import error_code, http_status
from runtime.contract.errors import describe_validation_error
from runtime.telemetry import MetricBatch

__all__ = [
    "StorageClock",
    "Versioned",
    "VersionedJson",
    "compact_json",
    "header_time",
    "identity_of",
    "storage_time",
]

M = TypeVar("M", bound=BaseModel)
D = TypeVar("D", bound=_Document)


def header_time(headers: dict[str, Any], name: str) -> datetime | None:
    """An HTTP-date header as an aware UTC time (None when absent or unparsable)."""
    value = headers.get(name)
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(str(value))  # naive for "-0000" or a repeated header ("d GMT, d GMT")
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # an HTTP-date is always GMT


def storage_time(response: dict[str, Any], local: Callable[[], datetime] = utcnow) -> tuple[datetime, bool]:
    """The storage time of one S3 answer, and whether it came from its ``Date`` header.

    ``Date``, else ``Last-Modified``, else the local UTC clock (see the module docstring)."""
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    date = header_time(headers, "date")
    if date is not None:
        return date, True
    modified = header_time(headers, "last-modified")
    if modified is None and isinstance(response.get("LastModified"), datetime):
        modified = response["LastModified"]
    if modified is not None:
        return modified, False
    return local(), False


class StorageClock:
    """Storage time now: the last ``Date`` S3 sent plus the monotonic time elapsed since.

    Before any ``Date`` was seen, the latest write's ``Last-Modified``, then the local clock."""

    def __init__(self, local: Callable[[], datetime] = utcnow, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._local = local
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._seen: tuple[datetime, float] | None = None

    def observe(self, at: datetime) -> None:
        with self._lock:
            self._seen = (at, self._monotonic())

    def observe_response(self, response: dict[str, Any], *, write: bool = False) -> datetime:
        return self.observe_answer(response, write=write)[0]

    def observe_answer(self, response: dict[str, Any], *, write: bool = False) -> tuple[datetime, bool]:
        """The storage time of ``response`` and whether it is its ``Date``; a ``Date``, or the time of a
        write, sets the clock (the ``Last-Modified`` of a read can be old: it is no clock)."""
        at, from_date = storage_time(response, self._local)
        if from_date or write:
            self.observe(at)
        return at, from_date

    def now(self) -> datetime:
        with self._lock:
            seen = self._seen
        if seen is None:
            return self._local()
        at, mono = seen
        return at + timedelta(seconds=max(0.0, self._monotonic() - mono))

    def attach(self, s3: Any) -> None:
        """Observe the ``Date`` of every answer of ``s3`` (the trigger HEAD, the archive GET...)."""

        def after_call(http_response: Any = None, parsed: Any = None, **_: Any) -> None:
            if isinstance(parsed, dict):
                at, from_date = storage_time(parsed, self._local)
                if from_date:
                    self.observe(at)

        with contextlib.suppress(AttributeError):  # a stub without botocore events: the store's answers still count
            s3.meta.events.register("after-call.s3", after_call)


@dataclass(frozen=True)
class Versioned(Generic[M]):
    """One document as read or written, with the ETag a compare-and-swap writes against."""

    document: M
    etag: str
    storage_now: datetime
    """Storage time of the answer that read or wrote this version (see :func:`storage_time`)."""
    dated: bool = True
    """Whether ``storage_now`` came from the answer's ``Date`` header (else ``Last-Modified`` or local)."""


Identity = Callable[[Any], str | None]
"""Given a parsed document, why it is not the one its key names (None: it is)."""


class _PerCustomer(Protocol):
    @property
    def customer_code(self) -> str: ...

    @property
    def change_id(self) -> str: ...

    def to_json_dict(self) -> dict[str, Any]: ...


def compact_json(document: _Document) -> bytes:
    """A per-customer document (processing, delivery) as stored: compact JSON of its ``to_json_dict``."""
    return json.dumps(document.to_json_dict(), separators=(",", ":")).encode()


def identity_of(code: str, change_id: str) -> Identity:
    """The check that a per-customer document is customer ``code``'s of change ``change_id``."""

    def problem(document: _PerCustomer) -> str | None:
        if (document.customer_code, document.change_id) == (code, change_id):
            return None
        return f"{document.customer_code}/{document.change_id}, not {code}/{change_id}"

    return problem


class VersionedJson(Generic[M]):
    """Documents of one model under conditional GETs and PUTs: the store every document kind uses.

    ``parse`` turns an object's bytes into the model (raising ``ValidationError``), ``dump`` the model
    into bytes; ``kind`` names the document in errors (``a valid {kind}``)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        kind: str,
        parse: Callable[[bytes], M],
        dump: Callable[[M], bytes],
        backoff: Backoff,
        clock: StorageClock | None = None,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.kind = kind
        self.backoff = backoff
        self.clock = clock or StorageClock()
        self._parse = parse
        self._dump = dump

    def load_optional(
        self, key: str, identity: Identity | None = None, *, parse: Callable[[bytes], M] | None = None
    ) -> Versioned[M] | None:
        """The document at ``key`` (None when absent); :class:`ArchiveInvalid` naming the key and the field
        when it is not a valid document of this kind or not the one the key names. ``parse``: another
        reader of the same bytes (a customer's view of a change document)."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        return self._read(key, response, identity, parse)

    def load_if_changed(self, key: str, etag: str, identity: Identity | None = None) -> Versioned[M] | None:
        """The document if its ETag is no longer ``etag``, else None: a GET ``IfNoneMatch`` that S3 answers
        with a bodiless 304 while nothing changed. Raises :class:`ArchiveMissing` when the object is gone."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key, IfNoneMatch=etag)
        except ClientError as exc:
            if http_status(exc) == 304 or error_code(exc) in {"304", "NotModified"}:
                return None
            if is_missing(exc):
                raise ArchiveMissing(f"{key} does not exist") from None
            raise
        return self._read(key, response, identity)

    def _read(
        self, key: str, response: dict[str, Any], identity: Identity | None, parse: Callable[[bytes], M] | None = None
    ) -> Versioned[M]:
        body = response["Body"].read()
        try:
            document = (parse or self._parse)(body)
        except ValidationError as exc:
            raise ArchiveInvalid(f"{key} is not a valid {self.kind}: {describe_validation_error(exc)}") from None
        problem = identity(document) if identity is not None else None
        if problem is not None:
            raise ArchiveInvalid(f"{key} holds {problem}")
        return Versioned(document, response.get("ETag", ""), *self.clock.observe_answer(response))

    def update(
        self,
        key: str,
        mutate: Callable[[Versioned[M] | None], M | None],
        *,
        create: bool,
        current: Versioned[M] | Unread | None = UNREAD,
        identity: Identity | None = None,
        metrics: MetricBatch | None = None,
    ) -> Versioned[M]:
        """Apply ``mutate`` by compare-and-swap, retrying conflicts with full-jitter backoff.

        ``current``: a version just read saves the first GET; ``None`` means "assume it does not exist":
        the first attempt is a create (``IfNoneMatch="*"``) without any GET. Returns the version written,
        or the current one when ``mutate`` decided nothing needs writing."""

        def put(updated: M, version: Versioned[M] | None) -> Versioned[M]:
            condition = {"IfMatch": version.etag} if version else {"IfNoneMatch": "*"}
            response = self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=self._dump(updated), ContentType="application/json", **condition
            )
            return Versioned(updated, response["ETag"], self.clock.observe_response(response, write=True))

        loop: CasLoop[Versioned[M], M] = CasLoop(
            key, lambda: self.load_optional(key, identity), mutate, put, self.backoff
        )
        return loop.run(create=create, current=current, metrics=metrics)


def per_customer_store(
    s3: Any, bucket: str, model: type[D], *, kind: str, backoff: Backoff, clock: StorageClock | None = None
) -> VersionedJson[D]:
    """The store of a per-customer document (processing, delivery): ``model``'s JSON in, compact JSON out."""
    parse = model.model_validate_json
    return VersionedJson(s3, bucket, kind=kind, parse=parse, dump=compact_json, backoff=backoff, clock=clock)
