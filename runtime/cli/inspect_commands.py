"""The read-only diagnosis commands of the runbook: ``health`` (is the platform well?), ``verify`` (has
this change reached everyone?) and ``stuck`` (why is this trigger still there, and what to do).

Each parses its options, calls the procedure in ``runtime.ops``, renders the report (a table, or one
JSON document with ``--json``) and maps it to an exit code (``runtime.cli.exit_codes``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from runtime.cli import options, render
from runtime.cli.errors import fail
from runtime.cli.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from runtime.cli.options import JsonOption
from runtime.contract import keys
from runtime.contract.settings import BucketSettings, OpsSettings
from runtime.ops.clients import OpsClients
from runtime.ops.durations import age_seconds, human_duration
from runtime.ops.health import HealthReport, platform_queues
from runtime.ops.health import health as check_health
from runtime.ops.last_fold import LastFold, last_fold
from runtime.ops.queues import QueueStats
from runtime.ops.stuck import stuck as find_stuck
from runtime.ops.verify import CustomerProgress, VerifyReport
from runtime.ops.verify import verify as verify_change


def health(
    customer: Annotated[list[str] | None, typer.Option("--customer", "-c", help="Only these customers.")] = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Trigger age threshold (default TTP_STUCK_AFTER_SECONDS).")
    ] = None,
    skip_ecs: Annotated[bool, typer.Option("--skip-ecs", help="Do not check ECS (local or non-ECS setups).")] = False,
    no_cloudwatch: Annotated[
        bool, typer.Option("--no-cloudwatch", help="Do not read the queues' oldest-message age from CloudWatch.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Per customer: queue depth, DLQ depth, trigger ages, ECS running vs desired; the coordinator's and the
    delivery events' queues and DLQs, and the coordinator's last fold. Exit 1 when unhealthy."""
    override = options.duration(older_than, "--older-than") if older_than else None
    settings = options.settings(OpsSettings)
    queues = dict(settings.customer_queues)
    if customer:
        queues = {code: queues[options.configured_customer(settings, code)] for code in customer}
    threshold = override if override is not None else timedelta(seconds=settings.stuck_after_seconds)
    clients = OpsClients()
    report = check_health(
        clients,
        settings.bucket_name,
        queues,
        cluster=None if skip_ecs else settings.cluster_name,
        threshold=threshold,
        use_cloudwatch=not no_cloudwatch,
        track=render.tracker(),
    )
    platform = platform_queues(clients.sqs)
    fold = last_fold(clients.s3, settings.bucket_name, report.checked_at)
    platform_attention = any(q.dlq_depth for q in platform.values())
    if as_json:
        render.emit(
            {
                "healthy": report.healthy,
                **render.to_jsonable(report),
                "platform_queues": render.to_jsonable(platform),
                "coordinator_last_fold": render.to_jsonable(fold),
            }
        )
    else:
        console = render.console()
        _print_customers_health(console, report)
        _print_platform_health(console, platform, fold)
        critical = sum(1 for f in report.findings if f.severity == "critical")
        console.print("[bold green]HEALTHY[/]" if report.healthy else f"[bold red]UNHEALTHY[/] ({critical} critical)")
        if platform_attention:
            console.print("a platform DLQ holds messages: `dlq list --customer coordinator` (or delivery-events)")
    raise typer.Exit(EXIT_ATTENTION if report.needs_attention or platform_attention else EXIT_OK)


