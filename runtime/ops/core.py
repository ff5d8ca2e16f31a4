"""Operations: the runbook's procedures as functions (the CLI in ``runtime.cli.ops_commands`` renders them).

Every function here takes AWS clients (an :class:`OpsClients`) and returns a plain dataclass report,
so the commands, the sweeper and the tests share one implementation:

* :func:`health` — per customer: queue depth, DLQ depth, trigger ages, ECS running vs desired.
* :func:`verify` — one change: archive state, who processed which revision, leases, triggers left.
* :func:`stuck` — triggers older than a threshold, each with a diagnosis and what to do.
* :func:`cleanup` — delete only triggers whose result the archive records (``IfMatch`` their ETag).

Read-only except :func:`cleanup`; none of them writes ``archive/``. DLQ inspection never consumes:
messages are received hidden for a few seconds and made visible again at once (never the source
queue: receiving there would count towards its ``maxReceiveCount`` and could dead-letter live work).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import boto3
from botocore.exceptions import ClientError

from runtime import aws
from runtime.archive.documents import (
    MEETING_CANCELLED,
    MEETING_SCHEDULED,
    MEETING_UPDATED,
    PROCESSED,
    UnparseableMessage,
    parse_message_body,
    utcnow,
)
from runtime.archive.store import ArchiveError, ArchiveInvalid, ArchiveStore, VersionedArchive
from runtime.archive.triggers import DeleteOutcome, TriggerInfo, TriggerStore
from runtime.contract import keys, names
from runtime.contract.thresholds import DEFAULT_THRESHOLDS, STUCK_AFTER_SECONDS

# Exit codes shared by every ops command.
EXIT_OK = 0
EXIT_ATTENTION = 1  # the command worked and found something that needs attention
EXIT_USAGE = 2  # bad arguments or configuration (typer uses 2 for usage errors too)
EXIT_FAILED = 3  # the operation could not be done (AWS error, missing object, refused)

REDRIVE_ATTEMPTS_TAG = "ttp-redrive-attempts"
LAST_REDRIVE_TAG = "ttp-last-redrive"

SIDE_EFFECT_ENTRIES = frozenset({PROCESSED, MEETING_SCHEDULED, MEETING_UPDATED, MEETING_CANCELLED})

T = TypeVar("T")
Tracker = Callable[[Iterable[T], int | None, str], Iterable[T]]


def no_track(items: Iterable[T], total: int | None = None, description: str = "") -> Iterable[T]:
    return items


class OpsError(RuntimeError):
    """An operation that cannot be done; the message says what to do. ``exit_code`` for the CLI."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# ---- clients, time, durations -------------------------------------------------------------------


@functools.cache
def _process_session() -> boto3.session.Session:
    """One session per process: it caches the service models, so each client is cheap to create."""
    return boto3.session.Session()


class OpsClients:
    """Lazily created boto3 clients (standard retries); tests pass their own (or fault proxies)."""

    def __init__(self, session: boto3.session.Session | None = None, **clients: Any) -> None:
        self._session = session
        self._clients: dict[str, Any] = dict(clients)

    def get(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = aws.client(service, session=self._session or _process_session())
        return self._clients[service]

    @property
    def s3(self) -> Any:
        return self.get("s3")

    @property
    def sqs(self) -> Any:
        return self.get("sqs")

    @property
    def ecs(self) -> Any:
        return self.get("ecs")

    @property
    def cloudwatch(self) -> Any:
        return self.get("cloudwatch")

    @property
    def logs(self) -> Any:
        return self.get("logs")

    @property
    def sts(self) -> Any:
        return self.get("sts")


def now() -> datetime:
    return utcnow()


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``1d``, ``1h30m`` → timedelta; anything else raises ValueError."""
    cleaned = (text or "").strip().lower().replace(" ", "")
    if not cleaned or _DURATION_PART.sub("", cleaned) != "":
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit s, m, h, d or w (e.g. 90s, 15m, 2h, 1h30m)"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(cleaned))
    return timedelta(seconds=seconds)


def parse_time(text: str, *, reference: datetime | None = None) -> datetime:
    """An ISO 8601 time (naive = UTC; a bare date = its midnight UTC) or a duration ago (``2h``)."""
    value = (text or "").strip()
    try:
        return (reference or now()) - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: use ISO 8601 (2025-01-01T12:00:00Z, 2025-01-01) or a duration ago (30m, 2h, 1d)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age_seconds(then: datetime, reference: datetime) -> float:
    return max(0.0, (reference - then).total_seconds())


def to_jsonable(value: Any) -> Any:
    """Dataclasses, datetimes and enums to JSON-friendly values (``json.dumps(default=…)`` helper)."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and hasattr(value, "name") and not isinstance(value, (str, int, float)):
        return value.value
    return value


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2, sort_keys=False)


