"""The commands that change things, each the runbook's remedy for one situation: ``cleanup`` (triggers
whose work is recorded), ``restore`` (an archive from bucket versioning), ``sweep`` (the scheduled pass,
by hand) and ``restart`` (a customer's processor service).

Each parses its options, calls the procedure in ``runtime.ops``, renders the report (a table, or one
JSON document with ``--json``) and maps it to an exit code (``runtime.cli.exit_codes``).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table

from runtime import aws, services
from runtime.cli import options, render
from runtime.cli.errors import fail
from runtime.cli.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from runtime.cli.options import CustomerOption, JsonOption
from runtime.contract import keys, names
from runtime.contract.settings import BucketSettings, OpsSettings, env_var
from runtime.ops.cleanup import INVALID_LEFT, CleanupReport
from runtime.ops.cleanup import cleanup as clean_up
from runtime.ops.clients import OpsClients
from runtime.ops.durations import human_duration, parse_time
from runtime.ops.restart import restart as restart_service
from runtime.ops.restart import service_to_restart
from runtime.ops.restore import ArchiveVersion, RestorePlan, versions_with_validity
from runtime.ops.restore import restore as restore_archive
from runtime.sweeper import run_sweep


def cleanup(
    customer: Annotated[str | None, typer.Option("--customer", "-c", help="Only this customer's triggers.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be deleted; delete nothing.")] = False,
    remove_invalid: Annotated[
        list[str] | None,
        typer.Option(
            "--remove-invalid",
            metavar="KEY",
            help="Also delete this object under customers/ that is not a valid trigger, its key exactly as "
            "`cleanup --json` lists it under invalid (repeatable). Such objects are otherwise only listed.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Delete only triggers whose result is recorded (archive or processing object; IfMatch their ETag).

    Objects under customers/ that are not valid triggers are listed (invalid_trigger_key) and kept
    unless named with --remove-invalid. Exit 1 if a delete failed, a processing object is invalid or
    an invalid object is left."""
    settings = options.settings(BucketSettings)
    if customer:
        try:
            keys.validate_customer_code(customer)
        except keys.InvalidKeyError as exc:
            fail(f"--customer: {exc}", EXIT_USAGE)
    report = clean_up(
        OpsClients(),
        settings.bucket_name,
        customer=customer,
        dry_run=dry_run,
        remove_invalid=remove_invalid or (),
        track=render.tracker(),
    )
    if as_json:
        render.emit(
            {
                "dry_run": report.dry_run,
                "deleted": report.count("deleted"),
                "would_delete": report.count("would_delete"),
                "kept": report.count("kept"),
                "failed": len(report.failed),
                "findings": report.findings,
                "items": report.items,
                "invalid": report.invalid,
            }
        )
    else:
        _print_cleanup(render.console(), report, dry_run)
    raise typer.Exit(EXIT_ATTENTION if report.needs_attention else EXIT_OK)


def _print_cleanup(console: Console, report: CleanupReport, dry_run: bool) -> None:
    table = render.table(
        "Cleanup" + (" (dry run: nothing deleted)" if dry_run else ""), ("customer", "change", "age", "action", "why")
    )
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
    for finding in report.findings:
        console.print(f"[yellow]finding[/]: {render.untrusted(finding)} (its trigger is kept)")
    for invalid in report.invalid:
        style = {"removed": "green", "would_remove": "cyan", "failed": "red"}.get(invalid.action, "yellow")
        console.print(
            f"[{style}]{invalid.action}[/] {invalid.diagnosis} {render.untrusted(invalid.key)} "
            f"({human_duration(invalid.age_seconds)} old): {render.untrusted(invalid.reason)}"
        )
    console.print(
        f"{report.count('deleted')} deleted, {report.count('would_delete')} would be deleted, "
        f"{report.count('kept')} kept (not recorded: processing still needed), {len(report.failed)} failed"
    )
    if report.invalid:
        left = sum(1 for i in report.invalid if i.action in INVALID_LEFT)
        removed = sum(1 for i in report.invalid if i.action in ("removed", "would_remove"))
        console.print(
            f"{len(report.invalid)} object(s) under customers/ are not valid triggers: "
            f"{removed} {'would be ' if dry_run else ''}removed, {left} left "
            "(`--remove-invalid KEY` removes one; its key exactly as `--json` lists it)"
        )


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
    try:
        keys.validate_change_id(change_id)
    except keys.InvalidKeyError as exc:
        fail(str(exc), EXIT_USAGE)
    settings = options.settings(BucketSettings)
    clients = OpsClients()
    if list_only:
        versions = versions_with_validity(clients, settings.bucket_name, change_id)
        if as_json:
            render.emit(versions)
        else:
            _print_versions(render.console(), change_id, versions)
        raise typer.Exit(EXIT_OK if versions else EXIT_FAILED)
    if not before:
        fail("--before TIME is required (or --list to see the versions)", EXIT_USAGE)
    try:
        when = parse_time(before)
    except ValueError as exc:
        fail(f"--before: {exc}", EXIT_USAGE)
    plan = restore_archive(
        clients,
        settings.bucket_name,
        change_id,
        when,
        user=user or f"ops:{os.environ.get('USER', 'cli')}",
        force=force,
        dry_run=dry_run,
    )
    if as_json:
        render.emit(plan)
    else:
        _print_restore(render.console(), change_id, plan)
    raise typer.Exit(EXIT_ATTENTION if plan.needs_attention else EXIT_OK)


