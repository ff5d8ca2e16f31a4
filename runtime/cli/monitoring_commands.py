"""The commands that show where to look: ``logs`` (one customer's processor log lines, filtered) and
``dashboard-json`` (the CloudWatch dashboards as the platform stack deploys them).

Each parses its options, calls ``runtime.ops`` and prints the result.
"""

from __future__ import annotations

import json
import os
import re
from typing import Annotated

import typer

from runtime.cli import options, render
from runtime.cli.errors import fail
from runtime.cli.exit_codes import EXIT_USAGE
from runtime.cli.options import JsonOption
from runtime.contract import keys, names
from runtime.contract.settings import REGION_PATTERN, ConfigurationError, load
from runtime.ops.clients import OpsClients
from runtime.ops.dashboards import AllDashboardsSettings, DashboardSettings, dashboard_payload
from runtime.ops.errors import OpsError
from runtime.ops.logs import read_logs


def dashboard_json(
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace",
            help=f"Metrics namespace (default TTP_METRICS_NAMESPACE or {names.DEFAULT_METRICS_NAMESPACE}).",
        ),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="Region of the widgets (default AWS_REGION).")] = None,
    cluster_name: Annotated[
        str | None,
        typer.Option("--cluster-name", help=f"ECS cluster (default TTP_CLUSTER_NAME or {names.CLUSTER_NAME})."),
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
    where = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not where:
        fail("--region is required (or set AWS_REGION)", EXIT_USAGE)
    if not re.fullmatch(REGION_PATTERN, where):
        fail(f"--region (or AWS_REGION): {where!r} is not an AWS region name, e.g. 'us-east-1'", EXIT_USAGE)
    if customers and not all_dashboards:
        fail("--customers lists the customers of --all: add --all, or use --customer C for one dashboard", EXIT_USAGE)
    listed = [c.strip() for c in customers.split(",") if c.strip()] if customers else None
    reads_queues = all_dashboards and listed is None
    overrides: dict[str, object] = {}
    if namespace:
        overrides["metrics_namespace"] = namespace
    if cluster_name:
        overrides["cluster_name"] = cluster_name
    model = AllDashboardsSettings if reads_queues else DashboardSettings
    try:
        settings = load(model, **overrides)
    except ConfigurationError as exc:
        hint = "\n--all needs --customers a,b or TTP_CUSTOMER_QUEUES" if reads_queues else ""
        fail(f"{exc}{hint}", EXIT_USAGE)
    if isinstance(settings, AllDashboardsSettings):
        codes = sorted(settings.customer_queues)
    else:
        codes = (listed or []) if all_dashboards else []
    try:
        if customer:
            keys.validate_customer_code(customer)
        for code in codes:
            keys.validate_customer_code(code)
    except keys.InvalidKeyError as exc:
        fail(f"--customer(s): {exc}", EXIT_USAGE)
    try:
        payload = dashboard_payload(
            region=where,
            namespace=settings.metrics_namespace,
            cluster_name=settings.cluster_name,
            customer=customer,
            every_customer=codes if all_dashboards else None,
        )
    except OpsError as exc:
        fail(str(exc))
    typer.echo(json.dumps(payload, indent=None if as_json else 2))


def logs(
    customer: Annotated[
        str,
        typer.Option("--customer", "-c", help="Customer code, or coordinator or sweeper: their log groups."),
    ],
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
        fail(str(exc), EXIT_USAGE)
    window = options.duration(since, "--since")
    found = read_logs(OpsClients(), customer, since=window, change_id=change_id, errors=errors, limit=limit)
    if as_json:
        render.emit(found)
    else:
        for line in found.events:
            typer.echo(line["message"].rstrip())
        typer.echo(f"({len(found.events)} line(s) from {found.log_group} in the last {since})", err=True)