# ---- queues ------------------------------------------------------------------------------------


def queue_name_from_url(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class QueueStats:
    url: str
    visible: int | None = None
    in_flight: int | None = None
    delayed: int | None = None
    dlq_url: str | None = None
    dlq_visible: int | None = None
    dlq_in_flight: int | None = None
    max_receive_count: int | None = None
    error: str | None = None

    @property
    def dlq_depth(self) -> int:
        return (self.dlq_visible or 0) + (self.dlq_in_flight or 0)

    @property
    def waiting(self) -> int:
        return (self.visible or 0) + (self.delayed or 0)


def _int_attr(attrs: dict[str, str], name: str) -> int | None:
    value = attrs.get(name)
    return int(value) if value is not None else None


def dlq_url_for(sqs: Any, queue_url: str, attributes: dict[str, str] | None = None) -> tuple[str | None, int | None]:
    """The DLQ of a queue from its redrive policy (the truth), as a URL, and its maxReceiveCount."""
    attrs = attributes
    if attrs is None:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    raw = attrs.get("RedrivePolicy")
    if not raw:
        return None, None
    policy = json.loads(raw)
    arn = str(policy.get("deadLetterTargetArn", ""))
    parts = arn.split(":")
    if len(parts) < 6:
        return None, None
    account, name = parts[4], parts[5]
    try:
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    except ClientError:
        url = f"{queue_url.rstrip('/').rsplit('/', 1)[0]}/{name}"
    count = policy.get("maxReceiveCount")
    return url, int(count) if count is not None else None


def queue_stats(sqs: Any, queue_url: str) -> QueueStats:
    stats = QueueStats(queue_url)
    try:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"]).get("Attributes", {})
        stats.visible = _int_attr(attrs, "ApproximateNumberOfMessages")
        stats.in_flight = _int_attr(attrs, "ApproximateNumberOfMessagesNotVisible")
        stats.delayed = _int_attr(attrs, "ApproximateNumberOfMessagesDelayed")
        stats.dlq_url, stats.max_receive_count = dlq_url_for(sqs, queue_url, attrs)
        if stats.dlq_url:
            dlq = sqs.get_queue_attributes(
                QueueUrl=stats.dlq_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            ).get("Attributes", {})
            stats.dlq_visible = _int_attr(dlq, "ApproximateNumberOfMessages")
            stats.dlq_in_flight = _int_attr(dlq, "ApproximateNumberOfMessagesNotVisible")
    except ClientError as exc:
        stats.error = f"{aws.error_code(exc) or 'error'}: {exc}"
    return stats


@dataclass
class PeekedMessage:
    message_id: str
    sent_at: datetime | None
    receive_count: int | None
    triggers: list[str]
    body: str
    parse_error: str | None = None

    def mentions(self, key: str) -> bool:
        return key in self.triggers


def describe_body(body: str) -> tuple[list[str], str | None]:
    try:
        records = parse_message_body(body)
    except UnparseableMessage as exc:
        return [], str(exc)
    found = []
    for record in records:
        try:
            found.append(keys.parse_trigger_key(record.key, encoded=record.key_is_url_encoded).key)
        except keys.InvalidKeyError as exc:
            return found, f"unsafe or misrouted key: {exc}"
    return found, None


def _peeked(message: dict[str, Any], body_limit: int) -> PeekedMessage:
    attrs = message.get("Attributes", {})
    sent = attrs.get("SentTimestamp")
    body = message.get("Body", "")
    triggers, problem = describe_body(body)
    return PeekedMessage(
        message_id=message["MessageId"],
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
        receive_count=int(attrs["ApproximateReceiveCount"]) if "ApproximateReceiveCount" in attrs else None,
        triggers=triggers,
        body=body if len(body) <= body_limit else body[:body_limit] + "…",
        parse_error=problem,
    )


def peek_messages(
    sqs: Any,
    queue_url: str,
    *,
    limit: int = 100,
    hide_seconds: int = 20,
    body_limit: int = 2000,
    expected: int | None = None,
) -> list[PeekedMessage]:
    """Read up to ``limit`` messages of a queue (meant for DLQs) without consuming them.

    Each batch is received hidden for ``hide_seconds`` (so the next receive returns other messages)
    and every message is made visible again before returning, even on errors. Receiving increments
    ``ApproximateReceiveCount``; a DLQ has no redrive policy, so that changes nothing.
    """
    if expected is None:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        expected = int(attrs.get("Attributes", {}).get("ApproximateNumberOfMessages", "0"))
    target = min(limit, expected)
    seen: dict[str, PeekedMessage] = {}
    handles: list[str] = []
    empty_polls = 0
    try:
        while len(seen) < target and empty_polls < 2:
            response = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=max(1, min(10, target - len(seen))),
                VisibilityTimeout=hide_seconds,
                WaitTimeSeconds=empty_polls,  # long-poll only after an empty short poll
                AttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                empty_polls += 1
                continue
            for message in messages:
                handles.append(message["ReceiptHandle"])
                if message["MessageId"] not in seen:
                    seen[message["MessageId"]] = _peeked(message, body_limit)
    finally:
        release_messages(sqs, queue_url, handles)
    return sorted(seen.values(), key=lambda m: (m.sent_at or datetime.min.replace(tzinfo=UTC), m.message_id))


def release_messages(sqs: Any, queue_url: str, handles: list[str]) -> None:
    """Make received messages visible again (best effort: they reappear after their timeout anyway)."""
    for start in range(0, len(handles), 10):
        chunk = handles[start : start + 10]
        with contextlib.suppress(ClientError):
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)],
            )


