"""``dlq list`` and ``dlq redrive``: look at a customer's dead-letter queue without consuming it, and
move messages back once the cause is fixed (bounded, send-then-delete; see ``runtime.ops.dlq``)."""

from __future__ import annotations

from typing import Annotated

import typer
from botocore.exceptions import ClientError

from runtime import aws
from runtime.cli import options, render
from runtime.cli.errors import fail
from runtime.cli.exit_codes import EXIT_ATTENTION, EXIT_OK
from runtime.cli.options import JsonOption
from runtime.contract.settings import OpsSettings
from runtime.ops.clients import OpsClients
from runtime.ops.dlq import list_dlq, redrive_dlq
from runtime.ops.health import PLATFORM_QUEUE_NAMES, platform_queue_url

dlq_app = typer.Typer(
    no_args_is_help=True,
    help="Inspect a dead-letter queue (a customer's, `coordinator`'s or `delivery-events`') and move messages back.",
)


QueueOption = Annotated[
    str,
    typer.Option(
        "--customer", "-c", help="Customer code (a key of TTP_CUSTOMER_QUEUES), coordinator or delivery-events."
    ),
]


def _queue(settings: OpsSettings, customer: str) -> tuple[str, str, bool]:
    """The code, queue URL and whether it carries triggers: a customer of TTP_CUSTOMER_QUEUES, or one of
    :data:`~runtime.ops.health.PLATFORM_QUEUE_NAMES`, found by its physical name in the credentials'
    account and region."""
    name = PLATFORM_QUEUE_NAMES.get(customer)
    if name is None:
        code = options.configured_customer(settings, customer)
        return code, settings.customer_queues[code], True
    try:
        return customer, platform_queue_url(OpsClients().sqs, customer), False
    except ClientError as exc:
        fail(
            f"queue {name} ({customer}) not found in this account and region ({aws.error_code(exc)}): "
            "check AWS_REGION and the credentials' account"
        )


def dlq_list(
    customer: QueueOption,
    limit: Annotated[int, typer.Option("--max", min=1, max=1000, help="Messages to show at most.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Show the DLQ's messages without consuming them. Exit 1 when the DLQ is not empty."""
    settings = options.settings(OpsSettings)
    code, queue_url, triggers = _queue(settings, customer)
    listing = list_dlq(OpsClients().sqs, code, queue_url, limit=limit, triggers=triggers)
    if as_json:
        render.emit(listing)
    else:
        console = render.console()
        console.print(
            f"{listing.dlq_url}: ~{listing.approximate_visible} visible, ~{listing.approximate_in_flight} in flight"
        )
        table = render.table(f"DLQ of {code}", ("message id", "sent", "receives", "triggers", "problem"))
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
    raise typer.Exit(EXIT_ATTENTION if listing.needs_attention else EXIT_OK)


def dlq_redrive(
    customer: QueueOption,
    limit: Annotated[int, typer.Option("--max", min=1, max=10000, help="Messages to move at most.")] = 100,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Move poison messages too (those `dlq list` flags: no valid trigger in the body)."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Move up to --max messages from the DLQ back to the customer's queue (send, then delete). Poison messages
    stay unless --force. Exit 1 on failures or refusals."""
    settings = options.settings(OpsSettings)
    code, queue_url, triggers = _queue(settings, customer)
    with render.progress_bar(f"moving {code}'s DLQ messages", total=limit) as advance:
        report = redrive_dlq(
            OpsClients().sqs,
            code,
            queue_url,
            limit=limit,
            force=force,
            on_message=(lambda _m: advance()) if advance else None,
            triggers=triggers,
        )
    if as_json:
        render.emit(
            {
                "moved": report.moved,
                "failed": report.failed,
                "refused": len(report.refused),
                **render.to_jsonable(report),
            }
        )
    else:
        console = render.console()
        table = render.table(
            f"Re-drive {code}: DLQ → {report.queue_url}",
            ("message id", "new message id", "triggers", "outcome", "detail"),
        )
        for m in report.messages:
            table.add_row(m.message_id, m.new_message_id or "-", "\n".join(m.triggers) or "-", m.outcome, m.detail)
        console.print(table)
        console.print(
            f"{report.moved} moved, {report.failed} with problems, {len(report.refused)} poison refused, "
            f"~{report.remaining} left in the DLQ"
        )
    if report.refused:
        which = "; ".join(f"{m.message_id} ({m.detail})" for m in report.refused)
        fail(
            f"{len(report.refused)} poison message(s) not moved, the worker would dead-letter them again: {which} — "
            f"see `dlq list --customer {code}`; pass --force to move them anyway",
            EXIT_ATTENTION,
        )
    raise typer.Exit(EXIT_ATTENTION if report.needs_attention else EXIT_OK)
