"""The operations commands of ``python -m runtime`` (registered on ``runtime.cli.app``).

Every command prints a readable table by default and one JSON document with ``--json`` (progress
bars and logs go to stderr, so stdout stays machine-readable). Exit codes, the same everywhere:

* 0 — done, nothing needs attention;
* 1 — done, and something needs attention (unhealthy, pending, stuck, DLQ not empty, refused);
* 2 — bad arguments or configuration (the message names the option or ``TTP_*`` variable);
* 3 — the operation failed (AWS error, missing object); nothing was half-written.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from rich.console import Console
from rich.table import Table

from runtime import aws
from runtime.cli.app import app
from runtime.contract import keys, names
from runtime.contract.settings import BucketSettings, ConfigurationError, OpsSettings, SettingsT, load
from runtime.ops import core as ops
from runtime.ops.core import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK, EXIT_USAGE, OpsClients, OpsError, human_duration

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
CustomerOption = Annotated[str, typer.Option("--customer", "-c", help="Customer code (a key of TTP_CUSTOMER_QUEUES).")]

dlq_app = typer.Typer(no_args_is_help=True, help="Inspect a customer's dead-letter queue and move messages back.")
app.add_typer(dlq_app, name="dlq")


# ---- plumbing ----------------------------------------------------------------------------------


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False, soft_wrap=False)


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings(model: type[SettingsT]) -> SettingsT:
    try:
        return load(model)
    except ConfigurationError as exc:
        _fail(f"{exc}\nSet the variables (the sweeper task has them all) and run again.", EXIT_USAGE)


def _duration(text: str, option: str) -> timedelta:
    try:
        return ops.parse_duration(text)
    except ValueError as exc:
        _fail(f"{option}: {exc}", EXIT_USAGE)


def _customer(settings: OpsSettings, code: str) -> str:
    try:
        keys.validate_customer_code(code)
    except keys.InvalidKeyError as exc:
        _fail(f"--customer: {exc}", EXIT_USAGE)
    if code not in settings.customer_queues:
        known = ", ".join(sorted(settings.customer_queues)) or "none"
        _fail(f"--customer {code} is not in TTP_CUSTOMER_QUEUES (configured: {known})", EXIT_USAGE)
    return code


def _tracker() -> ops.Tracker:
    stderr = Console(stderr=True)

    def track(items: Iterable[T], total: int | None, description: str) -> Iterable[T]:
        if not stderr.is_terminal:
            return items
        from rich.progress import track as rich_track

        return rich_track(items, description=description, total=total, console=stderr, transient=True)

    return track  # type: ignore[return-value]


def aws_errors(func: F) -> F:
    """Turn AWS and ops errors into a one-line message with what to do, and a meaningful exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OpsError as exc:
            _fail(str(exc), exc.exit_code)
        except NoCredentialsError:
            _fail("no AWS credentials: set AWS_PROFILE (or the AWS_ACCESS_KEY_ID/... variables) and AWS_REGION")
        except ClientError as exc:
            code = aws.error_code(exc)
            hint = {
                "AccessDenied": "the caller lacks a permission: run with the ops role",
                "AccessDeniedException": "the caller lacks a permission: run with the ops role",
                "NoSuchBucket": "check TTP_BUCKET_NAME",
                "AWS.SimpleQueueService.NonExistentQueue": "check the queue URLs in TTP_CUSTOMER_QUEUES",
                "QueueDoesNotExist": "check the queue URLs in TTP_CUSTOMER_QUEUES",
                "ExpiredToken": "refresh your AWS credentials",
            }.get(code, "check the AWS region and the resource names")
            _fail(f"AWS call failed: {exc} — {hint}")
        except BotoCoreError as exc:
            _fail(f"AWS call failed: {exc} — check the network, AWS_REGION and AWS_ENDPOINT_URL")

    return wrapper  # type: ignore[return-value]


def _emit(payload: Any) -> None:
    typer.echo(ops.dumps(payload))


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else human_duration(seconds)