# ---- triggers ----------------------------------------------------------------------------------


def triggers_by_customer(s3: Any, bucket: str, customer: str | None = None) -> dict[str, list[TriggerInfo]]:
    grouped: dict[str, list[TriggerInfo]] = {}
    for info in TriggerStore(s3, bucket).list(customer):
        grouped.setdefault(info.ref.customer_code, []).append(info)
    return grouped


def redrive_attempts(s3: Any, bucket: str, key: str) -> tuple[int, datetime | None]:
    """The sweeper's re-drive record on a trigger (object tags; 0 and None when untagged)."""
    try:
        tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])}
    except ClientError:
        return 0, None
    try:
        attempts = int(tags.get(REDRIVE_ATTEMPTS_TAG, "0"))
    except ValueError:
        attempts = 0
    last = None
    if LAST_REDRIVE_TAG in tags:
        try:
            last = datetime.fromisoformat(tags[LAST_REDRIVE_TAG])
        except ValueError:
            last = None
    return attempts, last


class ArchiveCache:
    """Loads each change's archive once per command; remembers missing and invalid ones too."""

    def __init__(self, store: ArchiveStore) -> None:
        self._store = store
        self._cache: dict[str, VersionedArchive | ArchiveError | None] = {}

    def get(self, change_id: str) -> VersionedArchive | ArchiveError | None:
        if change_id not in self._cache:
            try:
                self._cache[change_id] = self._store.load_optional(change_id)
            except ArchiveInvalid as exc:
                self._cache[change_id] = exc
        return self._cache[change_id]


def archive_has_history(s3: Any, bucket: str, change_id: str) -> bool:
    """Whether bucket versioning still holds earlier versions of a (deleted) archive object."""
    key = keys.archive_key(change_id)
    try:
        response = s3.list_object_versions(Bucket=bucket, Prefix=key, MaxKeys=10)
    except ClientError:
        return False
    return any(v["Key"] == key for v in response.get("Versions", []))


# ---- health ------------------------------------------------------------------------------------


@dataclass
class Finding:
    severity: str  # critical | warning | info
    check: str
    message: str
    customer: str | None = None


