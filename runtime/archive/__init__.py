"""The change documents and the bucket that holds them.

Document models (archive, processing lease, modifications), the compare-and-swap archive store,
transient triggers and archive-first submission. Imports: ``runtime.contract``, ``runtime.telemetry``,
``runtime.aws``.

Other packages import the names below from ``runtime.archive`` itself (``tests/test_layout.py``).
"""

from runtime.archive.cas import is_conflict, is_missing
from runtime.archive.delivery import DeliveryStatus, RecipientEvent, RecipientStatus
from runtime.archive.delivery_store import DeliveryStore, RecordOutcome, VersionedDelivery
from runtime.archive.documents import (
    MEETING_CANCELLED,
    MEETING_SCHEDULED,
    MEETING_UPDATED,
    PROCESSED,
    REFUSE_NAIVE_TIMES,
    RESTORED,
    SUBMITTED,
    ArchiveDocument,
    DeliveryCounts,
    FoldHead,
    MeetingMetadata,
    ModificationEntry,
    parse_json,
    utcnow,
)
from runtime.archive.documents import ProcessingLease as ArchiveLease
from runtime.archive.errors import ArchiveConflict, ArchiveError, ArchiveInvalid, ArchiveMissing
from runtime.archive.folds import (
    FoldedResults,
    FoldSegment,
    FoldSegments,
    ResultsCache,
    VersionedHead,
    count_outcomes,
    read_listed,
    with_results,
)
from runtime.archive.processing import (
    DisplacedHolder,
    ProcessingDocument,
    ProcessingLease,
    RevisionResult,
    SendProgress,
    recipients_digest,
)
from runtime.archive.processing_store import ProcessingStore, VersionedProcessing
from runtime.archive.store import ArchiveStore, VersionedArchive
from runtime.archive.submit import InvalidSubmission, submit_change, validate_change
from runtime.archive.triggers import DeleteOutcome, TriggerInfo, TriggerStore, is_already_there
from runtime.archive.v1 import ARCHIVE_ORIGIN, ArchivedLease, archive_lease
from runtime.archive.versioned import StorageClock, Versioned, VersionedJson

__all__ = [
    "ARCHIVE_ORIGIN",
    "MEETING_CANCELLED",
    "MEETING_SCHEDULED",
    "MEETING_UPDATED",
    "PROCESSED",
    "REFUSE_NAIVE_TIMES",
    "RESTORED",
    "SUBMITTED",
    "ArchiveConflict",
    "ArchiveDocument",
    "ArchiveError",
    "ArchiveInvalid",
    "ArchiveLease",
    "ArchiveMissing",
    "ArchiveStore",
    "ArchivedLease",
    "DeleteOutcome",
    "DeliveryCounts",
    "DeliveryStatus",
    "DeliveryStore",
    "DisplacedHolder",
    "FoldHead",
    "FoldSegment",
    "FoldSegments",
    "FoldedResults",
    "InvalidSubmission",
    "MeetingMetadata",
    "ModificationEntry",
    "ProcessingDocument",
    "ProcessingLease",
    "ProcessingStore",
    "RecipientEvent",
    "RecipientStatus",
    "RecordOutcome",
    "ResultsCache",
    "RevisionResult",
    "SendProgress",
    "StorageClock",
    "TriggerInfo",
    "TriggerStore",
    "Versioned",
    "VersionedArchive",
    "VersionedDelivery",
    "VersionedHead",
    "VersionedJson",
    "VersionedProcessing",
    "archive_lease",
    "count_outcomes",
    "is_already_there",
    "is_conflict",
    "is_missing",
    "parse_json",
    "read_listed",
    "recipients_digest",
    "submit_change",
    "utcnow",
    "validate_change",
    "with_results",
]