_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


# ---- health ------------------------------------------------------------------------------------


@app.command()
@aws_errors
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
    """Per customer: queue depth, DLQ depth, trigger ages, ECS running vs desired. Exit 1 when unhealthy."""
    override = _duration(older_than, "--older-than") if older_than else None
    settings = _settings(OpsSettings)
    queues = dict(settings.customer_queues)
    if customer:
        queues = {code: queues[_customer(settings, code)] for code in customer}
    threshold = override if override is not None else timedelta(seconds=settings.stuck_after_seconds)
    report = ops.health(
        OpsClients(),
        settings.bucket_name,
        queues,
        cluster=None if skip_ecs else settings.cluster_name,
        threshold=threshold,
        use_cloudwatch=not no_cloudwatch,
        track=_tracker(),
    )
    if as_json:
        _emit({"healthy": report.healthy, **ops.to_jsonable(report)})
    else:
        console = _console()
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
                _age(item.oldest_message_age_seconds),
                "-" if q.dlq_url is None else str(q.dlq_depth),
                str(item.triggers),
                str(item.triggers_over_threshold),
                _age(item.oldest_trigger_age_seconds) if item.triggers else "-",
                ecs,
            )
        console.print(table)
        for finding in report.findings:
            where = f"{finding.customer}: " if finding.customer else ""
            console.print(
                f"[{_SEVERITY_STYLE[finding.severity]}]{finding.severity.upper():8}[/] {where}{finding.message}"
            )
        critical = sum(1 for f in report.findings if f.severity == "critical")
        console.print("[bold green]HEALTHY[/]" if report.healthy else f"[bold red]UNHEALTHY[/] ({critical} critical)")
    raise typer.Exit(EXIT_OK if report.healthy else EXIT_ATTENTION)


# ---- verify ------------------------------------------------------------------------------------


@app.command()
@aws_errors
def verify(
    change_id: Annotated[str, typer.Argument(help="Change id (archive/{id}.json).")],
    as_json: JsonOption = False,
) -> None:
    """A change's archive state, who processed which revision, leases, triggers left, the meeting.

    Exit 0 when every customer processed the current revision and no trigger is left, 1 while
    something is pending, 3 when the archive is missing or invalid.
    """
    try:
        keys.validate_change_id(change_id)
    except keys.InvalidKeyError as exc:
        _fail(str(exc), EXIT_USAGE)
    settings = _settings(BucketSettings)
    report = ops.verify(OpsClients(), settings.bucket_name, change_id)
    code = EXIT_FAILED if report.error else (EXIT_OK if report.complete else EXIT_ATTENTION)
    if as_json:
        _emit({"complete": report.complete, "pending": report.pending, **ops.to_jsonable(report)})
        raise typer.Exit(code)
    console = _console()
    if report.error:
        console.print(f"[bold red]{report.error}[/]")
    else:
        console.print(
            f"[bold]{report.change_id}[/] — {report.title}\n  status {report.status}, revision {report.revision}, "
            f"ETag {report.etag}"
        )
        table = Table(title="Customers")
        for column in ("customer", "state", "processed revisions", "processed at", "emails", "lease", "trigger"):
            table.add_column(column)
        for c in report.customers:
            lease = "-"
            if c.lease:
                lease = (
                    f"{c.lease.owner} rev {c.lease.revision} {'live' if c.lease.live else 'expired'} "
                    f"{c.lease.expires_at:%Y-%m-%d %H:%M:%S}Z, {c.lease.emails_sent} sent"
                )
            trigger = f"present, {human_duration(c.trigger.age_seconds)} old" if c.trigger else "-"
            if c.trigger and c.trigger.redrive_attempts:
                trigger += f", re-driven {c.trigger.redrive_attempts}x"
            style = {"processed": "green", "pending": "yellow", "processing": "cyan"}.get(c.state, "red")
            table.add_row(
                c.customer,
                f"[{style}]{c.state}[/]",
                ", ".join(map(str, c.processed_revisions)) or "-",
                f"{c.processed_at:%Y-%m-%d %H:%M:%S}Z" if c.processed_at else "-",
                "-" if c.emails_sent is None else str(c.emails_sent),
                lease,
                trigger,
            )
        console.print(table)
        mods = Table(title="Modifications")
        for column in ("timestamp", "type", "user", "customer", "revision"):
            mods.add_column(column)
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
    for t in report.other_triggers:
        console.print(
            f"[yellow]trigger {t.key}[/] ({human_duration(t.age_seconds)} old) for a customer the archive does not list"
        )
    if not report.error:
        console.print(
            "[bold green]COMPLETE[/]"
            if report.complete
            else f"[bold yellow]PENDING[/]: {', '.join(report.pending) or 'triggers left'}"
        )
    raise typer.Exit(code)