@dataclass
class CustomerHealth:
    customer: str
    queue_url: str
    queue: QueueStats
    oldest_message_age_seconds: float | None = None
    triggers: int = 0
    triggers_over_threshold: int = 0
    oldest_trigger_age_seconds: float = 0.0
    ecs_service: str = ""
    ecs_status: str | None = None
    ecs_running: int | None = None
    ecs_desired: int | None = None
    ecs_pending: int | None = None


@dataclass
class HealthReport:
    checked_at: datetime
    bucket: str
    threshold_seconds: float
    identity: str | None
    cluster: str | None
    cluster_status: str | None
    customers: list[CustomerHealth]
    findings: list[Finding]
    unconfigured_triggers: dict[str, int] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not any(f.severity == "critical" for f in self.findings)


def _oldest_message_ages(cloudwatch: Any, queues: dict[str, str], reference: datetime) -> dict[str, float | None]:
    """``ApproximateAgeOfOldestMessage`` (AWS/SQS, Maximum, last 15 min) per customer, or None.

    SQS's API has no such attribute; CloudWatch's metric is the honest source (it lags by ~1-5 min).
    """
    if not queues:
        return {}
    codes = sorted(queues)
    queries = [
        {
            "Id": f"q{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": [{"Name": "QueueName", "Value": queue_name_from_url(queues[code])}],
                },
                "Period": 60,
                "Stat": "Maximum",
            },
            "ReturnData": True,
        }
        for i, code in enumerate(codes)
    ]
    ages: dict[str, float | None] = dict.fromkeys(codes)
    try:
        for start in range(0, len(queries), 500):
            response = cloudwatch.get_metric_data(
                MetricDataQueries=queries[start : start + 500],
                StartTime=reference - timedelta(minutes=15),
                EndTime=reference,
                ScanBy="TimestampDescending",
            )
            for result in response.get("MetricDataResults", []):
                values = result.get("Values", [])
                if values:
                    ages[codes[int(result["Id"][1:])]] = float(values[0])
    except ClientError:
        pass
    return ages


def _describe_services(ecs: Any, cluster: str, services: list[str]) -> dict[str, dict[str, Any] | None]:
    found: dict[str, dict[str, Any] | None] = dict.fromkeys(services)
    for start in range(0, len(services), 10):
        response = ecs.describe_services(cluster=cluster, services=services[start : start + 10])
        for service in response.get("services", []):
            found[service["serviceName"]] = service
    return found


