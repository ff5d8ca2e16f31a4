"""The main job: synthesize the sample platform, deploy it on a local AWS emulator, run it end to end.

    make demo            # or: python -m devtools.demo [--skip-synth] [--assembly DIR] [--changes N]
                         #     [--sweep-every SECONDS] [--no-bootstrap-gate]

1. Synthesizes the CDK app into ``cdk.out.local`` (customers from ``cdk.json``; meetings pointed at the
   fake Microsoft Graph: :func:`demo_context`) and prints each stack, its account and resource count.
2. Starts moto's server on a loopback port and deploys every stack on it (:mod:`devtools.local_deploy`),
   then prints per stack what was created, applied through the API, and recorded only.
3. Creates what the stacks do not own (:mod:`devtools.sandbox`: SES identities, contact lists, the Graph
   client secret, an operator's key) and starts the fake Graph.
4. Runs every ECS service of the deployed world (each customer's processor, the change coordinator) and
   the sweeper on its schedule, each with its task definition's command and environment and its task
   role's credentials (:mod:`devtools.local_run`); prints every override. Submits sample changes
   archive-first, waits until every trigger is gone and every customer's result is folded into the
   archive (and the requested meeting is scheduled by the coordinator), and prints what happened: the
   archive's modifications, the coordinator's folds and the meeting, the emails each customer sent,
   timings. The contact lists hold SES mailbox-simulator addresses (``success@``, ``bounce@``, …): the
   emulator's SES (:mod:`devtools.ses_events`) publishes the events SES would for every email it accepts,
   through the configuration set's event destination and the deployed EventBridge rules to the
   delivery-events queue, which the coordinator consumes; the demo only reports them.
5. Runs the ops commands ``health`` and ``verify`` as the operator, stops every process with SIGTERM.

The subprocesses are :mod:`devtools.demo_processes`, the printed reports :mod:`devtools.demo_report`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from devtools import local_run, site_server
from devtools import sandbox as sb
from devtools.demo_processes import Processes, Worker, interrupted
from devtools.demo_report import (
    Platform,
    all_settled,
    console,
    report,
    report_coordinator,
    report_delivery_events,
    report_deploy,
    report_launches,
    report_policy_decisions,
    titled_table,
)
from devtools.emulator import local_aws
from devtools.enforcement import Enforcement
from devtools.iam_engine.bootstrap import BootstrapGate
from devtools.local_deploy import DeployError, deploy_assembly
from devtools.local_deploy.resolve import Aws
from devtools.task_agent import TaskAgent
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.contract import names

ROOT = Path(__file__).resolve().parents[1]

__all__ = [  # the processes and the reports live in demo_processes and demo_report; these names stay here
    "DEMO_WAITS",
    "GRAPH_SECRET_NAME",
    "Platform",
    "Processes",
    "Worker",
    "demo_context",
    "load_platform_config",
    "main",
    "operator_settings",
    "report_deploy",
    "report_policy_decisions",
    "run",
    "sample_changes",
    "start_services",
    "synthesize",
]


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> None:
    """Run the CDK app (python app.py, as ``cdk synth`` would, ``context`` as ``-c`` would pass it) and
    summarise the cloud assembly."""
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    if context:
        env["CDK_CONTEXT_JSON"] = json.dumps(context)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        console.print(f"[red]synth failed[/red]\n{result.stderr[-3000:]}")
        raise SystemExit(1)
    manifest = json.loads((outdir / "manifest.json").read_text())
    table = titled_table(
        f"Sample platform synthesized into {outdir.name}/ in {time.monotonic() - started:.1f}s",
        ("stack", "account", "region", "resources", "depends on"),
    )
    for name, artifact in sorted(manifest["artifacts"].items()):
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
        environment = artifact.get("environment", "aws://unknown/unknown").removeprefix("aws://").split("/")
        deps = [d for d in artifact.get("dependencies", []) if not d.endswith(".assets")]
        table.add_row(name, environment[0], environment[1], str(len(template.get("Resources", {}))), ", ".join(deps))
    console.print(table)


def sample_changes(codes: list[str], count: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    changes: list[dict[str, Any]] = [
        {
            "change_id": "CHG-2026-0001",
            "title": "Patch the shared VPC endpoints",
            "summary": "Rolling replacement of interface endpoints; no downtime expected.",
            "customers": codes,
            "implementation_start": start.isoformat(),
            "implementation_end": (start + timedelta(hours=2)).isoformat(),
            "ticket": "CCOE-1234",  # a field the processor does not know: kept on every rewrite
        },
        {
            "change_id": "CHG-2026-0002",
            "title": "Rotate <KMS> keys & re-encrypt buckets",
            "customers": codes[:2],
            "description": "HTML in a title is escaped: <b>not bold</b>.",
            "meeting": {
                "start_time": (start + timedelta(days=1)).isoformat(),
                "end_time": (start + timedelta(days=1, hours=1)).isoformat(),
                "subject": "CAB: KMS rotation",
            },
        },
    ]
    for n in range(3, count + 1):
        changes.append({"change_id": f"CHG-2026-{n:04d}", "title": f"Routine change {n}", "customers": codes[-1:]})
    return changes[:count]


GRAPH_SECRET_NAME = "ttp/graph-client-secret"
DEMO_WAITS = {"TTP_RECEIVE_WAIT_SECONDS": "1", "TTP_DRAIN_SECONDS": "10"}
"""Demo-sized waits: a stop need not wait out a 20 s long poll, nor a 90 s drain."""
SWEEP_EVERY_SECONDS = 10.0
"""The sweeper's period in the demo (the template's rate is minutes: the demo would end before a run)."""


def load_platform_config(cdk_json: Path | None = None) -> Any:
    """The sample platform of ``cdk.json`` (or of another copy of it, ``make emulator``'s ``--cdk-json``): the
    demo runs the pipeline of the app it synthesized."""
    from stacks.config import config_from_context, load_cdk_json

    return config_from_context(load_cdk_json(cdk_json or ROOT / "cdk.json"))


def demo_context(cdk_json: Path | None = None) -> dict[str, Any]:
    """``cdk.json``'s (or ``cdk_json``'s) ``ttp`` context with meetings configured for the fake Graph (its
    tenant, client id and organizer; the client secret's name in the governance account; the contact
    readers' ExternalId)."""
    from devtools.fake_graph import DEMO_CONTACT_READER_EXTERNAL_ID, FakeGraph
    from stacks.config import CONTEXT_KEY, load_cdk_json

    ttp = dict(load_cdk_json(cdk_json or ROOT / "cdk.json")[CONTEXT_KEY])
    fake = FakeGraph()
    ttp["meetings"] = {
        "graph_tenant_id": fake.tenant_id,
        "graph_client_id": fake.client_id,
        "meeting_organizer": fake.organizer,
        "graph_client_secret": GRAPH_SECRET_NAME,
        "contact_reader_external_id": DEMO_CONTACT_READER_EXTERNAL_ID,
    }
    ttp["site"] = site_server.LOCAL_OIDC  # the site's API runs locally behind the sign-in stand-in
    return {CONTEXT_KEY: ttp, "aws:cdk:bundling-stacks": []}  # nothing local runs a bundled asset


def start_services(
    aws: Aws,
    plans: list[local_run.ServicePlan],
    processes: Processes,
    logdir: Path,
    graph: Any,
    *,
    sweep_every: float,
    agent: TaskAgent | None = None,
) -> tuple[dict[str, Worker], Worker | None, list[local_run.Launch], local_run.Scheduled | None]:
    """Start every service (the coordinator first) and the scheduled sweeper; return the processors by
    customer, the coordinator, what was launched, the sweeper's schedule. With ``agent`` each service's
    task gets its ``ECS_AGENT_URI`` there (task scale-in protection, decided as its task role)."""
    launches: list[local_run.Launch] = []
    workers: dict[str, Worker] = {}
    coordinator = None
    scheduled = None
    for service in sorted(plans, key=lambda p: (bool(p.customer), p.name)):
        endpoints = {}
        if graph is not None and "TTP_GRAPH_BASE_URL" in service.environment:
            endpoints = {
                "TTP_GRAPH_BASE_URL": graph.graph_base_url,
                "TTP_GRAPH_AUTHORITY_HOST": graph.authority_host,
                "REQUESTS_CA_BUNDLE": graph.ca_path,
            }
        waits = {k: v for k, v in DEMO_WAITS.items() if k in service.environment}
        item = local_run.launch(service, aws, waits=waits, endpoints=endpoints, agent=agent)
        launches.append(item)
        command = item.argv[-1]
        if service.schedule:

            def run_once(number: int, item: local_run.Launch = item) -> subprocess.Popen[bytes]:
                return processes.start(f"run{number}", item.env, logdir, command=item.argv[-1], argv=item.argv).proc

            scheduled = local_run.Scheduled(run_once, sweep_every)
        elif service.customer:
            workers[service.customer] = processes.start(service.customer, item.env, logdir, command, item.argv)
        else:
            coordinator = processes.start(service.name, item.env, logdir, command, item.argv)
    return workers, coordinator, launches, scheduled


def run(args: argparse.Namespace) -> int:
    assembly: Path = args.assembly
    if not args.skip_synth:
        synthesize(assembly, context=demo_context())
    elif not (assembly / "manifest.json").is_file():
        console.print(f"[red]no cloud assembly in {assembly}[/red]: run without --skip-synth, or give --assembly DIR")
        return 2
    logdir = Path(tempfile.mkdtemp(prefix="ttp-demo-"))
    started = time.monotonic()
    # Whatever happens from here on (an exception, Ctrl-C, SIGTERM, a closed stdout), the ExitStack stops
    # every process the demo started, then the fake Graph, then the emulator.
    with contextlib.ExitStack() as cleanup:
        enforcement = Enforcement()
        emulator = cleanup.enter_context(local_aws(enforce=enforcement))
        console.print(f"local AWS emulator on {emulator.endpoint}; service logs in {logdir}")
        try:
            gate = None if args.no_bootstrap_gate else BootstrapGate(enforcement.engine)
            deployed = deploy_assembly(assembly, emulator.endpoint, gate=gate)
        except DeployError as exc:
            partial = getattr(exc, "report", None)
            if partial is not None:
                report_deploy(partial)
            console.print(f"[red]deploy failed[/red]: {exc}")
            return 1
        report_deploy(deployed)
        enforcement.world = deployed.world  # the bucket policy lives only in the deployed world (moto drops it)
        config = load_platform_config()
        plans = local_run.plan(assembly, deployed.world)
        aws = Aws(emulator.endpoint)
        coordinator_plan = next(p for p in plans if not p.customer and not p.schedule)
        meetings = "TTP_GRAPH_BASE_URL" in coordinator_plan.environment
        graph = cleanup.enter_context(_fake_graph()) if meetings else None
        customers = sb.specs_from_config(config.customers)
        operator = sb.create_unowned(
            aws,
            customers,
            governance_account=config.accounts.governance,
            bucket=config.metadata_bucket_name,
            region=config.accounts.region,
            graph_secret=(GRAPH_SECRET_NAME, graph.client_secret) if graph is not None else None,
        )
        # The operator (the IAM user ttp-operator with the policy docs/runbook.md prescribes) is decided by
        # the engine like the services: its identity policy, and across accounts the bucket policy too.
        if site := site_server.start(assembly, emulator.endpoint, logdir / "site.log"):
            cleanup.callback(site_server.stop, site[0])
            console.print(f"submission site (local sign-in stand-in, API as its deployed role): {site[1]}")
        box = _platform(operator, config.accounts.region, customers, coordinator_plan)
        agent = cleanup.enter_context(TaskAgent(enforcement))  # stopped after the processes (LIFO)
        processes = cleanup.enter_context(Processes())
        workers, coordinator, launches, scheduled = start_services(
            aws, plans, processes, logdir, graph, sweep_every=args.sweep_every, agent=agent
        )
        if scheduled is not None:
            cleanup.callback(scheduled.stop, 15)
        report_launches(launches, args.sweep_every)
        assert coordinator is not None
        running = sorted(workers)
        if running != sorted(box.customers):
            console.print(
                f"[red]processors running for {running}, customers in cdk.json: {sorted(box.customers)}[/red]"
            )
            return 1
        changes = sample_changes(running, args.changes)
        if graph is None:
            for change in changes:
                change.pop("meeting", None)
        elapsed, settled, settled_ok = _submit_and_wait(box, changes, meetings=graph is not None)
        report(box, changes, list(workers.values()), elapsed)
        report_coordinator(box, changes, coordinator, settled)
        report_delivery_events(box)
        _run_ops_commands(operator, emulator.endpoint, box.region, plans, changes[0]["change_id"])
        sweeper = next((item for item in launches if item.plan.schedule), None)
        stopped_ok = _stop_services(workers, coordinator, scheduled, sweeper, args.sweep_every)
        decided = report_policy_decisions(enforcement, agent)
        console.print(f"deploy + run: {time.monotonic() - started:.1f} s")
        ok = stopped_ok and elapsed < 120 and settled_ok and decided.denied == 0
        return 0 if ok else 1


@contextlib.contextmanager
def _fake_graph() -> Iterator[Any]:
    """A started fake Graph (the deployed coordinator's meetings point at it), stopped on the way out."""
    from devtools.fake_graph import FakeGraph

    graph = FakeGraph().start()
    try:
        yield graph
    finally:
        graph.stop()


def _stop_services(
    workers: dict[str, Worker],
    coordinator: Worker,
    scheduled: local_run.Scheduled | None,
    sweeper: local_run.Launch | None,
    sweep_every: float,
) -> bool:
    """The sweeper's schedule first, then every service with SIGTERM; whether each exited 0."""
    if scheduled is not None:
        scheduled.stop(15)
        console.print(
            f"sweeper ({sweeper.plan.schedule if sweeper else ''} in the template, every "
            f"{sweep_every:.0f} s here): {len(scheduled.runs)} runs, exit codes {scheduled.runs}"
        )
    exit_codes = {code: w.stop() for code, w in workers.items()}
    console.print(f"workers stopped with SIGTERM, exit codes: {exit_codes}")
    coordinator_exit = coordinator.stop()
    console.print(f"coordinator stopped with SIGTERM, exit code: {coordinator_exit}")
    return all(code == 0 for code in exit_codes.values()) and coordinator_exit == 0


def _platform(
    operator: sb.Operator, region: str, customers: list[sb.CustomerSpec], coordinator: local_run.ServicePlan
) -> Platform:
    """The deployed sample as the reports read it, through the operator's session."""
    session = boto3.session.Session(**_keys(operator), region_name=region)
    dlq_url = session.client("sqs").get_queue_url(QueueName=names.DELIVERY_EVENTS_DLQ_NAME)["QueueUrl"]
    return Platform(
        coordinator.environment["TTP_BUCKET_NAME"],
        region,
        {c.code: c for c in customers},
        coordinator.environment["TTP_DELIVERY_QUEUE_URL"],
        dlq_url,
        session,
    )


def _submit_and_wait(box: Platform, changes: list[dict[str, Any]], *, meetings: bool) -> tuple[float, float, bool]:
    """Submit ``changes`` archive-first, then wait (120 s at most) until every trigger is gone and every
    result is folded (and every meeting recorded): seconds to the last trigger, to settled, and whether it did."""
    s3 = box.session.client("s3")
    archive, triggers = ArchiveStore(s3, box.bucket), TriggerStore(s3, box.bucket)
    submitted_at = time.monotonic()
    for change in changes:
        submit_change(archive, triggers, change, user_id="demo@ccoe.example.com")
    console.print(f"submitted {len(changes)} changes (archive first, then one trigger per customer)")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if s3.list_objects_v2(Bucket=box.bucket, Prefix="customers/").get("KeyCount", 0) == 0:
            break
        time.sleep(0.2)
    else:
        console.print("[red]triggers still present after 120 s[/red]")
    elapsed = time.monotonic() - submitted_at
    settled_ok = False
    while time.monotonic() < deadline:
        settled_ok = all_settled(s3, box, changes, meetings=meetings)
        if settled_ok:
            break
        time.sleep(0.2)  # the coordinator folds the results and reconciles the meeting after the emails
    return elapsed, time.monotonic() - submitted_at, settled_ok


def _run_ops_commands(
    operator: sb.Operator, endpoint: str, region: str, plans: list[local_run.ServicePlan], change_id: str
) -> None:
    """``health`` and ``verify`` as the operator, on the same stdout."""
    ops_env = {
        **os.environ,
        **operator.env(),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "PYTHONPATH": str(ROOT),
        **operator_settings(plans),
    }
    ops_env.pop("AWS_SESSION_TOKEN", None)
    for command in (["health", "--skip-ecs", "--no-cloudwatch"], ["verify", change_id]):
        console.rule(f"python -m runtime {' '.join(command)}")
        sys.stdout.flush()  # the command writes to the same stdout
        subprocess.run([sys.executable, "-m", "runtime", *command], cwd=ROOT, env=ops_env)


def operator_settings(plans: list[local_run.ServicePlan]) -> dict[str, str]:
    """The ``TTP_*`` variables the ops CLI reads, taken from the deployed task definitions (the sweeper's
    bucket and customers: their codes, where their queues are, any queue elsewhere; the coordinator's queues)."""
    settings: dict[str, str] = {}
    names = ("TTP_BUCKET_NAME", "TTP_CUSTOMER_CODES", "TTP_QUEUE_REGION", "TTP_QUEUE_ACCOUNT", "TTP_CUSTOMER_QUEUES")
    for service in plans:
        for name in (*names, "TTP_CLUSTER_NAME"):
            if name in service.environment:
                settings[name] = service.environment[name]
    return settings


def _keys(operator: sb.Operator) -> dict[str, str]:
    return {"aws_access_key_id": operator.access_key_id, "aws_secret_access_key": operator.secret_access_key}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-synth", action="store_true", help="Do not synthesize the CDK app first.")
    parser.add_argument("--changes", type=int, default=4, help="How many sample changes to submit (>= 1).")
    parser.add_argument(
        "--assembly", type=Path, default=ROOT / "cdk.out.local", help="Where the sample app is synthesized."
    )
    parser.add_argument(
        "--sweep-every", type=float, default=SWEEP_EVERY_SECONDS, help="The sweeper's period here, in seconds."
    )
    parser.add_argument(
        "--no-bootstrap-gate",
        action="store_true",
        help="Do not decide each stack as its account's CloudFormation execution role before creating it.",
    )
    args = parser.parse_args()
    if args.changes < 1:
        parser.error("--changes must be at least 1")
    # SIGTERM ends the demo as Ctrl-C does: the ExitStack in run() stops everything it started.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        code = run(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        with contextlib.suppress(BrokenPipeError):
            console.print("[yellow]interrupted; every process the demo started was stopped[/yellow]")
            sys.stdout.flush()
        code = 130
    except BrokenPipeError:  # `make demo | head`: stdout closed; everything was stopped on the way out
        code = 141
    if code == 141 or _stdout_closed():
        # No further write may fail at interpreter exit (Python would report it and exit 120).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(code)


def _stdout_closed() -> bool:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    return False


if __name__ == "__main__":
    main()