# ---- stuck -------------------------------------------------------------------------------------


@app.command()
@aws_errors
def stuck(
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Age threshold, e.g. 90s, 15m, 2h (default TTP_STUCK_AFTER_SECONDS)."),
    ] = None,
    customer: Annotated[str | None, typer.Option("--customer", "-c", help="Only this customer.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Triggers older than a threshold, each with a diagnosis and what to do. Exit 1 when there are any."""
    override = _duration(older_than, "--older-than") if older_than else None
    settings = _settings(OpsSettings)
    threshold = override if override is not None else timedelta(seconds=settings.stuck_after_seconds)
    if customer:
        _customer(settings, customer)
    report = ops.stuck(
        OpsClients(),
        settings.bucket_name,
        dict(settings.customer_queues),
        older_than=threshold,
        customer=customer,
        max_redrive_attempts=settings.max_redrive_attempts,
        track=_tracker(),
    )
    remaining = [t for t in report.triggers if t.diagnosis != "gone"]
    if as_json:
        _emit(report)
    else:
        console = _console()
        if not report.triggers:
            console.print(f"[green]no trigger older than {human_duration(report.threshold_seconds)}[/]")
        table = Table(title=f"Triggers older than {human_duration(report.threshold_seconds)}", show_lines=True)
        for column in ("customer", "change", "age", "diagnosis", "what to do"):
            table.add_column(column)
        for t in report.triggers:
            detail = t.explanation + "".join(f"\n• {d}" for d in t.details)
            table.add_row(
                t.customer,
                t.change_id,
                human_duration(t.age_seconds),
                f"[bold]{t.diagnosis}[/]\n{detail}",
                t.resolution,
            )
        if report.triggers:
            console.print(table)
    raise typer.Exit(EXIT_ATTENTION if remaining else EXIT_OK)


# ---- cleanup -----------------------------------------------------------------------------------


@app.command()
@aws_errors
def cleanup(
    customer: Annotated[str | None, typer.Option("--customer", "-c", help="Only this customer's triggers.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be deleted; delete nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete only triggers whose result the archive already records (IfMatch their ETag). Exit 1 if a delete failed."""
    settings = _settings(BucketSettings)
    if customer:
        try:
            keys.validate_customer_code(customer)
        except keys.InvalidKeyError as exc:
            _fail(f"--customer: {exc}", EXIT_USAGE)
    report = ops.cleanup(OpsClients(), settings.bucket_name, customer=customer, dry_run=dry_run, track=_tracker())
    if as_json:
        _emit(
            {
                "dry_run": report.dry_run,
                "deleted": report.count("deleted"),
                "would_delete": report.count("would_delete"),
                "kept": report.count("kept"),
                "failed": len(report.failed),
                "items": report.items,
            }
        )
    else:
        console = _console()
        table = Table(title="Cleanup" + (" (dry run: nothing deleted)" if dry_run else ""))
        for column in ("customer", "change", "age", "action", "why"):
            table.add_column(column)
        for item in report.items:
            style = {"deleted": "green", "would_delete": "cyan", "failed": "red"}.get(item.action, "")
            table.add_row(
                item.customer,
                item.change_id,
                human_duration(item.age_seconds),
                f"[{style}]{item.action}[/]" if style else item.action,
                item.reason,
            )
        console.print(table)
        console.print(
            f"{report.count('deleted')} deleted, {report.count('would_delete')} would be deleted, "
            f"{report.count('kept')} kept (not recorded: processing still needed), {len(report.failed)} failed"
        )
    raise typer.Exit(EXIT_ATTENTION if report.failed else EXIT_OK)


# ---- dlq ---------------------------------------------------------------------------------------


@dlq_app.command("list")
@aws_errors
def dlq_list(
    customer: CustomerOption,
    limit: Annotated[int, typer.Option("--max", min=1, max=1000, help="Messages to show at most.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Show the DLQ's messages without consuming them. Exit 1 when the DLQ is not empty."""
    from runtime.ops.dlq import list_dlq

    settings = _settings(OpsSettings)
    code = _customer(settings, customer)
    listing = list_dlq(OpsClients().sqs, code, settings.customer_queues[code], limit=limit)
    if as_json:
        _emit(listing)
    else:
        console = _console()
        console.print(
            f"{listing.dlq_url}: ~{listing.approximate_visible} visible, ~{listing.approximate_in_flight} in flight"
        )
        table = Table(title=f"DLQ of {code}")
        for column in ("message id", "sent", "receives", "triggers", "problem"):
            table.add_column(column)
        for m in listing.messages:
            table.add_row(
                m.message_id,
                f"{m.sent_at:%Y-%m-%d %H:%M:%S}Z" if m.sent_at else "?",
                str(m.receive_count or "?"),
                "\n".join(m.triggers) or "-",
                m.parse_error or "",
            )
        console.print(table)
        if listing.messages:
            console.print(
                f"fix the cause (`stuck`, `logs --customer {code} --errors`), then `dlq redrive --customer {code}`"
            )
    raise typer.Exit(EXIT_ATTENTION if listing.approximate_visible or listing.messages else EXIT_OK)


@dlq_app.command("redrive")
@aws_errors
def dlq_redrive(
    customer: CustomerOption,
    limit: Annotated[int, typer.Option("--max", min=1, max=10000, help="Messages to move at most.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Move up to --max messages from the DLQ back to the customer's queue (send, then delete). Exit 1 on failures."""
    from runtime.ops.dlq import redrive_dlq

    settings = _settings(OpsSettings)
    code = _customer(settings, customer)
    stderr = Console(stderr=True)
    progress = None
    if stderr.is_terminal:
        from rich.progress import Progress

        progress = Progress(console=stderr, transient=True)
        progress.start()
        task = progress.add_task(f"moving {code}'s DLQ messages", total=limit)
    try:
        report = redrive_dlq(
            OpsClients().sqs,
            code,
            settings.customer_queues[code],
            limit=limit,
            on_message=(lambda _m: progress.advance(task)) if progress else None,
        )
    finally:
        if progress:
            progress.stop()
    if as_json:
        _emit({"moved": report.moved, "failed": report.failed, **ops.to_jsonable(report)})
    else:
        console = _console()
        table = Table(title=f"Re-drive {code}: DLQ → {report.queue_url}")
        for column in ("message id", "new message id", "triggers", "outcome", "detail"):
            table.add_column(column)
        for m in report.messages:
            table.add_row(m.message_id, m.new_message_id or "-", "\n".join(m.triggers) or "-", m.outcome, m.detail)
        console.print(table)
        console.print(f"{report.moved} moved, {report.failed} with problems, ~{report.remaining} left in the DLQ")
    raise typer.Exit(EXIT_ATTENTION if report.failed else EXIT_OK)


# ---- restore -----------------------------------------------------------------------------------


@app.command()
@aws_errors
def restore(
    change_id: Annotated[str, typer.Argument(help="Change id (archive/{id}.json).")],
    before: Annotated[
        str | None,
        typer.Option(
            "--before", help="Restore the newest version written before this: ISO 8601 time or a duration ago (2h)."
        ),
    ] = None,
    list_only: Annotated[bool, typer.Option("--list", help="List the versions (with validity) and exit.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Restore even if non-processing entries recorded later would be lost.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be written; write nothing.")] = False,
    user: Annotated[str, typer.Option("--user", help="Who restores (recorded in the archive).")] = "",
    as_json: JsonOption = False,
) -> None:
    """Bring back an earlier version of archive/{id}.json from bucket versioning, recorded as a modification.

    Processing and meeting entries recorded after that version are carried forward (they record emails
    sent and meetings created); other later entries would be lost, so the restore is refused unless
    --force. Exit 0 restored (or dry run), 1 refused / nothing to restore, 3 failed.
    """
    from runtime.ops.restore import restore as do_restore
    from runtime.ops.restore import versions_with_validity

    try:
        keys.validate_change_id(change_id)
    except keys.InvalidKeyError as exc:
        _fail(str(exc), EXIT_USAGE)
    settings = _settings(BucketSettings)
    clients = OpsClients()
    if list_only:
        versions = versions_with_validity(clients, settings.bucket_name, change_id)
        if as_json:
            _emit(versions)
        else:
            table = Table(title=f"Versions of archive/{change_id}.json (newest first)")
            for column in ("version id", "last modified", "latest", "kind", "size", "valid"):
                table.add_column(column)
            for v in versions:
                valid = "-" if v.valid is None else ("yes" if v.valid else f"no: {v.error}")
                table.add_row(
                    v.version_id,
                    f"{v.last_modified:%Y-%m-%d %H:%M:%S}Z",
                    "yes" if v.is_latest else "",
                    "delete marker" if v.delete_marker else "version",
                    str(v.size or "-"),
                    valid,
                )
            _console().print(table)
        raise typer.Exit(EXIT_OK if versions else EXIT_FAILED)
    if not before:
        _fail("--before TIME is required (or --list to see the versions)", EXIT_USAGE)
    try:
        when = ops.parse_time(before)
    except ValueError as exc:
        _fail(f"--before: {exc}", EXIT_USAGE)
    plan = do_restore(
        clients,
        settings.bucket_name,
        change_id,
        when,
        user=user or f"ops:{os.environ.get('USER', 'cli')}",
        force=force,
        dry_run=dry_run,
    )
    if as_json:
        _emit(plan)
    else:
        console = _console()
        console.print(
            f"source version {plan.source.version_id} ({plan.source.last_modified:%Y-%m-%d %H:%M:%S}Z); current object "
            f"{plan.current_state}; later entries read from {plan.merged_from or '(no valid later version)'}; "
            f"revision {plan.revision}"
        )
        for entry in plan.carried_forward:
            console.print(
                f"  carried forward: {entry.get('modification_type')} {entry.get('customer_code') or ''} "
                f"rev {entry.get('revision')} ({entry.get('timestamp')})"
            )
        for entry in plan.dropped:
            console.print(
                f"  [yellow]lost[/]: {entry.get('modification_type')} {entry.get('customer_code') or ''} "
                f"rev {entry.get('revision')} ({entry.get('timestamp')})"
            )
        if plan.refused:
            console.print(f"[bold red]refused[/]: {plan.refused}")
        elif plan.dry_run:
            console.print("[cyan]dry run[/]: nothing written")
        else:
            console.print(
                f"[green]restored[/] as version {plan.new_version_id} (ETag {plan.new_etag}); "
                f"`verify {change_id}` shows the result"
            )
    raise typer.Exit(EXIT_ATTENTION if plan.refused else EXIT_OK)


# ---- dashboard ---------------------------------------------------------------------------------


@app.command("dashboard-json")
def dashboard_json(
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", help="Metrics namespace (default TTP_METRICS_NAMESPACE or CustomMetrics)."),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="Region of the widgets (default AWS_REGION).")] = None,
    cluster_name: Annotated[
        str | None,
        typer.Option("--cluster-name", help="ECS cluster (default TTP_CLUSTER_NAME or change-processor-cluster)."),
    ] = None,
    customer: Annotated[
        str | None, typer.Option("--customer", "-c", help="Print this customer's dashboard instead of the overview.")
    ] = None,
    all_dashboards: Annotated[
        bool, typer.Option("--all", help="Print {dashboard name: body} for the overview and every customer.")
    ] = False,
    customers: Annotated[
        str | None, typer.Option("--customers", help="Comma-separated codes for --all (default: TTP_CUSTOMER_QUEUES).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Print the dashboard body the platform stack deploys (`aws cloudwatch put-dashboard --dashboard-body`)."""
    from runtime.contract import dashboards

    ns = namespace or os.environ.get("TTP_METRICS_NAMESPACE") or names.DEFAULT_METRICS_NAMESPACE
    where = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not where:
        _fail("--region is required (or set AWS_REGION)", EXIT_USAGE)
    cluster = cluster_name or os.environ.get("TTP_CLUSTER_NAME") or names.CLUSTER_NAME
    codes = _dashboard_customers(customers) if all_dashboards else []
    try:
        if customer:
            keys.validate_customer_code(customer)
        for code in codes:
            keys.validate_customer_code(code)
    except keys.InvalidKeyError as exc:
        _fail(f"--customer(s): {exc}", EXIT_USAGE)
    if all_dashboards:
        payload: Any = {
            dashboards.OVERVIEW_DASHBOARD_NAME: dashboards.overview_dashboard_body(
                region=where, namespace=ns, cluster_name=cluster
            )
        }
        for code in codes:
            payload[dashboards.customer_dashboard_name(code)] = dashboards.customer_dashboard_body(
                customer_code=code, region=where, namespace=ns, cluster_name=cluster
            )
    elif customer:
        payload = dashboards.customer_dashboard_body(
            customer_code=customer, region=where, namespace=ns, cluster_name=cluster
        )
    else:
        payload = dashboards.overview_dashboard_body(region=where, namespace=ns, cluster_name=cluster)
    bodies = payload.values() if all_dashboards else [payload]
    for body in bodies:
        size = len(json.dumps(body, separators=(",", ":")))
        if size > dashboards.MAX_BODY_BYTES or len(body["widgets"]) > dashboards.MAX_WIDGETS:
            _fail(f"dashboard body too large for CloudWatch ({size} bytes, {len(body['widgets'])} widgets)")
    typer.echo(json.dumps(payload, indent=None if as_json else 2))


def _dashboard_customers(option: str | None) -> list[str]:
    if option:
        return [c.strip() for c in option.split(",") if c.strip()]
    raw = os.environ.get("TTP_CUSTOMER_QUEUES")
    if not raw:
        _fail("--all needs --customers a,b or TTP_CUSTOMER_QUEUES", EXIT_USAGE)
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        _fail(f'TTP_CUSTOMER_QUEUES is not JSON ({exc}): expected {{"code": "queue URL", ...}}', EXIT_USAGE)
    if not isinstance(parsed, dict):
        _fail('TTP_CUSTOMER_QUEUES must be a JSON object {"code": "queue URL", ...}', EXIT_USAGE)
    return sorted(parsed)


# ---- sweep -------------------------------------------------------------------------------------


@app.command()
@aws_errors
def sweep(as_json: JsonOption = False) -> None:
    """One sweeper pass: metrics per customer, delete recorded triggers, re-drive stuck ones (bounded).

    EMF metric lines and logs go to stderr (CloudWatch Logs receives both streams); stdout holds the
    report. Exit 0 when the pass completed, 1 when some AWS call failed (the pass went on), 3 when the
    triggers could not be listed at all.
    """
    from runtime.ops.sweep import run_sweep

    settings = _settings(OpsSettings)
    report = run_sweep(settings, metrics_stream=sys.stderr)
    if as_json:
        _emit({"ok": report.ok, **ops.to_jsonable(report)})
    else:
        console = _console()
        table = Table(title=f"Sweep at {report.started_at:%Y-%m-%d %H:%M:%S}Z")
        for column in ("customer", "triggers", "orphaned", "oldest", "deleted", "re-driven", "exhausted", "errors"):
            table.add_column(column, justify="left" if column == "customer" else "right")
        for c in report.customers:
            table.add_row(
                c.customer,
                str(c.triggers),
                str(c.orphaned),
                _age(c.oldest_age_seconds),
                str(c.deleted),
                str(c.redriven),
                str(c.exhausted),
                str(c.errors),
            )
        console.print(table)
        for action in report.actions:
            console.print(f"{action.customer} {action.change_id}: {action.action} — {action.detail}")
        for error in report.errors:
            console.print(f"[red]error[/]: {error}")
    if report.errors and not report.customers:
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_ATTENTION)


# ---- restart, logs -----------------------------------------------------------------------------


@app.command()
@aws_errors
def restart(
    customer: CustomerOption,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Force a new deployment of the customer's ECS service (runbook Task 3, option 1)."""
    settings = _settings(OpsSettings)
    code = _customer(settings, customer)
    service = names.service_name(code)
    if not yes:
        if as_json or not sys.stdin.isatty():
            _fail("pass --yes to restart without a prompt", EXIT_USAGE)
        typer.confirm(f"Restart {service} in {settings.cluster_name}?", abort=True)
    response = OpsClients().ecs.update_service(cluster=settings.cluster_name, service=service, forceNewDeployment=True)
    svc = response["service"]
    result = {
        "cluster": settings.cluster_name,
        "service": service,
        "status": svc.get("status"),
        "desired": svc.get("desiredCount"),
        "running": svc.get("runningCount"),
    }
    if as_json:
        _emit(result)
    else:
        typer.echo(
            f"new deployment of {service} started (desired {result['desired']}, running {result['running']}); "
            "`health` shows when tasks are back"
        )


@app.command()
@aws_errors
def logs(
    customer: CustomerOption,
    change_id: Annotated[str | None, typer.Option("--change-id", help="Only lines mentioning this change.")] = None,
    errors: Annotated[bool, typer.Option("--errors", help="Only ERROR lines.")] = False,
    since: Annotated[str, typer.Option("--since", help="How far back, e.g. 1h, 24h.")] = "1h",
    limit: Annotated[int, typer.Option("--max", min=1, max=10000, help="Lines at most.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """The processor's log lines of one customer (its CloudWatch log group), filtered."""
    try:
        keys.validate_customer_code(customer)
        if change_id:
            keys.validate_change_id(change_id)
    except keys.InvalidKeyError as exc:
        _fail(str(exc), EXIT_USAGE)
    window = _duration(since, "--since")
    start = int((ops.now() - window).timestamp() * 1000)
    group = names.log_group_name(customer)
    term = change_id or ("ERROR" if errors else "")
    params: dict[str, Any] = {"logGroupName": group, "startTime": start}
    if term:
        params["filterPattern"] = f'"{term}"'
    lines: list[dict[str, Any]] = []
    client = OpsClients().logs
    while len(lines) < limit:
        response = client.filter_log_events(**params)
        for event in response.get("events", []):
            message = event.get("message", "")
            if change_id and change_id not in message:
                continue
            if errors and "ERROR" not in message:
                continue
            lines.append(
                {"timestamp": event.get("timestamp"), "stream": event.get("logStreamName"), "message": message}
            )
        if not response.get("nextToken") or not response.get("events"):
            break
        params["nextToken"] = response["nextToken"]
    lines = lines[:limit]
    if as_json:
        _emit({"log_group": group, "events": lines})
    else:
        for line in lines:
            typer.echo(line["message"].rstrip())
        typer.echo(f"({len(lines)} line(s) from {group} in the last {since})", err=True)