def health(
    clients: OpsClients,
    bucket: str,
    customer_queues: dict[str, str],
    *,
    cluster: str | None = names.CLUSTER_NAME,
    threshold: timedelta = timedelta(seconds=STUCK_AFTER_SECONDS),
    reference: datetime | None = None,
    use_cloudwatch: bool = True,
    track: Tracker = no_track,
) -> HealthReport:
    """One health pass. ``cluster=None`` skips ECS (single-process or local setups)."""
    at = reference or now()
    findings: list[Finding] = []
    threshold_s = threshold.total_seconds()
    # the warning alarm's share of the critical one (10 of 15 minutes), applied to this threshold
    warn_s = (
        threshold_s * DEFAULT_THRESHOLDS.trigger_age_warning_seconds / DEFAULT_THRESHOLDS.trigger_age_critical_seconds
    )

    identity = None
    try:
        identity = clients.sts.get_caller_identity().get("Arn")
    except Exception as exc:
        findings.append(
            Finding("critical", "credentials", f"cannot identify the caller ({exc}): check AWS credentials")
        )

    grouped: dict[str, list[TriggerInfo]] = {}
    try:
        grouped = triggers_by_customer(clients.s3, bucket)
    except ClientError as exc:
        findings.append(
            Finding(
                "critical",
                "bucket",
                f"cannot list s3://{bucket}/customers/ ({aws.error_code(exc)}): check "
                "TTP_BUCKET_NAME and s3:ListBucket permission",
            )
        )

    cluster_status = None
    services: dict[str, dict[str, Any] | None] = {}
    if cluster is not None:
        try:
            described = clients.ecs.describe_clusters(clusters=[cluster]).get("clusters", [])
            cluster_status = described[0]["status"] if described else "MISSING"
            if cluster_status != "ACTIVE":
                findings.append(Finding("critical", "ecs", f"ECS cluster {cluster} is {cluster_status}"))
            else:
                services = _describe_services(
                    clients.ecs, cluster, [names.service_name(code) for code in sorted(customer_queues)]
                )
        except ClientError as exc:
            cluster_status = f"error: {aws.error_code(exc)}"
            findings.append(Finding("critical", "ecs", f"cannot describe ECS cluster {cluster}: {exc}"))

    ages = _oldest_message_ages(clients.cloudwatch, customer_queues, at) if use_cloudwatch else {}

    customers: list[CustomerHealth] = []
    for code in track(sorted(customer_queues), len(customer_queues), "checking customers"):
        url = customer_queues[code]
        item = CustomerHealth(
            code, url, queue_stats(clients.sqs, url), ages.get(code), ecs_service=names.service_name(code)
        )
        q = item.queue
        if q.error:
            findings.append(Finding("critical", "queue", f"cannot read queue {url}: {q.error}", code))
        else:
            depth = q.visible or 0
            for limit, severity in DEFAULT_THRESHOLDS.queue_depth_levels():
                if depth > limit:
                    findings.append(Finding(severity, "queue", f"{depth} messages waiting (> {limit})", code))
                    break
            if q.dlq_url is None:
                findings.append(
                    Finding("warning", "dlq", "queue has no redrive policy (no DLQ): poison messages loop", code)
                )
            elif q.dlq_depth:
                findings.append(
                    Finding(
                        "critical",
                        "dlq",
                        f"{q.dlq_depth} message(s) in the DLQ: `stuck` / `dlq list --customer {code}`",
                        code,
                    )
                )
        triggers = grouped.get(code, [])
        item.triggers = len(triggers)
        trigger_ages = [age_seconds(t.last_modified, at) for t in triggers]
        item.oldest_trigger_age_seconds = max(trigger_ages, default=0.0)
        item.triggers_over_threshold = sum(1 for a in trigger_ages if a > threshold_s)
        if item.triggers_over_threshold:
            findings.append(
                Finding(
                    "critical",
                    "triggers",
                    f"{item.triggers_over_threshold} trigger(s) older than "
                    f"{_human(threshold_s)} (oldest {_human(item.oldest_trigger_age_seconds)}): run `stuck`",
                    code,
                )
            )
        elif any(a > warn_s for a in trigger_ages):
            findings.append(Finding("warning", "triggers", f"trigger(s) older than {_human(warn_s)}", code))
        if cluster is not None and cluster_status == "ACTIVE":
            _ecs_findings(item, services.get(item.ecs_service), cluster, findings)
        customers.append(item)

    unconfigured = {code: len(items) for code, items in grouped.items() if code not in customer_queues}
    for code, count in sorted(unconfigured.items()):
        findings.append(
            Finding(
                "warning",
                "triggers",
                f"{count} trigger(s) under customers/{code}/ but {code} is not in "
                "TTP_CUSTOMER_QUEUES (no queue will ever process them)",
                code,
            )
        )
    return HealthReport(at, bucket, threshold_s, identity, cluster, cluster_status, customers, findings, unconfigured)


def _ecs_findings(item: CustomerHealth, service: dict[str, Any] | None, cluster: str, findings: list[Finding]) -> None:
    code = item.customer
    if service is None or service.get("status") != "ACTIVE":
        item.ecs_status = service.get("status") if service else "MISSING"
        findings.append(
            Finding("critical", "ecs", f"ECS service {item.ecs_service} is {item.ecs_status} in {cluster}", code)
        )
        return
    item.ecs_status = service["status"]
    item.ecs_running = int(service.get("runningCount", 0))
    item.ecs_desired = int(service.get("desiredCount", 0))
    item.ecs_pending = int(service.get("pendingCount", 0))
    work_waiting = item.queue.waiting > 0 or item.triggers > 0
    if item.ecs_running == 0 and work_waiting:
        findings.append(
            Finding(
                "critical",
                "ecs",
                f"no task running (desired {item.ecs_desired}) while work waits: "
                f"`restart --customer {code}` or check the service events",
                code,
            )
        )
    elif item.ecs_running < item.ecs_desired:
        severity = "critical" if work_waiting else "warning"
        findings.append(
            Finding(
                severity,
                "ecs",
                f"{item.ecs_running} of {item.ecs_desired} tasks running"
                + (" while work waits" if work_waiting else ""),
                code,
            )
        )


