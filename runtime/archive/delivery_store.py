"""The delivery store: ``delivery/{code}/{change_id}.json`` read with its ETag, written only by
compare-and-swap (:class:`~runtime.archive.cas.CasLoop`, shared with the archive and processing stores).

The delivery-event consumer is its only writer; the change coordinator's fold and ``verify`` read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Unpack

from runtime.archive.cas import UNREAD, Backoff, RetryOptions
from runtime.archive.delivery import DeliveryDocument, RecipientEvent
from runtime.archive.versioned import Versioned, identity_of, per_customer_store
from runtime.contract import keys

__all__ = ["DeliveryStore", "RecordOutcome", "VersionedDelivery"]

VersionedDelivery = Versioned[DeliveryDocument]


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
        **retry: Unpack[RetryOptions],
    ) -> None:
        self.objects = per_customer_store(
            s3, bucket, DeliveryDocument, kind="delivery document", backoff=Backoff(**retry)
        )
        self.bucket = bucket

    @property
    def s3(self) -> Any:
        """The S3 client: the delivery consumer reads the archive and processing objects with it too."""
        return self.objects.s3

    def load_optional(self, code: str, change_id: str) -> VersionedDelivery | None:
        """Raises :class:`ArchiveInvalid` for an object that is no delivery document of ``code``/``change_id``."""
        return self.objects.load_optional(keys.delivery_key(code, change_id), identity_of(code, change_id))

    def record(self, code: str, change_id: str, events: list[RecipientEvent]) -> RecordOutcome:
        """Record the events that are news by compare-and-swap; a write only when one is.

        The decision is re-taken on every attempt, so the outcome names exactly the events the
        successful write recorded (what metrics may count)."""
        if not events:
            return RecordOutcome([], None)
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

        version = self.objects.update(
            keys.delivery_key(code, change_id),
            mutate,
            create=True,
            current=UNREAD,
            identity=identity_of(code, change_id),
        )
        return RecordOutcome(list(recorded), version)