def _print_customers_health(console: Console, report: HealthReport) -> None:
    console.print(
        f"bucket s3://{report.bucket}  caller {report.identity or '?'}  cluster "
        f"{report.cluster or '(skipped)'} {report.cluster_status or ''}  trigger threshold "
        f"{human_duration(report.threshold_seconds)}"
    )
    table = Table(title="Customers")
    for column in (
        "customer",
        "visible",
        "in flight",
        "oldest msg",
        "DLQ",
        "triggers",
        "> threshold",
        "oldest trigger",
        "ECS running/desired",
    ):
        table.add_column(column, justify="left" if column == "customer" else "right")
    for item in report.customers:
        q = item.queue
        ecs = (
            "-"
            if item.ecs_status is None
            else (f"{item.ecs_running}/{item.ecs_desired}" if item.ecs_running is not None else item.ecs_status)
        )
        table.add_row(
            item.customer,
            str(q.visible) if q.visible is not None else "?",
            str(q.in_flight) if q.in_flight is not None else "?",
            render.age(item.oldest_message_age_seconds),
            "-" if q.dlq_url is None else str(q.dlq_depth),
            str(item.triggers),
            str(item.triggers_over_threshold),
            render.age(item.oldest_trigger_age_seconds) if item.triggers else "-",
            ecs,
        )
    console.print(table)
    for invalid in report.invalid_triggers:
        console.print(
            f"[yellow]{invalid.diagnosis}[/] {render.untrusted(invalid.key)} "
            f"({human_duration(age_seconds(invalid.last_modified, report.checked_at))} old): "
            f"{render.untrusted(invalid.problem)}"
        )
    for finding in report.findings:
        where = f"{finding.customer}: " if finding.customer else ""
        console.print(
            f"[{render.SEVERITY_STYLE[finding.severity]}]{finding.severity.upper():8}[/] {where}"
            f"{render.untrusted(finding.message)}"
        )


def _print_platform_health(console: Console, platform: dict[str, QueueStats], fold: LastFold) -> None:
    table = Table(title="Platform queues")
    for column in ("queue", "visible", "in flight", "DLQ", "last fold", "problem"):
        table.add_column(column, justify="left" if column in ("queue", "last fold", "problem") else "right")
    for label, q in platform.items():
        dlq = "-" if q.dlq_url is None else str(q.dlq_depth)
        problems = [q.error or ""]
        folded = "-"
        if label == "coordinator":
            folded = _last_fold_text(fold)
            problems.append(fold.error or "")
        problem = "; ".join(p for p in problems if p)
        table.add_row(label, _count(q.visible), _count(q.in_flight), dlq, folded, render.untrusted(problem))
    console.print(table)


def _last_fold_text(fold: LastFold) -> str:
    if fold.error:
        return "?"
    if fold.at is None or fold.age_seconds is None:
        return f"none (newest {fold.archives_read} of {fold.archives} archives)"
    return f"{human_duration(fold.age_seconds)} ago ({render.untrusted(fold.change_id or '')})"


def delivery_summary(counts: dict[str, int] | None) -> str:
    """One customer's delivery counts in words, e.g. ``3 delivered, 1 bounced (1 permanent, 0 transient)…``."""
    if counts is None:
        return "no delivery events yet"
    return (
        f"{counts['delivered']} delivered, {counts['bounced']} bounced ({counts['bounced_permanent']} permanent, "
        f"{counts['bounced_transient']} transient), {counts['complained']} complained, {counts['delayed']} delayed, "
        f"{counts['unsubscribed']} unsubscribed, {counts['rejected']} rejected, {counts['rendering_failed']} "
        f"rendering failed, {counts['sent']} sent without outcome yet"
    )


def _print_delivery(console: Console, report: VerifyReport) -> None:
    table = Table(title=f"Delivery (revision {report.revision}, SES events)")
    for column in ("customer", "delivery", "source"):
        table.add_column(column, no_wrap=column == "customer")
    for c in report.customers:
        view = c.delivery
        if view is None:
            continue
        source = {"delivery": view.key, "archive": "archive (folded)", "none": "-"}[view.source]
        if view.source == "delivery" and view.counts is not None and not view.folded:
            source += " (not folded yet)"
        table.add_row(c.customer, delivery_summary(view.counts), render.untrusted(source))
    console.print(table)
    if report.recipients is None:
        return
    listing = render.table(
        "Recipients: last delivery event", ("customer", "address", "status", "time", "rev", "SES message id")
    )
    for r in report.recipients:
        status = r.status
        if r.bounce_type:
            status += f" ({r.bounce_type}{', ' + r.bounce_subtype if r.bounce_subtype else ''})"
        listing.add_row(
            r.customer,
            render.untrusted(r.address),
            render.untrusted(status),
            f"{r.event_time:%Y-%m-%d %H:%M:%S}Z",
            str(r.revision),
            render.untrusted(r.message_id),
        )
    console.print(listing)


