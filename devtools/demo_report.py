"""What the demo (:mod:`devtools.demo`) prints: the deploy, the services launched, what happened to every
change (the archive, the coordinator's folds and meeting, the emails, the delivery events) and what the
policy engine decided.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from devtools import local_run, ses_events
from devtools import sandbox as sb
from devtools.demo_processes import Worker
from devtools.enforcement import Counts, Enforcement
from devtools.local_deploy import DeployReport, event_routing
from devtools.task_agent import TaskAgent
from runtime.archive import ArchiveStore
from runtime.notify.email_tags import EmailTagError, tags_from_event

console = Console(highlight=False, width=120)


@dataclass
class Platform:
    """The deployed sample, as the demo's reports read it."""

    bucket: str
    region: str
    customers: dict[str, sb.CustomerSpec]
    delivery_queue_url: str
    delivery_dlq_url: str
    session: Any  # the operator's boto3 session


def titled_table(title: str, columns: Iterable[str]) -> Table:
    """A rich table titled ``title`` with these column headers (the demo's reports are all of this form)."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    return table


def report_deploy(report: DeployReport) -> None:
    table = titled_table(
        f"deployed on the emulator in {report.seconds:.1f}s (devtools.local_deploy)",
        ("stack", "account", "created (CloudFormation)", "emulated (API)", "recorded only"),
    )
    for stack in report.stacks:
        table.add_row(
            stack.stack_name,
            stack.account,
            str(sum(stack.created.values())),
            str(sum(stack.applied.values())),
            str(sum(stack.recorded.values())),
        )
    console.print(table)
    for note in report.notes:
        console.print(f"  note: {note}")


def report_launches(launches: list[local_run.Launch], sweep_every: float) -> None:
    table = titled_table(
        "services run as their task definitions say (devtools.local_run)",
        ("service", "account", "command", "task role (assumed)", "environment"),
    )
    for item in launches:
        service = item.plan
        schedule = f" ({service.schedule}; here every {sweep_every:.0f} s)" if service.schedule else ""
        table.add_row(
            service.name + schedule,
            service.account,
            " ".join(service.command),
            service.task_role_arn.rsplit("/", 1)[-1],
            f"{len(service.environment)} variables, {len(service.secrets)} secrets",
        )
    console.print(table)
    console.print("  overridden, and nothing else:")
    for item in launches:
        shown = {k: v for k, v in item.overrides.items() if k != "PATH"}
        console.print(f"  {item.plan.name}: " + ", ".join(f"{k}={v}" for k, v in shown.items()) + ", PATH")
    console.print("  plus, for each, its task role's credentials (sts:AssumeRole on the emulator)")


def report_policy_decisions(enforcement: Enforcement, agent: TaskAgent | None = None) -> Counts:
    """What the policy engine decided: every request of the services (their task roles, including the ECS
    agent's task-protection calls it makes as them) and of the operator was decided from the synthesized
    policies and the operator's; the deployer's (an administrator, its stacks checked by the bootstrap gate
    instead) were only counted."""
    counts = enforcement.counts
    not_decided = sum(counts.not_decided.values())
    protection = len(agent.calls) if agent is not None else 0
    console.print(
        f"policy engine (@cloud-copilot/iam-simulate): {counts.allowed} requests allowed, {counts.denied} denied "
        f"({counts.cached} answered from its cache, {counts.engine_seconds:.1f} s deciding; "
        f"{protection} of them the ECS agent's task-protection calls as a task role); "
        f"{counts.admin} by the deployer (an administrator) and {not_decided} needing no permission "
        "were not decided"
    )
    for denial in enforcement.denials:
        console.print(f"denied: {denial.message}", style="red", markup=False, highlight=False)
    return counts


def _archive(s3: Any, box: Platform, change_id: str) -> dict[str, Any]:
    """The change's archive as stored, its folded results read from the fold segments too."""
    return ArchiveStore(s3, box.bucket).read_json(change_id)


def all_settled(s3: Any, box: Platform, changes: list[dict[str, Any]], *, meetings: bool) -> bool:
    """Every listed customer's result is in the archive and every requested meeting is recorded."""
    for change in changes:
        doc = _archive(s3, box, change["change_id"])
        folded = {
            m.get("customer_code")
            for m in doc["modifications"]
            if m["modification_type"] == "processed" and m.get("revision") == doc["revision"]
        }
        if not set(doc["customers"]) <= folded:
            return False
        if meetings and doc.get("meeting") and not doc.get("meeting_metadata"):
            return False
    return True


def report(box: Platform, changes: list[dict[str, Any]], workers: list[Worker], elapsed: float) -> None:
    s3 = box.session.client("s3")
    console.rule("what happened")
    for change in changes:
        doc = _archive(s3, box, change["change_id"])
        table = titled_table(
            f"archive/{doc['change_id']}.json — revision {doc['revision']}: {doc['title']}",
            ("time", "type", "customer", "revision", "by", "detail"),
        )
        for entry in doc["modifications"]:
            detail = ""
            if entry["modification_type"] == "processed":
                detail = f"{entry.get('emails_sent', 0)} emails"
            elif entry.get("meeting_metadata"):
                detail = entry["meeting_metadata"].get("join_url") or entry["meeting_metadata"].get("meeting_id", "")
            table.add_row(
                entry["timestamp"][11:23],
                entry["modification_type"],
                entry.get("customer_code") or "",
                str(entry.get("revision", "")),
                entry["user_id"],
                detail,
            )
        console.print(table)
        leftovers = [k for k in doc if k not in {"modifications"} and k.startswith("ticket")]
        if leftovers:
            console.print(f"  unknown fields kept on every rewrite: {', '.join(f'{k}={doc[k]}' for k in leftovers)}")
    emails = titled_table(
        "emails sent (each customer's own SES, assumed role)", ("customer", "account", "recipient", "subject")
    )
    for code, spec in box.customers.items():
        for message in sb.sent_emails(spec.account, box.region):
            emails.add_row(code, spec.account, ", ".join(message["to"]), message["subject"])
    console.print(emails)
    timings = Table(title="timings")
    timings.add_column("what")
    timings.add_column("value")
    handled = [h for w in workers for h in w.handled()]
    processed = [h for h in handled if h.get("outcome") == "processed"]
    timings.add_row("submit → last trigger deleted", f"{elapsed:.2f} s")
    timings.add_row("triggers processed", str(len(processed)))
    timings.add_row("other messages handled (test events, duplicates)", str(len(handled) - len(processed)))
    timings.add_row(
        "triggers left under customers/",
        str(s3.list_objects_v2(Bucket=box.bucket, Prefix="customers/").get("KeyCount", 0)),
    )
    console.print(timings)


def report_coordinator(box: Platform, changes: list[dict[str, Any]], coordinator: Worker, settled: float) -> None:
    """The coordinator's side: results folded per archive write, the meeting, the processing objects."""
    s3 = box.session.client("s3")
    folds = titled_table(
        "change coordinator: results folded into the archive (one compare-and-swap write each)",
        ("time", "change", "results folded", "customers"),
    )
    fold_lines = coordinator.logged("results folded into the archive")
    for line in fold_lines:
        folded = line.get("folded") or []
        folds.add_row(
            str(line.get("timestamp", ""))[11:23], str(line.get("change_id")), str(len(folded)), ", ".join(folded)
        )
    console.print(folds)
    results = sum(len(line.get("folded") or []) for line in fold_lines)
    console.print(f"  {results} results folded in {len(fold_lines)} archive writes")
    for change in changes:
        doc = _archive(s3, box, change["change_id"])
        folded = sorted(
            {
                str(m.get("customer_code"))
                for m in doc["modifications"]
                if m["modification_type"] == "processed" and m.get("revision") == doc["revision"]
            }
        )
        missing = sorted(set(doc["customers"]) - set(folded))
        state = "every listed customer" if not missing else f"[red]missing {', '.join(missing)}[/red]"
        console.print(f"  {change['change_id']} revision {doc['revision']}: processed by {', '.join(folded)} ({state})")
    meetings = titled_table(
        "the change's one meeting (reconciled by the coordinator only)",
        ("change", "event id", "generation", "revision", "attendees", "cancelled"),
    )
    for change in changes:
        meta = _archive(s3, box, change["change_id"]).get("meeting_metadata")
        if meta:
            meetings.add_row(
                change["change_id"],
                str(meta.get("meeting_id", ""))[:24] + "…",
                str(meta.get("generation", 0)),
                str(meta.get("revision", "")),
                ", ".join(meta.get("attendees") or []),
                str(meta.get("cancelled", False)),
            )
    console.print(meetings)
    objects = s3.list_objects_v2(Bucket=box.bucket, Prefix="processing/").get("KeyCount", 0)
    handled = coordinator.handled()
    console.print(
        f"  coordinator: {len(handled)} events handled, {objects} processing objects in the bucket, "
        f"everything folded {settled:.2f} s after the submission"
    )


def report_delivery_events(box: Platform, *, consumer_grace: float = 5.0, drain_timeout: float = 30.0) -> None:
    """What the emulator's SES published for the emails sent (:mod:`devtools.ses_events`, as each email was
    accepted), what EventBridge delivered of them, then how the coordinator's delivery-event consumer took them.

    Without a consumer (the coordinator reads the queue only when it has one and ``TTP_DELIVERY_QUEUE_URL``
    is set) the events stay in the queue; the demo says so after ``consumer_grace`` seconds and goes on."""
    published = ses_events.published_events([spec.account for spec in box.customers.values()], region=box.region)
    accounts = {spec.account: code for code, spec in box.customers.items()}
    table = titled_table(
        "SES events published for the emails sent (configuration set → EventBridge → delivery-events queue)",
        ("customer", "recipient", "emails", "events of each email"),
    )
    per_email: dict[tuple[str, str], dict[str, list[str]]] = {}
    tagged: dict[str, int] = {}
    for event in published.events:
        detail = event["detail"]
        kind, bounce = ses_events.event_kind(detail)
        kind = f"{kind} ({bounce})" if bounce else kind
        try:
            change_id, _, revision = tags_from_event(detail["mail"]["tags"])
            change = f"{change_id} r{revision}"
        except EmailTagError:
            change = "untagged"
        for recipient in detail["mail"]["destination"]:
            key = (accounts.get(event["account"], event["account"]), recipient)
            per_email.setdefault(key, {}).setdefault(detail["mail"]["messageId"], []).append(kind)
        tagged[change] = tagged.get(change, 0) + 1
    for (code, recipient), emails in sorted(per_email.items()):
        sequences = sorted({", ".join(kinds) for kinds in emails.values()})
        table.add_row(code, recipient, str(len(emails)), " | ".join(sequences))
    console.print(table)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(published.counts().items()))
    console.print(f"  {len(published.events)} events published ({counts})")
    outcomes = Counter(d.outcome for d in list(event_routing.router.deliveries) if d.source == "aws.ses")
    console.print(
        "  EventBridge deliveries of SES events (forwarding rule → governance bus → queue): "
        + (", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())) or "none")
    )
    console.print("  events per change (from mail.tags): " + ", ".join(f"{c}: {n}" for c, n in sorted(tagged.items())))
    sqs = box.session.client("sqs")

    def waiting() -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=box.delivery_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    started = time.monotonic()
    left = waiting()
    while left and time.monotonic() - started < drain_timeout:
        if left >= len(published.events) and time.monotonic() - started >= consumer_grace:
            break  # nothing taken: no consumer reads the queue
        time.sleep(0.2)
        left = waiting()
    if not left:
        dead = sqs.get_queue_attributes(QueueUrl=box.delivery_dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
        refused = int(dead["Attributes"]["ApproximateNumberOfMessages"])
        console.print(
            f"  the coordinator consumed every delivery event in {time.monotonic() - started:.2f} s"
            + (f" ([red]{refused} dead-lettered[/red])" if refused else " (none dead-lettered)")
        )
    elif left >= len(published.events):
        console.print(
            f"  no delivery-event consumer read the queue: {left} events wait in it (the coordinator consumes "
            "them once it runs the delivery handler)"
        )
    else:
        console.print(f"  [yellow]{left} delivery events still queued after {drain_timeout:.0f} s[/yellow]")
