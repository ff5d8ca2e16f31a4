"""The delivery store: ``delivery/{code}/{change_id}.json`` read with its ETag, written only by
compare-and-swap (:class:`~runtime.archive.cas.CasLoop`, shared with the archive and processing stores).

The delivery-event consumer is its only writer; the change coordinator's fold and ``verify`` read it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from runtime.archive.cas import UNREAD, Backoff, CasLoop, is_missing
from runtime.archive.delivery import DeliveryDocument, RecipientEvent
from runtime.archive.errors import ArchiveInvalid
from runtime.contract import keys
from runtime.contract.errors import describe_validation_error

__all__ = ["DeliveryStore", "RecordOutcome", "VersionedDelivery"]


@dataclass(frozen=True)
class VersionedDelivery:
    document: DeliveryDocument
    etag: str


@dataclass(frozen=True)
class RecordOutcome:
    """What :meth:`DeliveryStore.record` did: the events that were news (the others changed nothing)."""

    recorded: list[RecipientEvent]
    version: VersionedDelivery | None
    """The version written, or the current one when nothing was new (None: nothing given)."""


class DeliveryStore:
    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        max_attempts: int = 25,
        base_delay: float = 0.02,
        max_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._s3 = s3
        self.bucket = bucket
        self._backoff = Backoff(max_attempts, base_delay, max_delay, sleep)

    @property
    def s3(self) -> Any:
        """The S3 client: the delivery consumer reads the archive and processing objects with it too."""
        return self._s3

    def load_optional(self, code: str, change_id: str) -> VersionedDelivery | None:
        """Raises :class:`ArchiveInvalid` for an object that is no delivery document of ``code``/``change_id``."""
        key = keys.delivery_key(code, change_id)
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        try:
            document = DeliveryDocument.model_validate_json(response["Body"].read())
        except ValidationError as exc:
            raise ArchiveInvalid(f"{key} is not a valid delivery document: {describe_validation_error(exc)}") from None
        if document.change_id != change_id or document.customer_code != code:
            raise ArchiveInvalid(f"{key} holds {document.customer_code}/{document.change_id}, not {code}/{change_id}")
        return VersionedDelivery(document, response["ETag"])

    def record(self, code: str, change_id: str, events: list[RecipientEvent]) -> RecordOutcome:
        """Record the events that are news by compare-and-swap; a write only when one is.

        The decision is re-taken on every attempt, so the outcome names exactly the events the
        successful write recorded (what metrics may count)."""
        if not events:
            return RecordOutcome([], None)
        key = keys.delivery_key(code, change_id)
        recorded: list[RecipientEvent] = []

        def mutate(current: VersionedDelivery | None) -> DeliveryDocument | None:
            base = (
                current.document
                if current
                else DeliveryDocument.model_validate({"customer_code": code, "change_id": change_id})
            )
            updated, news = base.apply(events)
            recorded[:] = news
            return updated if news else None

        def put(updated: DeliveryDocument, version: VersionedDelivery | None) -> VersionedDelivery:
            condition = {"IfMatch": version.etag} if version else {"IfNoneMatch": "*"}
            response = self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(updated.to_json_dict(), separators=(",", ":")).encode(),
                ContentType="application/json",
                **condition,
            )
            return VersionedDelivery(updated, response["ETag"])

        loop: CasLoop[VersionedDelivery, DeliveryDocument] = CasLoop(
            key, lambda: self.load_optional(code, change_id), mutate, put, self._backoff
        )
        version = loop.run(create=True, current=UNREAD)
        return RecordOutcome(list(recorded), version)