def _human(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"


human_duration = _human


# ---- verify ------------------------------------------------------------------------------------


@dataclass
class LeaseView:
    owner: str
    revision: int
    expires_at: datetime
    live: bool
    emails_sent: int


@dataclass
class TriggerView:
    customer: str
    key: str
    etag: str
    last_modified: datetime
    age_seconds: float
    redrive_attempts: int = 0


@dataclass
class CustomerProgress:
    customer: str
    state: str  # processed | pending | processing | not_triggered
    processed_revisions: list[int]
    processed_at: datetime | None
    emails_sent: int | None
    lease: LeaseView | None
    trigger: TriggerView | None


@dataclass
class VerifyReport:
    change_id: str
    archive_key: str
    exists: bool
    error: str | None = None
    etag: str | None = None
    title: str | None = None
    status: str | None = None
    revision: int | None = None
    customers: list[CustomerProgress] = field(default_factory=list)
    modifications: list[dict[str, Any]] = field(default_factory=list)
    meeting: dict[str, Any] | None = None
    meeting_metadata: dict[str, Any] | None = None
    meeting_lease: LeaseView | None = None
    other_triggers: list[TriggerView] = field(default_factory=list)

    @property
    def pending(self) -> list[str]:
        return [c.customer for c in self.customers if c.state != "processed"]

    @property
    def complete(self) -> bool:
        return (
            self.exists
            and self.error is None
            and not self.pending
            and not any(c.trigger for c in self.customers)
            and not self.other_triggers
        )


def _lease_view(lease: Any, at: datetime) -> LeaseView | None:
    if lease is None:
        return None
    return LeaseView(lease.owner, lease.revision, lease.expires_at, lease.is_live(at), len(lease.emails_sent))


def verify(clients: OpsClients, bucket: str, change_id: str, *, reference: datetime | None = None) -> VerifyReport:
    at = reference or now()
    keys.validate_change_id(change_id)
    report = VerifyReport(change_id, keys.archive_key(change_id), exists=False)
    triggers: dict[str, TriggerView] = {}
    for info in TriggerStore(clients.s3, bucket).list():
        if info.ref.change_id == change_id:
            attempts, _ = redrive_attempts(clients.s3, bucket, info.ref.key)
            triggers[info.ref.customer_code] = TriggerView(
                info.ref.customer_code,
                info.ref.key,
                info.etag,
                info.last_modified,
                age_seconds(info.last_modified, at),
                attempts,
            )
    try:
        version = ArchiveStore(clients.s3, bucket).load_optional(change_id)
    except ArchiveInvalid as exc:
        report.exists, report.error = True, str(exc)
        report.other_triggers = sorted(triggers.values(), key=lambda t: t.customer)
        return report
    if version is None:
        report.error = f"{report.archive_key} does not exist"
        if archive_has_history(clients.s3, bucket, change_id):
            report.error += f" (earlier versions exist: `restore {change_id} --list`)"
        report.other_triggers = sorted(triggers.values(), key=lambda t: t.customer)
        return report
    doc = version.document
    report.exists, report.etag = True, version.etag
    report.title, report.status, report.revision = doc.title, doc.status, doc.revision
    report.modifications = [m.to_json_dict() for m in doc.modifications]
    report.meeting = doc.meeting.to_json_dict() if doc.meeting else None
    report.meeting_metadata = doc.meeting_metadata.to_json_dict() if doc.meeting_metadata else None
    report.meeting_lease = _lease_view(doc.meeting_lease, at)
    for code in doc.customers:
        revisions = sorted(
            {
                m.revision
                for m in doc.modifications
                if m.modification_type == PROCESSED and m.customer_code == code and m.revision is not None
            }
        )
        entry = doc.processed_entry(code)
        lease = _lease_view(doc.leases.get(code), at)
        trigger = triggers.pop(code, None)
        if entry is not None:
            state = "processed"
        elif lease is not None and lease.live and lease.revision == doc.revision:
            state = "processing"
        elif trigger is not None:
            state = "pending"
        else:
            state = "not_triggered"
        emails = getattr(entry, "emails_sent", None) if entry is not None else None
        report.customers.append(
            CustomerProgress(code, state, revisions, entry.timestamp if entry else None, emails, lease, trigger)
        )
    report.other_triggers = sorted(triggers.values(), key=lambda t: t.customer)
    return report


# ---- stuck -------------------------------------------------------------------------------------


DIAGNOSES = {
    "gone": "the trigger was deleted meanwhile: nothing to do",
    "archive_missing": "the archive does not exist: the processor dead-letters this trigger",
    "archive_invalid": "the archive is not a valid change document: the processor dead-letters this trigger",
    "not_listed": "the archive does not list this customer: the processor dead-letters this trigger",
    "already_processed": "the archive records this revision as processed; only the trigger delete failed",
    "in_dlq": "its message is in the dead-letter queue",
    "lease_live": "a processor holds a live lease: processing is under way",
    "lease_expired": "processing started but stopped (lease expired): the processor crashed or gave up",
    "queued": "messages are still waiting in the customer's queue: the processors are behind or down",
    "redrive_exhausted": "the sweeper re-sent its event the maximum number of times without success",
    "not_delivered": "no message anywhere: the event was never delivered or was lost",
}


def resolution(diagnosis: str, code: str, change_id: str) -> str:
    process = f"`process --customer {code} --change-id {change_id}` (with that customer's processor settings)"
    return {
        "gone": "none",
        "archive_missing": f"restore it (`restore {change_id} --before TIME`) or, if the change was withdrawn, "
        f"delete the trigger customers/{code}/{change_id}.json",
        "archive_invalid": f"restore a valid version (`restore {change_id} --list`, then `--before TIME`), "
        f"then `dlq redrive --customer {code}`",
        "not_listed": "resubmit the change with this customer in `customers`, or delete the trigger",
        "already_processed": f"`cleanup --customer {code}` (the sweeper also does it)",
        "in_dlq": f"fix the cause (`logs --customer {code} --change-id {change_id}`), then "
        f"`dlq redrive --customer {code}`",
        "lease_live": "wait for the lease to expire or the processing to finish; then `verify`",
        "lease_expired": f"check `logs --customer {code} --errors`; the message retries; or {process}",
        "queued": f"`health` (ECS running vs desired); `restart --customer {code}` if tasks are down",
        "redrive_exhausted": f"{process}; or `restart --customer {code}` and clear the tag "
        f"{REDRIVE_ATTEMPTS_TAG} to let the sweeper retry",
        "not_delivered": f"the sweeper re-drives it (`sweep`), or {process}",
    }[diagnosis]


@dataclass
class StuckTrigger:
    customer: str
    change_id: str
    key: str
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
    candidates = [
        info
        for infos in triggers_by_customer(clients.s3, bucket, customer).values()
        for info in infos
        if age_seconds(info.last_modified, at) > limit_s
    ]
    store = TriggerStore(clients.s3, bucket)
    archives = ArchiveCache(ArchiveStore(clients.s3, bucket))
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
    return StuckReport(at, limit_s, found)


def _diagnose(
    clients: OpsClients,
    bucket: str,
    info: TriggerInfo,
    store: TriggerStore,
    archives: ArchiveCache,
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
    done = [m.revision for m in doc.modifications if m.modification_type == PROCESSED and m.customer_code == code]
    if done:
        details.append(
            f"processed earlier revision(s) {sorted(r for r in done if r is not None)}, current is {doc.revision}"
        )
    url = customer_queues.get(code)
    if url is None:
        details.append(f"{code} is not in TTP_CUSTOMER_QUEUES: no queue to check")
    else:
        if code not in queues:
            queues[code] = queue_stats(clients.sqs, url)
        q = queues[code]
        if q.dlq_url and q.dlq_visible:
            if code not in dlq_messages:
                dlq_messages[code] = peek_messages(clients.sqs, q.dlq_url, limit=peek_limit, expected=q.dlq_visible)
            hits = [m for m in dlq_messages[code] if m.mentions(info.ref.key)]
            if hits:
                details.append(
                    f"{len(hits)} DLQ message(s) for this trigger, first sent {hits[0].sent_at}, "
                    f"received {hits[0].receive_count} time(s)"
                )
                return "in_dlq"
    lease = doc.leases.get(code)
    if lease is not None:
        details.append(
            f"lease of {lease.owner} for revision {lease.revision} until {lease.expires_at.isoformat()}, "
            f"{len(lease.emails_sent)} email(s) checkpointed"
        )
        if lease.is_live(at):
            return "lease_live"
    if max_attempts is not None and attempts >= max_attempts:
        return "redrive_exhausted"
    if lease is not None:
        return "lease_expired"
    if url is not None and queues[code].error is None and (queues[code].waiting or queues[code].in_flight):
        q = queues[code]
        details.append(f"queue: {q.visible} visible, {q.in_flight} in flight, {q.delayed} delayed")
        return "queued"
    return "not_delivered"


# ---- cleanup -----------------------------------------------------------------------------------


@dataclass
class CleanupItem:
    customer: str
    change_id: str
    key: str
    age_seconds: float
    action: str  # deleted | would_delete | kept | replaced | already_gone | failed
    reason: str


@dataclass
class CleanupReport:
    dry_run: bool
    items: list[CleanupItem]

    @property
    def failed(self) -> list[CleanupItem]:
        return [i for i in self.items if i.action == "failed"]

    def count(self, action: str) -> int:
        return sum(1 for i in self.items if i.action == action)


def recorded_result(loaded: VersionedArchive | ArchiveError | None, code: str) -> tuple[bool, str]:
    """Whether the archive records ``code`` as processed for its current revision (and why not)."""
    if loaded is None:
        return False, "archive missing"
    if isinstance(loaded, ArchiveError):
        return False, "archive invalid"
    doc = loaded.document
    if code not in doc.customers:
        return False, "archive does not list this customer"
    if not doc.is_processed(code, doc.revision):
        return False, f"revision {doc.revision} not processed yet"
    return True, f"archive records revision {doc.revision} as processed"


def iter_cleanup(
    s3: Any,
    bucket: str,
    infos: Iterable[TriggerInfo],
    *,
    dry_run: bool,
    reference: datetime,
    archives: ArchiveCache | None = None,
) -> Iterator[CleanupItem]:
    """For each trigger (listed before the archive is read): delete it ``IfMatch`` its listed ETag
    when the archive records the customer's result for the current revision; keep it otherwise.
    A trigger replaced by a newer submission after listing has another ETag, so it is never deleted."""
    store = TriggerStore(s3, bucket)
    cache = archives or ArchiveCache(ArchiveStore(s3, bucket))
    for info in infos:
        code, change_id = info.ref.customer_code, info.ref.change_id
        age = age_seconds(info.last_modified, reference)
        done, why = recorded_result(cache.get(change_id), code)
        if not done:
            yield CleanupItem(code, change_id, info.ref.key, age, "kept", why)
            continue
        if dry_run:
            yield CleanupItem(code, change_id, info.ref.key, age, "would_delete", why)
            continue
        outcome, detail = store.delete_if_unchanged(info)
        action = {
            DeleteOutcome.DELETED: "deleted",
            DeleteOutcome.ALREADY_GONE: "already_gone",
            DeleteOutcome.REPLACED: "replaced",
            DeleteOutcome.FAILED: "failed",
        }[outcome]
        yield CleanupItem(code, change_id, info.ref.key, age, action, detail or why)


def cleanup(
    clients: OpsClients,
    bucket: str,
    *,
    customer: str | None = None,
    dry_run: bool = False,
    reference: datetime | None = None,
    track: Tracker = no_track,
) -> CleanupReport:
    at = reference or now()
    infos = [i for items in triggers_by_customer(clients.s3, bucket, customer).values() for i in items]
    items = list(
        track(iter_cleanup(clients.s3, bucket, infos, dry_run=dry_run, reference=at), len(infos), "cleaning up")
    )
    return CleanupReport(dry_run, items)
