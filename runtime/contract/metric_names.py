"""Every custom metric the pipeline emits, by its CloudWatch name (the runbook's names).

One enum for the emitters (``runtime.telemetry.metrics``), the alarms (``cdk_constructs``) and both
dashboards (``runtime.contract.dashboards``): renaming a metric here renames it everywhere at once.
"""

from __future__ import annotations

import enum

CUSTOMER_DIMENSION = "CustomerCode"


class MetricName(enum.StrEnum):
    TRIGGER_CREATION_RATE = "TriggerCreationRate"
    TRIGGER_DELETION_RATE = "TriggerDeletionRate"
    TRIGGER_AGE = "TriggerAge"
    ARCHIVE_UPDATE_SUCCESS = "ArchiveUpdateSuccess"
    ARCHIVE_UPDATE_FAILURE = "ArchiveUpdateFailure"
    PROCESSING_DURATION = "ProcessingDuration"
    PROCESSING_SUCCESS = "ProcessingSuccess"
    PROCESSING_FAILURE = "ProcessingFailure"
    EMAILS_SENT = "EmailsSent"
    TRIGGER_DELETE_FAILURE = "TriggerDeleteFailure"
    DUPLICATE_EVENTS = "DuplicateEvents"
    ORPHANED_TRIGGERS = "OrphanedTriggers"
    OLDEST_TRIGGER_AGE = "OldestTriggerAge"
    SWEEP_ERRORS = "SweepErrors"
    """Triggers (or changes) whose sweep failed in one pass (an unreadable archive, an S3 error): the
    sweeper logs each with its key and goes on with the others."""
    TRIGGERS_RECREATED = "TriggersRecreated"
    """Triggers the sweeper wrote again for a customer of a change's current revision that had neither a
    trigger nor a recorded result (a submission whose trigger write failed after its archive write)."""
    EMAILS_REJECTED = "EmailsRejected"
    RESULTS_FOLDED = "ResultsFolded"
    FOLD_LAG = "FoldLag"
    RESULTS_REFUSED = "ResultsRefused"
    """Results the change coordinator refused to fold, each a security event: for a customer the revision
    did not target (another customer's processor writing its own processing object for any change id),
    or for a revision newer than the archive's. Never written to the archive; the message is dead-lettered."""
    MEETING_RECONCILED = "MeetingReconciled"
    MEETING_FAILURE = "MeetingFailure"
    EMAILS_DELIVERED = "EmailsDelivered"
    """Recipients whose mail server accepted an email (SES ``Delivery`` events), per customer."""
    EMAILS_BOUNCED = "EmailsBounced"
    """Recipients whose email bounced (SES ``Bounce`` events, permanent and transient), per customer."""
    EMAILS_COMPLAINED = "EmailsComplained"
    """Recipients who marked an email as spam (SES ``Complaint`` events), per customer."""
    DELIVERY_EVENTS_REFUSED = "DeliveryEventsRefused"
    """Delivery events the consumer refused for good: not an SES event of this platform's emails (source,
    type, tags, account), or one whose email the bucket does not show sent (no such change, a revision
    newer than the archive's or older than its first submission, a customer the revision did not target,
    a result that sent nothing). Counted once per distinct event (not per receive) with
    ``CustomerCode=coordinator``; each is a security log line and a delivery-DLQ message."""

    @property
    def in_seconds(self) -> bool:
        """Durations are published in seconds; every other metric is a count."""
        return self in _SECONDS


_SECONDS = frozenset(
    {MetricName.TRIGGER_AGE, MetricName.PROCESSING_DURATION, MetricName.OLDEST_TRIGGER_AGE, MetricName.FOLD_LAG}
)
