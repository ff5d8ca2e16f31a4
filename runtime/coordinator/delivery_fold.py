"""Folding the delivery counts into the archive: ``delivery/{C}/{id}.json`` → the archive's ``delivery``.

For each ``delivery/`` object event the coordinator reads the delivery object and sets
``archive.delivery[C][R]`` to its counts for every revision R. Idempotent and order-proof: counts
replace the stored ones only when they come from a later write of the delivery object (a higher
``sequence``), so a re-fold writes nothing and a stale read folded late changes nothing. Counts for
a revision newer than the archive's, or that did not target the customer
(:func:`~runtime.coordinator.delivery_check.untargeted`), cannot come from an email the pipeline sent:
they are skipped (security log). The consumer no longer records such events; this keeps a delivery
object written before that check, or by hand, out of the archive.

Batched per change (:class:`~runtime.coordinator.batching.KeyedBatcher`, one archive
write per change at a time, like the results' fold); the processors never wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runtime.archive import ArchiveDocument, ArchiveStore, DeliveryCounts, DeliveryStore
from runtime.coordinator.batching import KeyedBatcher
from runtime.coordinator.delivery_check import untargeted
from runtime.telemetry import logger


@dataclass(frozen=True)
class CustomerDeliveryCounts:
    customer_code: str
    counts: dict[str, DeliveryCounts]
    """Revision (a string) → counts, as the delivery object holds them."""


@dataclass
class DeliveryFoldOutcome:
    folded: list[tuple[str, str]] = field(default_factory=list)
    """``(customer, revision)`` pairs this fold's write set."""
    refused: list[tuple[str, str]] = field(default_factory=list)
    """Pairs for a revision newer than the archive's, or that the revision did not target: not folded."""
    written: bool = False


def fold_counts(doc: ArchiveDocument, items: list[CustomerDeliveryCounts], outcome: DeliveryFoldOutcome) -> bool:
    """Set the newer counts of ``items`` on ``doc`` (in place); whether anything changed."""
    outcome.folded, outcome.refused = [], []
    delivery = {code: dict(revisions) for code, revisions in doc.delivery.items()}
    for item in items:
        for revision, counts in item.counts.items():
            if not revision.isdigit() or untargeted(doc, item.customer_code, int(revision)) is not None:
                outcome.refused.append((item.customer_code, revision))
                continue
            stored = delivery.get(item.customer_code, {}).get(revision)
            if stored is None or counts.sequence > stored.sequence:
                delivery.setdefault(item.customer_code, {})[revision] = counts
                outcome.folded.append((item.customer_code, revision))
    if outcome.folded:
        doc.delivery = delivery
    return bool(outcome.folded)


class DeliveryFold:
    """Reads delivery objects and folds their counts into the archive, batched per change."""

    def __init__(self, deliveries: DeliveryStore, archive: ArchiveStore, linger_seconds: float) -> None:
        self.deliveries = deliveries
        self.archive = archive
        self.batcher: KeyedBatcher[str, CustomerDeliveryCounts, DeliveryFoldOutcome] = KeyedBatcher(
            self._write, linger_seconds
        )

    def _write(self, change_id: str, items: list[CustomerDeliveryCounts]) -> DeliveryFoldOutcome:
        outcome = DeliveryFoldOutcome()

        def mutate(doc: ArchiveDocument | None) -> ArchiveDocument | None:
            assert doc is not None  # the store raises ArchiveMissing first
            return doc if fold_counts(doc, items, outcome) else None

        self.archive.update(change_id, mutate)
        outcome.written = bool(outcome.folded)
        if outcome.folded:
            logger.info(
                "delivery counts folded into the archive",
                extra={"change_id": change_id, "folded": [f"{c}@{r}" for c, r in outcome.folded]},
            )
        for code, revision in outcome.refused:
            logger.error(
                "refused delivery counts for a revision the archive does not have or that did not target the customer",
                extra={"change_id": change_id, "customer": code, "revision": revision, "security": True},
            )
        return outcome

    def submit(self, change_id: str, item: CustomerDeliveryCounts) -> DeliveryFoldOutcome:
        return self.batcher.submit(change_id, [item])