def _print_versions(console: Console, change_id: str, versions: list[ArchiveVersion]) -> None:
    table = render.table(
        f"Versions of {keys.archive_key(change_id)} (newest first)",
        ("version id", "last modified", "latest", "kind", "size", "valid"),
    )
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
    console.print(table)


def _print_restore(console: Console, change_id: str, plan: RestorePlan) -> None:
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
    for result in plan.unfolded_results:
        console.print(
            f"  recorded in {result['key']} only: rev {result['revision']} (the coordinator folds it; "
            "processing objects are never rewritten)"
        )
    for finding in plan.findings:
        console.print(f"  [yellow]finding[/]: {finding}")
    if plan.refused:
        console.print(f"[bold red]refused[/]: {plan.refused}")
    elif plan.dry_run:
        console.print("[cyan]dry run[/]: nothing written")
    else:
        console.print(
            f"[green]restored[/] as version {plan.new_version_id} (ETag {plan.new_etag}); "
            f"`verify {change_id}` shows the result"
        )


def sweep(as_json: JsonOption = False) -> None:
    """One sweeper pass: metrics per customer, delete recorded triggers, re-drive stuck ones (bounded),
    re-create the triggers a submission did not write.

    EMF metric lines and logs go to stderr (CloudWatch Logs receives both streams); stdout holds the
    report. Exit 0 when the pass completed, 1 when some AWS call failed (the pass went on), 3 when the
    triggers could not be listed at all.
    """
    settings = options.settings(OpsSettings)
    report = run_sweep(settings, metrics_stream=sys.stderr)
    if as_json:
        render.emit(services.sweep_document(report))
    if report.failed:
        fail(report.errors[0])
    if not as_json:
        console = render.console()
        table = Table(title=f"Sweep at {report.started_at:%Y-%m-%d %H:%M:%S}Z")
        columns = ("customer", "triggers", "orphaned", "oldest", "deleted", "re-driven", "exhausted", "re-created")
        for column in (*columns, "errors"):
            table.add_column(column, justify="left" if column == "customer" else "right")
        for c in report.customers:
            table.add_row(
                c.customer,
                str(c.triggers),
                str(c.orphaned),
                render.age(c.oldest_age_seconds),
                str(c.deleted),
                str(c.redriven),
                str(c.exhausted),
                str(c.recreated),
                str(c.errors),
            )
        console.print(table)
        for action in report.actions:
            console.print(f"{action.customer} {action.change_id}: {action.action} — {action.detail}")
        for error in report.errors:
            console.print(f"[red]error[/]: {error}")
    raise typer.Exit(services.sweep_exit_code(report))


def restart(
    customer: CustomerOption,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Force a new deployment of the customer's ECS service (runbook Task 3, option 1)."""
    settings = options.settings(OpsSettings)
    code = options.configured_customer(settings, customer)
    service = service_to_restart(code)
    if not yes:
        if as_json or not sys.stdin.isatty():
            fail("pass --yes to restart without a prompt", EXIT_USAGE)
        typer.confirm(f"Restart {service} in {settings.cluster_name}?", abort=True)
    try:
        result = restart_service(OpsClients(), settings.cluster_name, code)
    except ClientError as exc:
        missing = {"ClusterNotFoundException": "cluster", "ServiceNotFoundException": "service"}
        what = missing.get(aws.error_code(exc) or "")
        if what is None:
            raise
        fail(
            f"{what} not found: service {service} in cluster {settings.cluster_name} (the cluster is "
            f"{env_var('cluster_name')}, default {names.CLUSTER_NAME}); check it, AWS_REGION and the account"
        )
    if as_json:
        render.emit(result)
    else:
        typer.echo(
            f"new deployment of {result.service} started (desired {result.desired}, running {result.running}); "
            "`health` shows when tasks are back"
        )
