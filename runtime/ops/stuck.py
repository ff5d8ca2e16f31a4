"""``stuck``: for every trigger older than a threshold, why it is still there and what to do — one
diagnosis per runbook case (archive missing, result recorded — folded or not yet —, processing object
invalid, in the DLQ, lease live or expired, queued, re-drives exhausted, never delivered). An object
under ``customers/`` older than the threshold whose key is not a valid trigger is listed too
(``invalid_trigger_key``, its key verbatim): nothing else would ever act on it.

The customer's processing object ``processing/{C}/{id}.json`` (one GET per trigger) gives the result,
the lease and the progress cursor; a lease an older processor left inside the archive is still read
(``runtime.archive.archive_lease``).

Read-only. DLQs are peeked, never consumed, and the customer's own queue is never received from
(that would count towards its ``maxReceiveCount``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from runtime.archive import PROCESSED, ArchiveError, ArchiveStore, TriggerInfo, TriggerStore, archive_lease
from runtime.contract import keys
from runtime.ops.archive_view import ArchiveCache, archive_has_history
from runtime.ops.clients import OpsClients
from runtime.ops.durations import age_seconds, now
from runtime.ops.processing_view import ProcessingCache, describe_lease, describe_progress
from runtime.ops.progress import Tracker, no_track
from runtime.ops.queues import PeekedMessage, QueueStats, peek_messages, queue_stats
from runtime.ops.triggers_view import (
    INVALID_TRIGGER_KEY,
    REDRIVE_ATTEMPTS_TAG,
    InvalidTriggerObject,
    list_customer_objects,
    redrive_attempts,
)

DIAGNOSES = {
    "gone": "the trigger was deleted meanwhile: nothing to do",
    "archive_missing": "the archive does not exist: the processor dead-letters this trigger",
    "archive_invalid": "the archive is not a valid change document: the processor dead-letters this trigger",
    "not_listed": "the archive does not list this customer: the processor dead-letters this trigger",
    "already_processed": "the archive records this revision as processed; only the trigger delete failed",
    "recorded_not_folded": "the customer's processing object records this revision, but the change coordinator "
    "has not folded it into the archive yet; the trigger delete failed too",
    "processing_invalid": "the customer's processing object is not a valid processing document: the processor "
    "cannot claim or record this change",
    "in_dlq": "its message is in the dead-letter queue",
    "lease_live": "a processor holds a live lease: processing is under way",
    "lease_expired": "processing started but stopped (lease expired): the processor crashed or gave up",
    "queued": "messages are still waiting in the customer's queue: the processors are behind or down",
    "redrive_exhausted": "the sweeper re-sent its event the maximum number of times without success",
    "not_delivered": "no message anywhere: the event was never delivered or was lost",
    INVALID_TRIGGER_KEY: "the key is not a valid trigger key: no processor acts on it (its event is "
    "dead-lettered) and nothing deletes it",
}


def resolution(diagnosis: str, code: str, change_id: str) -> str:
    process = f"`process --customer {code} --change-id {change_id}` (with that customer's processor settings)"
    return {
        "gone": "none",
        "archive_missing": f"restore it (`restore {change_id} --before TIME`) or, if the change was withdrawn, "
        f"delete the trigger {keys.trigger_key(code, change_id)}",
        "archive_invalid": f"restore a valid version (`restore {change_id} --list`, then `--before TIME`), "
        f"then `dlq redrive --customer {code}`",
        "not_listed": "resubmit the change with this customer in `customers`, or delete the trigger",
        "already_processed": f"`cleanup --customer {code}` (the sweeper also does it)",
        "recorded_not_folded": f"`cleanup --customer {code}` (the sweeper also does it; the emails went out); if "
        f"`verify {change_id}` still shows it not folded after a few minutes, check the change coordinator "
        "(its queue and DLQ, `health`, its logs)",
        "processing_invalid": f"inspect {keys.processing_key(code, change_id)} (only {code}'s processor writes it): "
        "bring back its last valid version from bucket versioning (`aws s3api list-object-versions --prefix "
        f"{keys.processing_key(code, change_id)}`), then `dlq redrive --customer {code}`",
        "in_dlq": f"fix the cause (`logs --customer {code} --change-id {change_id}`), then "
        f"`dlq redrive --customer {code}`",
        "lease_live": "wait for the lease to expire or the processing to finish; then `verify`",
        "lease_expired": f"check `logs --customer {code} --errors`; the message retries; or {process}",
        "queued": f"`health` (ECS running vs desired); `restart --customer {code}` if tasks are down",
        "redrive_exhausted": f"{process}; or `restart --customer {code}` and clear the tag "
        f"{REDRIVE_ATTEMPTS_TAG} to let the sweeper retry",
        "not_delivered": f"the sweeper re-drives it (`sweep`), or {process}",
    }[diagnosis]


def invalid_key_resolution(invalid: InvalidTriggerObject) -> str:
    """What to do about an object under ``customers/`` that is not a valid trigger."""
    return (
        "if it was meant as a trigger, submit the change (`submit`); then remove this object: "
        f"`cleanup --remove-invalid {shell_word(invalid.key)}` (only that object is deleted; the bucket "
        "keeps its earlier version)"
    )


def shell_word(text: str) -> str:
    """``text`` as one shell word to paste: ``shlex.quote``, or bash/zsh ``$'…'`` when it holds characters a terminal
    would not show (a control character, an escape sequence), so the pasted key is the exact one."""
    if text.isprintable():
        return shlex.quote(text)
    escaped = "".join(
        {"\\": "\\\\", "'": "\\'"}.get(c, c) if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        for c in text
    )
    return f"$'{escaped}'"


@dataclass
class StuckTrigger:
    customer: str | None
    """None for an object whose key names no valid customer (``invalid_trigger_key``)."""
    change_id: str | None
    """None for an ``invalid_trigger_key`` object: it names no valid change."""
    key: str
    """The object key, verbatim (an ``invalid_trigger_key`` one may hold anything: escape it to show it)."""
    age_seconds: float
    diagnosis: str
    explanation: str
    resolution: str
    details: list[str] = field(default_factory=list)
    redrive_attempts: int = 0


@dataclass
class StuckReport:
    checked_at: datetime
    threshold_seconds: float
    triggers: list[StuckTrigger]

    @property
    def remaining(self) -> list[StuckTrigger]:
        """The stuck triggers still there (a trigger deleted meanwhile is ``gone``)."""
        return [t for t in self.triggers if t.diagnosis != "gone"]

    @property
    def needs_attention(self) -> bool:
        return bool(self.remaining)


def stuck(
    clients: OpsClients,
    bucket: str,
    customer_queues: dict[str, str],
    *,
    older_than: timedelta,
    customer: str | None = None,
    max_redrive_attempts: int | None = None,
    reference: datetime | None = None,
    peek_limit: int = 100,
    track: Tracker = no_track,
) -> StuckReport:
    at = reference or now()
    limit_s = older_than.total_seconds()
    listing = list_customer_objects(clients.s3, bucket, customer)
    candidates = [
        info for infos in listing.triggers.values() for info in infos if age_seconds(info.last_modified, at) > limit_s
    ]
    store = TriggerStore(clients.s3, bucket)
    archives = ArchiveCache(ArchiveStore(clients.s3, bucket))
    processing = ProcessingCache(clients.s3, bucket)
    queues: dict[str, QueueStats] = {}
    dlq_messages: dict[str, list[PeekedMessage]] = {}
    found: list[StuckTrigger] = []
    for info in track(sorted(candidates, key=lambda i: i.last_modified), len(candidates), "diagnosing"):
        code, change_id = info.ref.customer_code, info.ref.change_id
        details: list[str] = []
        attempts, last = redrive_attempts(clients.s3, bucket, info.ref.key)
        if attempts:
            details.append(f"sweeper re-drove it {attempts} time(s), last at {last.isoformat() if last else '?'}")
        diagnosis = _diagnose(
            clients,
            bucket,
            info,
            store,
            archives,
            processing,
            customer_queues,
            queues,
            dlq_messages,
            at,
            details,
            attempts,
            max_redrive_attempts,
            peek_limit,
        )
        found.append(
            StuckTrigger(
                code,
                change_id,
                info.ref.key,
                age_seconds(info.last_modified, at),
                diagnosis,
                DIAGNOSES[diagnosis],
                resolution(diagnosis, code, change_id),
                details,
                attempts,
            )
        )
    for invalid in sorted(listing.invalid, key=lambda i: i.last_modified):
        age = age_seconds(invalid.last_modified, at)
        if age > limit_s:
            found.append(
                StuckTrigger(
                    invalid.customer,
                    None,
                    invalid.key,
                    age,
                    INVALID_TRIGGER_KEY,
                    DIAGNOSES[INVALID_TRIGGER_KEY],
                    invalid_key_resolution(invalid),
                    [invalid.problem],
                )
            )
    return StuckReport(at, limit_s, found)


def _diagnose(
    clients: OpsClients,
    bucket: str,
    info: TriggerInfo,
    store: TriggerStore,
    archives: ArchiveCache,
    processing: ProcessingCache,
    customer_queues: dict[str, str],
    queues: dict[str, QueueStats],
    dlq_messages: dict[str, list[PeekedMessage]],
    at: datetime,
    details: list[str],
    attempts: int,
    max_attempts: int | None,
    peek_limit: int,
) -> str:
    code, change_id = info.ref.customer_code, info.ref.change_id
    if store.head(info.ref) is None:
        return "gone"
    loaded = archives.get(change_id)
    if loaded is None:
        if archive_has_history(clients.s3, bucket, change_id):
            details.append("bucket versioning holds earlier versions of the archive (it was deleted)")
        return "archive_missing"
    if isinstance(loaded, ArchiveError):
        details.append(str(loaded))
        return "archive_invalid"
    doc = loaded.document
    if code not in doc.customers:
        details.append(f"archive customers: {', '.join(doc.customers)}")
        return "not_listed"
    if doc.is_processed(code, doc.revision):
        return "already_processed"
    read = processing.get(code, change_id)
    if read.error is not None:
        details.append(read.error)
        if read.invalid:
            return "processing_invalid"
    result = read.result_for(doc.revision)
    if result is not None:
        details.append(
            f"{read.key}: revision {result.revision} sent to {result.sent} of {result.recipients} recipient(s), "
            f"{result.rejected} rejected, finished {result.finished_at.isoformat()}; "
            "no `processed` entry in the archive"
        )
        return "recorded_not_folded"
    done = {
        m.revision
        for m in doc.modifications
        if m.modification_type == PROCESSED and m.customer_code == code and m.revision is not None
    }
    done.update(read.recorded_revisions())
    if done:
        details.append(f"processed earlier revision(s) {sorted(done)}, current is {doc.revision}")
    url = customer_queues.get(code)
    if url is None:
        details.append(f"{code} is not in TTP_CUSTOMER_QUEUES: no queue to check")
    elif _in_dlq(clients, info, url, queues, dlq_messages, details, peek_limit):
        return "in_dlq"
    v2 = read.lease
    if v2 is not None:
        details.append(f"{read.key}: {describe_lease(v2, read.lease_live(at))}")
    if read.progress is not None:
        details.append(f"{read.key}: {describe_progress(read.progress)}")
    if v2 is not None and read.lease_live(at):
        return "lease_live"
    lease = archive_lease(doc, code)
    if lease is not None:
        details.append(lease.describe())
        if lease.is_live(at):
            return "lease_live"
    if max_attempts is not None and attempts >= max_attempts:
        return "redrive_exhausted"
    if lease is not None or v2 is not None:
        return "lease_expired"
    if url is not None and queues[code].error is None and (queues[code].waiting or queues[code].in_flight):
        q = queues[code]
        details.append(f"queue: {q.visible} visible, {q.in_flight} in flight, {q.delayed} delayed")
        return "queued"
    return "not_delivered"


def _in_dlq(
    clients: OpsClients,
    info: TriggerInfo,
    url: str,
    queues: dict[str, QueueStats],
    dlq_messages: dict[str, list[PeekedMessage]],
    details: list[str],
    peek_limit: int,
) -> bool:
    """Whether the customer's DLQ holds a message for this trigger; each queue is read once per run."""
    code = info.ref.customer_code
    if code not in queues:
        queues[code] = queue_stats(clients.sqs, url)
    q = queues[code]
    if not (q.dlq_url and q.dlq_visible):
        return False
    if code not in dlq_messages:
        dlq_messages[code] = peek_messages(clients.sqs, q.dlq_url, limit=peek_limit, expected=q.dlq_visible)
    hits = [m for m in dlq_messages[code] if m.mentions(info.ref.key)]
    if hits:
        details.append(
            f"{len(hits)} DLQ message(s) for this trigger, first sent {hits[0].sent_at}, "
            f"received {hits[0].receive_count} time(s)"
        )
    return bool(hits)
