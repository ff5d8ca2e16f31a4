"""The sweeper's pass: one pass over ``customers/`` (a scheduled ECS task runs ``python -m runtime sweep``).

A trigger that was never processed is invisible to the processor; the sweeper sees it. Per customer
of ``TTP_CUSTOMER_QUEUES`` — every one, even without triggers, so the alarms see 0 rather than
missing data — it:

1. emits ``OrphanedTriggers`` (triggers older than ``TTP_STUCK_AFTER_SECONDS`` still there after this
   pass), ``OldestTriggerAge`` (seconds, 0 when none) and ``SweepErrors`` as EMF lines with a
   ``CustomerCode`` dimension. The ages come from the listing alone, before any archive read: each
   trigger is swept on its own, and one that fails (an unreadable archive, an S3 error left after
   retries, a bad document) is logged with its key and counted in ``SweepErrors`` while the others go
   on — one bad archive never hides the customer's stuck triggers from the trigger-age alarms;
2. deletes triggers whose result is recorded for the archive's current revision — a ``processed``
   entry in the archive, or the result in the customer's ``processing/{C}/{id}.json`` not folded yet
   (the processor's delete failed) — ``IfMatch`` the listed ETag, so a newer trigger is never deleted —
   only past a short grace period, not to race the processor's own step 8;
3. re-drives triggers stuck past the threshold by sending an S3-event-shaped message (the same shape
   as S3's notification, key URL-encoded) to the customer's queue: at most
   ``TTP_MAX_REDRIVE_ATTEMPTS`` times, one threshold apart. Each attempt is recorded *before* the send
   as object tags on the trigger version (``ttp-redrive-attempts``, ``ttp-last-redrive``) — tags fire
   no ``ObjectCreated`` event and need no archive write — and logged. When the attempts are exhausted it
   logs an error and leaves the trigger: the trigger-age alarms fire.

It re-drives only what processing can fix: not when the archive is missing or invalid or does not list
the customer, or the customer's processing object is invalid (the processor would dead-letter it;
``stuck`` explains it), nor while a live lease shows processing under way — in the processing object,
or one an older processor left in the archive. It never writes ``archive/`` nor ``processing/`` — it only
reads them, each archive and processing object at most once per pass.

4. **Fan-out repair.** ``submit`` writes the archive, then one trigger per customer: when a trigger PUT
   fails after the archive write, nothing under ``customers/`` shows the work, so steps 1 to 3 cannot see
   it. The sweeper lists ``archive/`` once and checks the archives modified within
   ``MISSING_TRIGGER_WINDOW_SECONDS`` (a day) and at least ``MISSING_TRIGGER_GRACE_SECONDS`` ago (5 min:
   the submitter may still be writing triggers), both in ``runtime.contract.thresholds``. For each
   customer the current revision was submitted for (its ``submitted`` entry's ``customers``) that is
   configured here, has no trigger in this pass's listing and no recorded result — no ``processed``
   entry for the revision in the archive, no result for it or a later revision in
   ``processing/{C}/{id}.json`` — and no live lease, it writes the trigger as ``submit`` does
   (``TriggerStore.put``), create-only (``IfNoneMatch="*"``: a trigger written meanwhile is never
   overwritten), logs it and counts it in ``TriggersRecreated``; the trigger's event then fires the
   customer's queue. An archive rewritten since the listing (its ETag differs) waits for the next pass.
   A cancelled change is repaired too: its revision mails the cancellation. An archive without a
   ``submitted`` entry for its current revision (not written by ``submit``) is left alone: who was
   meant to be notified is unknown. Consequence for operators: deleting an unprocessed trigger by hand
   no longer abandons the work — within the window the sweeper writes it back.

   **Cost per pass** (every ``SWEEP_INTERVAL_MINUTES``, 5 by default): one ``ListObjectsV2`` request per
   1,000 archives in the bucket — archives are kept, so this grows with history: 100 requests at
   100,000 archives, 28,800 a day ≈ $0.14/day at $0.005 per 1,000; one GET per archive modified within
   the window and past the grace — at most ``MAX_ARCHIVES_CHECKED_PER_PASS`` (2,000, the most recent
   first), and none for an archive steps 2 and 3 already read this pass (one archive cache per pass); one
   GET of a processing object per (customer, change) with neither a trigger nor a ``processed`` entry in
   the archive (none for a change whose results are all folded); one PUT per trigger re-created. So a
   change costs about 288 archive GETs in the day after its last write (≈ $0.0001 at $0.0004 per 1,000).

A stop request (``stop_requested``: SIGTERM in ``python -m runtime sweep``) ends the pass before its next
trigger or archive: every step is per trigger and complete on its own, so what was done is kept and
reported (``SweepReport.interrupted``), the customers not reached get no metrics, and the next pass
does the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any
from urllib.parse import quote_plus

from botocore.exceptions import BotoCoreError, ClientError

from runtime import aws
from runtime.archive import (
    ArchiveError,
    ArchiveStore,
    TriggerInfo,
    archive_lease,
)
from runtime.contract import names
from runtime.contract.keys import CUSTOMERS_PREFIX, TriggerRef
from runtime.contract.metric_names import MetricName
from runtime.contract.settings import OpsSettings
from runtime.contract.thresholds import MISSING_TRIGGER_GRACE_SECONDS, MISSING_TRIGGER_WINDOW_SECONDS
from runtime.ops.archive_view import ArchiveCache
from runtime.ops.cleanup import iter_cleanup
from runtime.ops.durations import age_seconds, now
from runtime.ops.processing_view import ProcessingCache
from runtime.ops.triggers_view import LAST_REDRIVE_TAG, REDRIVE_ATTEMPTS_TAG, triggers_by_customer
from runtime.sweeper.fanout import FanOutRepair
from runtime.sweeper.report import CustomerSweep, Log, SweepAction, SweepReport, telemetry_log
from runtime.telemetry import MetricsFactory

CLEANUP_GRACE_SECONDS = 120
MAX_REDRIVES_PER_PASS = 500
MAX_ARCHIVES_CHECKED_PER_PASS = 2000
"""At most this many archives (the most recently modified first) are read per pass for missing triggers."""
REDRIVE_CONFIGURATION_ID = "ttp-sweeper-redrive"
SWEEPER_PRINCIPAL = names.SWEEPER_ROLE_NAME
"""Who a re-driven event says sent it: the sweeper (its role's name), so logs tell it from S3's own."""


def s3_event_message(bucket: str, key: str, *, etag: str | None, region: str, at: datetime, attempt: int) -> str:
    """An ``ObjectCreated:Put`` notification as S3 sends it (key URL-encoded), marked as a re-drive."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/")}
    if etag:
        obj["eTag"] = etag.strip('"')
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": region,
                    "eventTime": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
                    "eventName": "ObjectCreated:Put",
                    "userIdentity": {"principalId": SWEEPER_PRINCIPAL},
                    "requestParameters": {"sourceIPAddress": SWEEPER_PRINCIPAL},
                    "responseElements": {"x-amz-request-id": f"{REDRIVE_CONFIGURATION_ID}-{attempt}"},
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": REDRIVE_CONFIGURATION_ID,
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": obj,
                    },
                }
            ]
        }
    )


