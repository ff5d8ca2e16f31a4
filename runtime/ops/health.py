"""``health``: the runbook's first look — per customer, queue and DLQ depth, trigger ages, ECS running
vs desired — graded against the alarm thresholds, so it agrees with what the alarms say.

Read-only. A check that cannot be made is itself a critical finding (with what to fix), never an
exception: the report is the answer even when AWS is partly unreachable. One exception: a bucket that
does not exist (``NoSuchBucket``) is a wrong ``TTP_BUCKET_NAME``, not an unhealthy platform, and no
report about the platform would be true; it is raised, and the command fails (exit 3) naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from runtime import aws
from runtime.archive import TriggerInfo
from runtime.contract import keys, names
from runtime.contract.thresholds import DEFAULT_THRESHOLDS, STUCK_AFTER_SECONDS
from runtime.ops.clients import OpsClients
from runtime.ops.durations import age_seconds, human_duration, now
from runtime.ops.progress import Tracker, no_track
from runtime.ops.queues import QueueStats, queue_name_from_url, queue_stats
from runtime.ops.triggers_view import INVALID_TRIGGER_KEY, CustomersListing, InvalidTriggerObject, list_customer_objects

ECS_DESCRIBE_SERVICES_MAX = 10
"""Services per ``DescribeServices`` call (an ECS API limit)."""
METRIC_DATA_QUERIES_MAX = 500
"""Queries per ``GetMetricData`` call (a CloudWatch API limit)."""


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
    invalid_triggers: list[InvalidTriggerObject] = field(default_factory=list)
    """Objects under ``customers/`` that are not valid triggers (never processed, never deleted)."""

    @property
    def healthy(self) -> bool:
        return not any(f.severity == "critical" for f in self.findings)

    @property
    def needs_attention(self) -> bool:
        return not self.healthy


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
        for start in range(0, len(queries), METRIC_DATA_QUERIES_MAX):
            response = cloudwatch.get_metric_data(
                MetricDataQueries=queries[start : start + METRIC_DATA_QUERIES_MAX],
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
    for start in range(0, len(services), ECS_DESCRIBE_SERVICES_MAX):
        response = ecs.describe_services(cluster=cluster, services=services[start : start + ECS_DESCRIBE_SERVICES_MAX])
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
    identity = _caller_identity(clients, findings)
    listing = _triggers(clients, bucket, findings)
    grouped = listing.triggers
    cluster_status, services = _cluster(clients, cluster, sorted(customer_queues), findings)
    ages = _oldest_message_ages(clients.cloudwatch, customer_queues, at) if use_cloudwatch else {}

    customers: list[CustomerHealth] = []
    for code in track(sorted(customer_queues), len(customer_queues), "checking customers"):
        url = customer_queues[code]
        item = CustomerHealth(
            code, url, queue_stats(clients.sqs, url), ages.get(code), ecs_service=names.service_name(code)
        )
        _queue_findings(item, findings)
        _trigger_findings(item, grouped.get(code, []), at, threshold_s, warn_s, findings)
        if cluster is not None and cluster_status == "ACTIVE":
            _ecs_findings(item, services.get(item.ecs_service), cluster, findings)
        customers.append(item)

    unconfigured = {code: len(items) for code, items in grouped.items() if code not in customer_queues}
    for code, count in sorted(unconfigured.items()):
        findings.append(
            Finding(
                "warning",
                "triggers",
                f"{count} trigger(s) under {keys.trigger_prefix(code)} but {code} is not in "
                "TTP_CUSTOMER_QUEUES (no queue will ever process them)",
                code,
            )
        )
    if listing.invalid:
        findings.append(
            Finding(
                "warning",
                INVALID_TRIGGER_KEY,
                f"{len(listing.invalid)} object(s) under {keys.CUSTOMERS_PREFIX} are not valid triggers (listed under "
                "invalid_triggers): no processor acts on them and nothing deletes them. Resubmit the change if one "
                "was meant, then `cleanup --remove-invalid KEY`",
            )
        )
    return HealthReport(
        at, bucket, threshold_s, identity, cluster, cluster_status, customers, findings, unconfigured, listing.invalid
    )


def _caller_identity(clients: OpsClients, findings: list[Finding]) -> str | None:
    try:
        arn: str | None = clients.sts.get_caller_identity().get("Arn")
    except Exception as exc:
        findings.append(
            Finding("critical", "credentials", f"cannot identify the caller ({exc}): check AWS credentials")
        )
        return None
    return arn


def _triggers(clients: OpsClients, bucket: str, findings: list[Finding]) -> CustomersListing:
    try:
        return list_customer_objects(clients.s3, bucket)
    except ClientError as exc:
        if aws.error_code(exc) == "NoSuchBucket":
            raise
        findings.append(
            Finding(
                "critical",
                "bucket",
                f"cannot list s3://{bucket}/{keys.CUSTOMERS_PREFIX} ({aws.error_code(exc)}): check "
                "TTP_BUCKET_NAME and s3:ListBucket permission",
            )
        )
        return CustomersListing()


def _cluster(
    clients: OpsClients, cluster: str | None, codes: list[str], findings: list[Finding]
) -> tuple[str | None, dict[str, dict[str, Any] | None]]:
    """The cluster's status and, when it is active, each customer's service (None: not checked)."""
    if cluster is None:
        return None, {}
    try:
        described = clients.ecs.describe_clusters(clusters=[cluster]).get("clusters", [])
        status: str = described[0]["status"] if described else "MISSING"
        if status != "ACTIVE":
            findings.append(Finding("critical", "ecs", f"ECS cluster {cluster} is {status}"))
            return status, {}
        return status, _describe_services(clients.ecs, cluster, [names.service_name(code) for code in codes])
    except ClientError as exc:
        findings.append(Finding("critical", "ecs", f"cannot describe ECS cluster {cluster}: {exc}"))
        return f"error: {aws.error_code(exc)}", {}


def _queue_findings(item: CustomerHealth, findings: list[Finding]) -> None:
    code, q = item.customer, item.queue
    if q.error:
        findings.append(Finding("critical", "queue", f"cannot read queue {item.queue_url}: {q.error}", code))
        return
    depth = q.visible or 0
    for limit, severity in DEFAULT_THRESHOLDS.queue_depth_levels():
        if depth > limit:
            findings.append(Finding(severity, "queue", f"{depth} messages waiting (> {limit})", code))
            break
    if q.dlq_url is None:
        findings.append(Finding("warning", "dlq", "queue has no redrive policy (no DLQ): poison messages loop", code))
    elif q.dlq_depth:
        findings.append(
            Finding(
                "critical",
                "dlq",
                f"{q.dlq_depth} message(s) in the DLQ: `stuck` / `dlq list --customer {code}`",
                code,
            )
        )


def _trigger_findings(
    item: CustomerHealth,
    triggers: list[TriggerInfo],
    at: datetime,
    threshold_s: float,
    warn_s: float,
    findings: list[Finding],
) -> None:
    code = item.customer
    item.triggers = len(triggers)
    trigger_ages = [age_seconds(t.last_modified, at) for t in triggers]
    item.oldest_trigger_age_seconds = max(trigger_ages, default=0.0)
    item.triggers_over_threshold = sum(1 for a in trigger_ages if a > threshold_s)
    if item.triggers_over_threshold:
        findings.append(
            Finding(
                "critical",
                "triggers",
                f"{item.triggers_over_threshold} trigger(s) older than {human_duration(threshold_s)} "
                f"(oldest {human_duration(item.oldest_trigger_age_seconds)}): run `stuck`",
                code,
            )
        )
    elif any(a > warn_s for a in trigger_ages):
        findings.append(Finding("warning", "triggers", f"trigger(s) older than {human_duration(warn_s)}", code))


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


PLATFORM_QUEUE_NAMES = names.PLATFORM_QUEUE_LABELS
"""The platform's own queues an operator names as ``coordinator`` and ``delivery-events`` (health, dlq)."""


def platform_queue_url(sqs: Any, label: str) -> str:
    """The URL of a :data:`PLATFORM_QUEUE_NAMES` queue in the credentials' account and region."""
    return str(sqs.get_queue_url(QueueName=PLATFORM_QUEUE_NAMES[label])["QueueUrl"])


def platform_queues(sqs: Any) -> dict[str, QueueStats]:
    """Depth and DLQ depth of the coordinator's and the delivery events' queues; a queue that is not
    found says so (its name, where it was looked for) instead of failing the whole health check."""
    found: dict[str, QueueStats] = {}
    for label, name in PLATFORM_QUEUE_NAMES.items():
        try:
            url = platform_queue_url(sqs, label)
        except ClientError as exc:
            found[label] = QueueStats(name, error=f"{name}: {aws.error_code(exc)} in this account and region")
            continue
        found[label] = queue_stats(sqs, url)
    return found
