"""The pipeline's own commands: run the worker or the change coordinator, process one trigger by hand,
submit a change. They share
the code paths of the deployed processor (``runtime.pipeline.composition``) rather than copies of them."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer

from runtime import services
from runtime.cli.errors import fail
from runtime.cli.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from runtime.contract import keys
from runtime.contract.settings import (
    BucketSettings,
    ConfigurationError,
    SenderSettings,
    SettingsT,
    load,
)


def _settings(model: type[SettingsT]) -> SettingsT:
    try:
        return load(model)
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)


def worker() -> None:
    """Long-poll this customer's queue and process triggers until SIGTERM."""
    try:
        services.worker()
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)


def coordinator() -> None:
    """Run the change coordinator: fold customers' results into the archive, keep meetings in step."""
    try:
        services.coordinator()
    except ConfigurationError as exc:
        fail(str(exc), EXIT_USAGE)


def process(
    customer: Annotated[str, typer.Option("--customer", help="Customer code whose trigger to process.")],
    change_id: Annotated[str, typer.Option("--change-id", help="Change id (archive/{id}.json).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Process one trigger by hand, through the same state machine as the worker.

    Ctrl-C stops it cleanly: the emails sent so far are checkpointed and the lease is released, so the
    worker can resume at once instead of acking its message as a duplicate for the whole lease time."""
    from runtime.pipeline import Outcome, build_processor

    try:
        ref = keys.TriggerRef(keys.validate_customer_code(customer), keys.validate_change_id(change_id))
    except keys.InvalidKeyError as exc:
        fail(str(exc), EXIT_USAGE)
    settings = _settings(SenderSettings)
    if settings.customer_code != ref.customer_code:
        fail(
            f"--customer {customer} but TTP_CUSTOMER_CODE is {settings.customer_code}: use that customer's settings",
            EXIT_USAGE,
        )
    try:
        processor = build_processor(settings)
    except ConfigurationError as exc:  # the meeting settings are validated while building
        fail(str(exc), EXIT_USAGE)
    _bucket_exists(settings.bucket_name)
    owner = f"manual:{uuid.uuid4().hex[:12]}"
    try:
        result = processor.process(ref, owner=owner)
    except KeyboardInterrupt:  # the processor has already checkpointed what was sent and ended its lease
        fail(
            f"interrupted: the emails sent so far are checkpointed and the lease of {owner} is released, so the "
            "worker (or `process` again) sends only to the remaining recipients (if a warning above says a write "
            "failed, the lease expires by itself within TTP_VISIBILITY_TIMEOUT_SECONDS)",
            EXIT_INTERRUPTED,
        )
    payload = {
        "customer": customer,
        "change_id": change_id,
        "outcome": result.outcome.label,
        "reason": result.reason,
        "revision": result.revision,
        "emails_sent": result.emails_sent,
        "trigger_delete": result.trigger_delete.value if result.trigger_delete else None,
    }
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        for key, value in payload.items():
            typer.echo(f"{key:>15}: {value}")
    if result.outcome in (Outcome.PERMANENT_ERROR, Outcome.POISON):
        raise typer.Exit(EXIT_FAILED)  # e.g. the archive is missing or invalid: the runbook's exit 3
    if result.fate.value != "ack":
        raise typer.Exit(EXIT_ATTENTION)


def _bucket_exists(bucket: str) -> None:
    """Fail (exit 3) unless the bucket exists: the state machine reads a missing archive as a change
    already gone (a duplicate, exit 0), and a HEAD in a missing bucket looks exactly like that."""
    from botocore.exceptions import ClientError

    from runtime import aws

    try:
        aws.client("s3").head_bucket(Bucket=bucket)
    except ClientError as exc:
        if aws.http_status(exc) == 404:
            fail(f"bucket {bucket!r} does not exist — check TTP_BUCKET_NAME")
        raise


def submit(
    document: Annotated[Path, typer.Argument(help="Change document (JSON file, '-' for stdin).", allow_dash=True)],
    customers: Annotated[
        str | None, typer.Option("--customers", help="Comma-separated codes (default: the document's).")
    ] = None,
    user: Annotated[str, typer.Option("--user", help="Who submits (recorded in the archive).")] = "cli",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Archive-first upload of a change document, then one trigger per customer.

    Every customer the document lists must be deployed (published under /ttp/customers in SSM)."""
    from runtime import aws
    from runtime.archive import ArchiveStore, InvalidSubmission, TriggerStore, submit_change, validate_change
    from runtime.ops.customers import require_registered
    from runtime.telemetry import MetricsFactory

    settings = _settings(BucketSettings)
    raw = sys.stdin.read() if str(document) == "-" else document.read_text() if document.exists() else None
    if raw is None:
        fail(f"{document} does not exist", EXIT_USAGE)
    targets = [c.strip() for c in customers.split(",") if c.strip()] if customers else None
    try:
        listed = validate_change(raw).customers
    except InvalidSubmission as exc:
        fail(f"{exc} (nothing was written)", EXIT_USAGE)
    require_registered(aws.client("ssm"), listed)
    s3 = aws.client("s3")
    try:
        result = submit_change(
            ArchiveStore(s3, settings.bucket_name),
            TriggerStore(s3, settings.bucket_name),
            raw,
            user_id=user,
            customers=targets,
            metrics=MetricsFactory(settings.metrics_namespace),
        )
    except InvalidSubmission as exc:
        fail(f"{exc} (nothing was written)", EXIT_USAGE)
    if as_json:
        typer.echo(json.dumps(result.__dict__))
    else:
        typer.echo(f"submitted {result.change_id} revision {result.revision} to {', '.join(result.customers)}")