@dataclass(frozen=True)
class _Pass:
    """What one pass reads once and hands to every trigger: its time, the caches, the report it fills."""

    at: datetime
    archives: ArchiveCache
    processing: ProcessingCache
    report: SweepReport


class Sweeper:
    def __init__(
        self,
        s3: Any,
        sqs: Any,
        settings: OpsSettings,
        metrics: MetricsFactory,
        *,
        region: str = "us-east-1",
        clock: Callable[[], datetime] = now,
        log: Log | None = None,
        cleanup_grace_seconds: int = CLEANUP_GRACE_SECONDS,
        max_redrives_per_pass: int = MAX_REDRIVES_PER_PASS,
        missing_trigger_grace_seconds: int = MISSING_TRIGGER_GRACE_SECONDS,
        missing_trigger_window_seconds: int = MISSING_TRIGGER_WINDOW_SECONDS,
        max_archives_checked_per_pass: int = MAX_ARCHIVES_CHECKED_PER_PASS,
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        self.s3 = s3
        self.sqs = sqs
        self.settings = settings
        self.bucket = settings.bucket_name
        self.metrics = metrics
        self.region = region
        self.clock = clock
        self.log = log or telemetry_log
        self.grace = cleanup_grace_seconds
        self.max_redrives_per_pass = max_redrives_per_pass
        self.missing_trigger_grace = missing_trigger_grace_seconds
        self.missing_trigger_window = missing_trigger_window_seconds
        self.max_archives_checked_per_pass = max_archives_checked_per_pass
        self.stop_requested = stop_requested
        """Checked before each trigger and each archive: true ends the pass there (``interrupted``)."""

    def run(self) -> SweepReport:
        at = self.clock()
        report = SweepReport(at, self.settings.stuck_after_seconds, self.settings.max_redrive_attempts)
        try:
            grouped = triggers_by_customer(self.s3, self.bucket)
        except (ClientError, BotoCoreError) as exc:
            # no metrics: the alarms treat missing data as breaching, which is what this is. No log line
            # either: the command prints this error as its one stderr line (``report.failed``)
            report.errors.append(f"cannot list s3://{self.bucket}/{CUSTOMERS_PREFIX}: {aws.describe_failure(exc)}")
            return report
        archives = ArchiveCache(ArchiveStore(self.s3, self.bucket))
        processing = ProcessingCache(self.s3, self.bucket)
        sweep = _Pass(at, archives, processing, report)
        summaries: dict[str, CustomerSweep] = {}
        for code in sorted(self.settings.customer_queues):
            if self._stopping(report):
                break
            summary = summaries[code] = CustomerSweep(code)
            try:
                self._sweep_customer(code, grouped.get(code, []), summary, sweep)
            except Exception as exc:  # one customer's failure must not stop the others' metrics
                summary.errors += 1
                report.errors.append(f"{code}: {type(exc).__name__}: {exc}")
                self.log("exception", "sweeping a customer failed", {"customer_code": code, "error": str(exc)})
        try:
            if not self._stopping(report):
                repair = FanOutRepair(
                    self.s3,
                    self.bucket,
                    self.log,
                    grace_seconds=self.missing_trigger_grace,
                    window_seconds=self.missing_trigger_window,
                    max_checked=self.max_archives_checked_per_pass,
                    stopping=self._stopping,
                )
                repair.run(grouped, archives, processing, at, summaries, report)
        except Exception as exc:  # the metrics of the listing go out whatever happened here
            report.errors.append(f"finding missing triggers: {type(exc).__name__}: {exc}")
            self.log("exception", "finding missing triggers failed", {"error": str(exc)})
        for code, summary in summaries.items():
            with self.metrics.batch(code) as batch:
                batch.add(MetricName.ORPHANED_TRIGGERS, summary.orphaned)
                batch.add(MetricName.OLDEST_TRIGGER_AGE, summary.oldest_age_seconds)
                batch.add(MetricName.SWEEP_ERRORS, summary.errors)
                batch.add(MetricName.TRIGGERS_RECREATED, summary.recreated)
                if summary.deleted:
                    batch.add(MetricName.TRIGGER_DELETION_RATE, summary.deleted)
            report.customers.append(summary)
        for code, items in sorted(grouped.items()):
            if code not in self.settings.customer_queues:
                report.unconfigured_triggers[code] = len(items)
                self.log(
                    "warning",
                    "triggers of a customer that is not configured (no queue to re-drive to)",
                    {"customer_code": code, "triggers": len(items)},
                )
        return report

    def _stopping(self, report: SweepReport) -> bool:
        if not report.interrupted and self.stop_requested():
            report.interrupted = True
            self.log("warning", "stop requested: the pass ends here, what it did is kept", {})
        return report.interrupted

    def _sweep_customer(
        self,
        code: str,
        infos: list[TriggerInfo],
        summary: CustomerSweep,
        sweep: _Pass,
    ) -> None:
        """Each trigger on its own: a failure (an unreadable archive, an S3 error left after retries, a
        bad document) is logged with the trigger's key and counted, and the other triggers go on. The
        ages come from the listing, before any read; a trigger leaves the counts only once deleted."""
        summary.triggers = len(infos)
        remaining = {i.ref.key: i for i in infos}
        for info in sorted(infos, key=lambda i: i.last_modified):
            if self._stopping(sweep.report):
                break
            age = age_seconds(info.last_modified, sweep.at)
            try:
                if self._clean_up(info, age, summary, sweep):
                    remaining.pop(info.ref.key)
                elif age >= self.settings.stuck_after_seconds:
                    action = self._redrive(info, age, sweep)
                    sweep.report.actions.append(action)
                    if action.action == "redriven":
                        summary.redriven += 1
                    elif action.action == "exhausted":
                        summary.exhausted += 1
                    elif action.action == "error":
                        summary.errors += 1
            except Exception as exc:  # this trigger only: the others, and the metrics, go on
                detail = f"{type(exc).__name__}: {exc}"
                summary.errors += 1
                sweep.report.actions.append(SweepAction(code, info.ref.change_id, info.ref.key, age, "error", detail))
                self.log(
                    "exception",
                    "sweeping a trigger failed",
                    {"customer_code": code, "change_id": info.ref.change_id, "key": info.ref.key, "error": detail},
                )
        ages = [age_seconds(i.last_modified, sweep.at) for i in remaining.values()]
        summary.oldest_age_seconds = max(ages, default=0.0)
        summary.orphaned = sum(1 for age in ages if age >= self.settings.stuck_after_seconds)

    def _clean_up(self, info: TriggerInfo, age: float, summary: CustomerSweep, sweep: _Pass) -> bool:
        """Delete the trigger when its result is recorded (past the grace period); True when it is gone
        (deleted, already gone, or replaced by a newer trigger younger than this pass saw, whose own
        event follows)."""
        if age < self.grace:
            return False
        code = info.ref.customer_code
        for item in iter_cleanup(
            self.s3,
            self.bucket,
            [info],
            dry_run=False,
            reference=sweep.at,
            archives=sweep.archives,
            processing=sweep.processing,
        ):
            if item.action in ("already_gone", "replaced"):
                return True
            if item.action not in ("deleted", "failed"):
                continue
            deleted = item.action == "deleted"
            if deleted:
                summary.deleted += 1
            else:
                summary.errors += 1
            sweep.report.actions.append(
                SweepAction(
                    code, item.change_id, item.key, item.age_seconds, "deleted" if deleted else "error", item.reason
                )
            )
            fields = {"customer_code": code, "change_id": item.change_id}
            if deleted:
                self.log(
                    "info", "deleted a trigger whose result is recorded", {**fields, "trigger_age": item.age_seconds}
                )
                return True
            self.log("error", "could not delete a recorded trigger", {**fields, "key": item.key, "error": item.reason})
        return False

    def _held_back(
        self,
        code: str,
        change_id: str,
        sweep: _Pass,
        act: Callable[[str, str, str], SweepAction],
        context: dict[str, Any],
    ) -> SweepAction | None:
        """Why processing cannot fix it now (no archive, not listed, invalid processing object, a live
        lease), or ``None`` when a re-drive may help."""
        loaded = sweep.archives.get(change_id)
        if loaded is None or isinstance(loaded, ArchiveError):
            why = "archive missing" if loaded is None else f"archive invalid: {loaded}"
            return act("not_redrivable", f"{why}; processing cannot succeed — run `stuck` for options", "error")
        doc = loaded.document
        if code not in doc.customers:
            return act("not_redrivable", "the archive does not list this customer — run `stuck`", "error")
        read = sweep.processing.get(code, change_id)
        if read.invalid:
            return act("not_redrivable", f"{read.error}; processing cannot record a result — run `stuck`", "error")
        if read.error is not None:  # unreadable (access, throttling): unknown, so the lease cannot hold it back
            self.log("warning", "cannot read a processing object", {**context, "error": read.error})
        v2 = read.lease
        if v2 is not None and read.lease_live(sweep.at):
            return act(
                "in_progress", f"lease of {v2.owner} live until {v2.expires_at.isoformat()} ({read.key})", "info"
            )
        lease = archive_lease(doc, code)
        if lease is not None and lease.is_live(sweep.at):
            return act("in_progress", f"lease of {lease.owner} live until {lease.expires_at.isoformat()}", "info")
        return None

    def _redrive(self, info: TriggerInfo, age: float, sweep: _Pass) -> SweepAction:
        ref: TriggerRef = info.ref
        code, change_id = ref.customer_code, ref.change_id
        context = {"customer_code": code, "change_id": change_id, "key": ref.key, "trigger_age": round(age)}

        def act(action: str, detail: str, level: str, attempt: int | None = None) -> SweepAction:
            self.log(level, f"stuck trigger: {detail}", {**context, "action": action, "attempt": attempt})
            return SweepAction(code, change_id, ref.key, age, action, detail, attempt)

        held = self._held_back(code, change_id, sweep, act, context)
        if held is not None:
            return held
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=ref.key)
            if head["ETag"] != info.etag:
                return act("replaced", "a newer trigger replaced it; its own event follows", "info")
            version_id = head.get("VersionId")
            target = {"VersionId": version_id} if version_id and version_id != "null" else {}
            tags = {
                t["Key"]: t["Value"]
                for t in self.s3.get_object_tagging(Bucket=self.bucket, Key=ref.key, **target).get("TagSet", [])
            }
        except ClientError as exc:
            if aws.http_status(exc) == 404:
                return act("replaced", "deleted meanwhile", "info")
            return act("error", f"cannot read the trigger: {exc}", "error")
        try:
            attempts = int(tags.get(REDRIVE_ATTEMPTS_TAG, "0"))
        except ValueError:
            attempts = 0
        limit = self.settings.max_redrive_attempts
        if attempts >= limit:
            return act(
                "exhausted",
                f"re-driven {attempts} time(s) (TTP_MAX_REDRIVE_ATTEMPTS={limit}) without success; leaving it — "
                f"`stuck` diagnoses it, `process --customer {code} --change-id {change_id}` processes it by hand",
                "error",
                attempts,
            )
        last = tags.get(LAST_REDRIVE_TAG)
        if last:
            try:
                since = age_seconds(datetime.fromisoformat(last), sweep.at)
            except ValueError:
                since = float("inf")
            if since < self.settings.stuck_after_seconds:
                return act(
                    "waiting", f"re-driven {round(since)}s ago (attempt {attempts}); giving it time", "info", attempts
                )
        if sum(1 for a in sweep.report.actions if a.action == "redriven") >= self.max_redrives_per_pass:
            return act("waiting", f"more than {self.max_redrives_per_pass} re-drives this pass; next pass", "warning")
        attempt = attempts + 1
        tags[REDRIVE_ATTEMPTS_TAG] = str(attempt)
        tags[LAST_REDRIVE_TAG] = sweep.at.isoformat()
        try:
            # record first, then send: a failed send wastes an attempt but the bound always holds
            self.s3.put_object_tagging(
                Bucket=self.bucket,
                Key=ref.key,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]},
                **target,
            )
        except ClientError as exc:
            return act("error", f"cannot record the re-drive attempt (not sent): {exc}", "error", attempt)
        body = s3_event_message(self.bucket, ref.key, etag=info.etag, region=self.region, at=sweep.at, attempt=attempt)
        try:
            self.sqs.send_message(QueueUrl=self.settings.customer_queues[code], MessageBody=body)
        except ClientError as exc:
            return act("error", f"attempt {attempt} recorded but the send failed: {exc}", "error", attempt)
        return act("redriven", f"re-sent its event (attempt {attempt} of {limit})", "warning", attempt)


def run_sweep(
    settings: OpsSettings,
    *,
    metrics_stream: IO[str] | None = None,
    log: Log | None = None,
    stop_requested: Callable[[], bool] = lambda: False,
) -> SweepReport:
    """One pass with clients from the environment (what ``python -m runtime sweep`` runs); it ends at the
    next trigger boundary once ``stop_requested()`` is true."""
    import boto3

    session = boto3.session.Session()
    sweeper = Sweeper(
        aws.client("s3", session=session),
        aws.client("sqs", session=session),
        settings,
        MetricsFactory(settings.metrics_namespace, metrics_stream),
        region=session.region_name or "us-east-1",
        log=log,
        stop_requested=stop_requested,
    )
    return sweeper.run()