def verify(
    change_id: Annotated[str, typer.Argument(help="Change id (archive/{id}.json).")],
    recipients: Annotated[
        bool, typer.Option("--recipients", help="List each recipient's last delivery event (SES events).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Per customer: state, revision, sent/rejected, lease and progress (processing object) beside the archive,
    and the delivery outcomes (delivered / bounced / complained / delayed / unsubscribed) of its emails.

    Exit 0 when every customer's result for the current revision is recorded and folded into the
    archive and no trigger is left, 1 while something is pending (or not folded yet, or a processing
    object is invalid), 3 when the archive is missing or invalid.
    """
    try:
        keys.validate_change_id(change_id)
    except keys.InvalidKeyError as exc:
        fail(str(exc), EXIT_USAGE)
    settings = options.settings(BucketSettings)
    report = verify_change(OpsClients(), settings.bucket_name, change_id, recipients=recipients)
    code = EXIT_FAILED if report.failed else (EXIT_ATTENTION if report.needs_attention else EXIT_OK)
    if as_json:
        render.emit(
            {
                "complete": report.complete,
                "pending": report.pending,
                "not_folded": report.not_folded,
                **render.to_jsonable(report),
            }
        )
        raise typer.Exit(code)
    console = render.console()
    if report.error:  # a missing or invalid archive: one `error:` line on stderr, like every command
        typer.echo(f"error: {report.error}", err=True)
    else:
        _print_change(console, report)
    for t in report.other_triggers:
        console.print(
            f"[yellow]trigger {t.key}[/] ({human_duration(t.age_seconds)} old) for a customer the archive does not list"
        )
    if not report.error:
        console.print(_verdict(report))
    raise typer.Exit(code)


VERIFY_COLUMNS = (
    "customer",
    "state",
    "rev",
    "sent/rejected/of",
    "lease",
    "progress",
    "recorded (processing)",
    "folded (archive)",
    "trigger",
)
STATE_STYLE = {"processed": "green", "recorded_not_folded": "green", "pending": "yellow", "processing": "cyan"}


def _print_change(console: Console, report: VerifyReport) -> None:
    """Everything ``verify`` shows of a change whose archive could be read."""
    console.print(
        f"[bold]{report.change_id}[/] — {report.title}\n  status {report.status}, revision {report.revision}, "
        f"ETag {report.etag}"
    )
    table = Table(title="Customers", show_lines=True)
    for column in VERIFY_COLUMNS:
        table.add_column(column, no_wrap=column in ("customer", "state", "sent/rejected/of"))
    for c in report.customers:
        table.add_row(*_customer_row(c))
    console.print(table)
    _print_delivery(console, report)
    for finding in report.findings:
        console.print(f"[red]finding[/]: {finding}")
    mods = render.table("Modifications", ("timestamp", "type", "user", "customer", "revision"))
    for m in report.modifications:
        mods.add_row(
            str(m.get("timestamp", "")),
            str(m.get("modification_type", "")),
            str(m.get("user_id", "")),
            str(m.get("customer_code") or "-"),
            str(m.get("revision", "-")),
        )
    console.print(mods)
    if report.meeting:
        console.print(f"meeting requested: {json.dumps(report.meeting)}")
    if report.meeting_metadata:
        console.print(f"meeting: {json.dumps(report.meeting_metadata)}")
    if report.meeting_lease:
        console.print(
            f"meeting lease: {report.meeting_lease.owner} ({'live' if report.meeting_lease.live else 'expired'})"
        )


def _customer_row(c: CustomerProgress) -> tuple[str, ...]:
    """One customer's cells of :data:`VERIFY_COLUMNS`."""
    lease = "-"
    if c.lease:
        lease = (
            f"{c.lease.owner} rev {c.lease.revision} {'live' if c.lease.live else 'expired'} "
            f"until {c.lease.expires_at:%Y-%m-%d %H:%M:%S}Z"
        )
        if c.lease.origin is not None:
            lease += f" ({c.lease.origin}, {c.lease.emails_sent} sent)"
    progress = "-"
    if c.progress:
        progress = f"{c.progress.done} of {c.progress.recipients} (rev {c.progress.revision})"
        if c.progress.rejected:
            progress += f", {c.progress.rejected} rejected"
    counts = "-"
    if c.sent is not None or c.recipients is not None:
        counts = "/".join("?" if n is None else str(n) for n in (c.sent, c.rejected, c.recipients))
    folded = ", ".join(map(str, c.processed_revisions)) or "-"
    recorded = ", ".join(map(str, c.recorded_revisions)) or "-"
    if c.processing_error:
        recorded = "[red]invalid processing object[/]"
    trigger = f"present, {human_duration(c.trigger.age_seconds)} old" if c.trigger else "-"
    if c.trigger and c.trigger.redrive_attempts:
        trigger += f", re-driven {c.trigger.redrive_attempts}x"
    style = STATE_STYLE.get(c.state, "red")
    return (
        c.customer,
        f"[{style}]{c.state_text or c.state}[/]",
        "-" if c.revision is None else str(c.revision),
        counts,
        lease,
        progress,
        recorded,
        folded,
        trigger,
    )


def _verdict(report: VerifyReport) -> str:
    if report.complete:
        return "[bold green]COMPLETE[/]"
    if report.pending:
        return f"[bold yellow]PENDING[/]: {', '.join(report.pending)}"
    if report.not_folded:
        return (
            f"[bold yellow]RECORDED, NOT FOLDED YET[/]: {', '.join(report.not_folded)} "
            "(the change coordinator folds the results into the archive)"
        )
    return f"[bold yellow]PENDING[/]: {'findings' if report.findings else 'triggers left'}"


def stuck(
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Age threshold, e.g. 90s, 15m, 2h (default TTP_STUCK_AFTER_SECONDS)."),
    ] = None,
    customer: Annotated[str | None, typer.Option("--customer", "-c", help="Only this customer.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Triggers older than a threshold, each with a diagnosis and what to do. Exit 1 when there are any."""
    override = options.duration(older_than, "--older-than") if older_than else None
    settings = options.settings(OpsSettings)
    threshold = override if override is not None else timedelta(seconds=settings.stuck_after_seconds)
    if customer:
        options.configured_customer(settings, customer)
    report = find_stuck(
        OpsClients(),
        settings.bucket_name,
        dict(settings.customer_queues),
        older_than=threshold,
        customer=customer,
        max_redrive_attempts=settings.max_redrive_attempts,
        track=render.tracker(),
    )
    if as_json:
        render.emit(report)
    else:
        console = render.console()
        if not report.triggers:
            console.print(f"[green]no trigger older than {human_duration(report.threshold_seconds)}[/]")
        table = render.table(
            f"Triggers older than {human_duration(report.threshold_seconds)}",
            ("customer", "change", "age", "diagnosis", "what to do"),
            show_lines=True,
        )
        for t in report.triggers:
            detail = render.untrusted(t.explanation) + "".join(f"\n• {render.untrusted(d)}" for d in t.details)
            table.add_row(
                t.customer or "-",
                t.change_id or f"(key) {render.untrusted(t.key)}",
                human_duration(t.age_seconds),
                f"[bold]{t.diagnosis}[/]\n{detail}",
                render.untrusted(t.resolution),
            )
        if report.triggers:
            console.print(table)
    raise typer.Exit(EXIT_ATTENTION if report.needs_attention else EXIT_OK)


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)
