"""The main job: synthesize the sample platform, deploy it on a local AWS emulator, run it end to end.

    make demo            # or: python -m devtools.demo [--skip-synth] [--assembly DIR] [--changes N]

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
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console
from rich.table import Table

from devtools import local_run, ses_events, site_server
from devtools import sandbox as sb
from devtools.emulator import local_aws
from devtools.enforcement import Counts, Enforcement
from devtools.iam_engine.bootstrap import BootstrapGate
from devtools.local_deploy import DeployError, DeployReport, deploy_assembly, event_routing
from devtools.local_deploy.resolve import Aws
from devtools.processes import terminate_with
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.contract import names
from runtime.notify.email_tags import EmailTagError, tags_from_event

ROOT = Path(__file__).resolve().parents[1]
console = Console(highlight=False, width=120)


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
    table = Table(title=f"Sample platform synthesized into {outdir.name}/ in {time.monotonic() - started:.1f}s")
    for column in ("stack", "account", "region", "resources", "depends on"):
        table.add_column(column)
    for name, artifact in sorted(manifest["artifacts"].items()):
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
        environment = artifact.get("environment", "aws://unknown/unknown").removeprefix("aws://").split("/")
        deps = [d for d in artifact.get("dependencies", []) if not d.endswith(".assets")]
        table.add_row(name, environment[0], environment[1], str(len(template.get("Resources", {}))), ", ".join(deps))
    console.print(table)


class Worker:
    """``python -m runtime worker`` of one customer (or, with ``command="coordinator"``, the coordinator)."""

    def __init__(
        self, code: str, env: dict[str, str], logdir: Path, command: str = "worker", argv: list[str] | None = None
    ) -> None:
        self.code = code
        self.log_path = logdir / f"{command}-{code}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            argv or [sys.executable, "-m", "runtime", command],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops them with SIGTERM (drain)
            preexec_fn=terminate_with(os.getpid()),
        )

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, wait for the drain; SIGKILL if it does not end within ``timeout``. Idempotent."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        finally:
            self._log.close()

    def handled(self) -> list[dict[str, Any]]:
        return self.logged("message handled")

    def logged(self, message: str) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and entry.get("message") == message:
                lines.append(entry)
        return lines


class Processes:
    """Every subprocess the demo started; :meth:`stop_all` stops those still running, however the demo ends.

    Used as a context manager: on the way out (normal end, an exception, Ctrl-C, SIGTERM, a closed stdout)
    each process still running gets SIGTERM, and SIGKILL if it has not ended ``timeout`` seconds later.
    """

    def __init__(self) -> None:
        self.started: list[Worker] = []

    def start(
        self, code: str, env: dict[str, str], logdir: Path, command: str = "worker", argv: list[str] | None = None
    ) -> Worker:
        # A Ctrl-C (or SIGTERM) that lands inside Popen would leave a started child unregistered, hence
        # orphaned: it is held until the child is registered, then raised.
        with _interrupts_deferred():
            worker = Worker(code, env, logdir, command, argv)
            self.started.append(worker)
        return worker

    def stop_all(self, timeout: float = 15) -> None:
        running = [w for w in self.started if w.proc.poll() is None]
        for worker in running:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGTERM)
        for worker in self.started:
            worker.stop(timeout)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        # a second Ctrl-C (or a SIGTERM) while the processes drain must not leave them behind
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


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


def load_platform_config() -> Any:
    """The sample platform of ``cdk.json``: the demo runs the pipeline of the app it synthesized."""
    from stacks.config import config_from_context, load_cdk_json

    return config_from_context(load_cdk_json(ROOT / "cdk.json"))


def demo_context() -> dict[str, Any]:
    """``cdk.json``'s ``ttp`` context with meetings configured for the fake Graph (its tenant, client id and
    organizer; the client secret's name in the governance account; the contact readers' ExternalId)."""
    from devtools.fake_graph import DEMO_CONTACT_READER_EXTERNAL_ID, FakeGraph
    from stacks.config import CONTEXT_KEY, load_cdk_json

    ttp = dict(load_cdk_json(ROOT / "cdk.json")[CONTEXT_KEY])
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


@dataclass
class Platform:
    """The deployed sample, as the demo's reports read it."""

    bucket: str
    region: str
    customers: dict[str, sb.CustomerSpec]
    delivery_queue_url: str
    delivery_dlq_url: str
    session: Any  # the operator's boto3 session


def report_deploy(report: DeployReport) -> None:
    table = Table(title=f"deployed on the emulator in {report.seconds:.1f}s (devtools.local_deploy)")
    for column in ("stack", "account", "created (CloudFormation)", "emulated (API)", "recorded only"):
        table.add_column(column)
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
    table = Table(title="services run as their task definitions say (devtools.local_run)")
    for column in ("service", "account", "command", "task role (assumed)", "environment"):
        table.add_column(column)
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


def start_services(
    aws: Aws,
    plans: list[local_run.ServicePlan],
    processes: Processes,
    logdir: Path,
    graph: Any,
    *,
    sweep_every: float,
) -> tuple[dict[str, Worker], Worker | None, list[local_run.Launch], local_run.Scheduled | None]:
    """Start every service (the coordinator first) and the scheduled sweeper; return the processors by
    customer, the coordinator, what was launched, the sweeper's schedule."""
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
        item = local_run.launch(service, aws, waits=waits, endpoints=endpoints)
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
            deployed = deploy_assembly(assembly, emulator.endpoint, gate=BootstrapGate(enforcement.engine))
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
        graph = None
        if meetings:
            from devtools.fake_graph import FakeGraph

            graph = FakeGraph().start()
            cleanup.callback(graph.stop)
        customers = sb.specs_from_config(config.customers)
        governance = config.accounts.governance
        operator = sb.create_unowned(
            aws,
            customers,
            governance_account=governance,
            bucket=config.metadata_bucket_name,
            region=config.accounts.region,
            graph_secret=(GRAPH_SECRET_NAME, graph.client_secret) if graph is not None else None,
        )
        # The operator (the IAM user ttp-operator with the policy docs/runbook.md prescribes) is decided by
        # the engine like the services: its identity policy, and across accounts the bucket policy too.
        if site := site_server.start(assembly, emulator.endpoint, logdir / "site.log"):
            cleanup.callback(site_server.stop, site[0])
            console.print(f"submission site (local sign-in stand-in, API as its deployed role): {site[1]}")
        session = boto3.session.Session(**_keys(operator), region_name=config.accounts.region)
        sqs = session.client("sqs")
        delivery_url = coordinator_plan.environment["TTP_DELIVERY_QUEUE_URL"]
        dlq_url = sqs.get_queue_url(QueueName=names.DELIVERY_EVENTS_DLQ_NAME)["QueueUrl"]
        box = Platform(
            coordinator_plan.environment["TTP_BUCKET_NAME"],
            config.accounts.region,
            {c.code: c for c in customers},
            delivery_url,
            dlq_url,
            session,
        )
        processes = cleanup.enter_context(Processes())
        workers, coordinator, launches, scheduled = start_services(
            aws, plans, processes, logdir, graph, sweep_every=args.sweep_every
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
        s3 = session.client("s3")
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
            settled_ok = _settled(s3, box, changes, meetings=graph is not None)
            if settled_ok:
                break
            time.sleep(0.2)  # the coordinator folds the results and reconciles the meeting after the emails
        settled = time.monotonic() - submitted_at
        report(box, changes, list(workers.values()), elapsed)
        report_coordinator(box, changes, coordinator, settled)
        report_delivery_events(box)
        sweeper = next((item for item in launches if item.plan.schedule), None)
        ops_env = {
            **os.environ,
            **operator.env(),
            "AWS_ENDPOINT_URL": emulator.endpoint,
            "AWS_REGION": box.region,
            "AWS_DEFAULT_REGION": box.region,
            "PYTHONPATH": str(ROOT),
            **operator_settings(plans),
        }
        ops_env.pop("AWS_SESSION_TOKEN", None)
        for command in (["health", "--skip-ecs", "--no-cloudwatch"], ["verify", changes[0]["change_id"]]):
            console.rule(f"python -m runtime {' '.join(command)}")
            sys.stdout.flush()  # the command writes to the same stdout
            subprocess.run([sys.executable, "-m", "runtime", *command], cwd=ROOT, env=ops_env)
        if scheduled is not None:
            scheduled.stop(15)
            console.print(
                f"sweeper ({sweeper.plan.schedule if sweeper else ''} in the template, every "
                f"{args.sweep_every:.0f} s here): {len(scheduled.runs)} runs, exit codes {scheduled.runs}"
            )
        exit_codes = {code: w.stop() for code, w in workers.items()}
        console.print(f"workers stopped with SIGTERM, exit codes: {exit_codes}")
        coordinator_exit = coordinator.stop()
        console.print(f"coordinator stopped with SIGTERM, exit code: {coordinator_exit}")
        decided = report_policy_decisions(enforcement)
        console.print(f"deploy + run: {time.monotonic() - started:.1f} s")
        ok = (
            all(code == 0 for code in exit_codes.values())
            and coordinator_exit == 0
            and elapsed < 120
            and settled_ok
            and decided.denied == 0
        )
        return 0 if ok else 1


def report_policy_decisions(enforcement: Enforcement) -> Counts:
    """What the policy engine decided: every request of the services (their task roles) and of the operator
    was decided from the synthesized policies and the operator's; the deployer's (an administrator, its
    stacks checked by the bootstrap gate instead) were only counted."""
    counts = enforcement.counts
    not_decided = sum(counts.not_decided.values())
    console.print(
        f"policy engine (@cloud-copilot/iam-simulate): {counts.allowed} requests allowed, {counts.denied} denied "
        f"({counts.cached} answered from its cache, {counts.engine_seconds:.1f} s deciding); "
        f"{counts.admin} by the deployer (an administrator) and {not_decided} needing no permission "
        "were not decided"
    )
    for denial in enforcement.denials:
        console.print(f"denied: {denial.message}", style="red", markup=False, highlight=False)
    return counts


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


def _archive(s3: Any, box: Platform, change_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(s3.get_object(Bucket=box.bucket, Key=f"archive/{change_id}.json")["Body"].read())
    return doc


def _settled(s3: Any, box: Platform, changes: list[dict[str, Any]], *, meetings: bool) -> bool:
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
        doc = json.loads(s3.get_object(Bucket=box.bucket, Key=f"archive/{change['change_id']}.json")["Body"].read())
        table = Table(title=f"archive/{doc['change_id']}.json — revision {doc['revision']}: {doc['title']}")
        for column in ("time", "type", "customer", "revision", "by", "detail"):
            table.add_column(column)
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
    emails = Table(title="emails sent (each customer's own SES, assumed role)")
    for column in ("customer", "account", "recipient", "subject"):
        emails.add_column(column)
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
    folds = Table(title="change coordinator: results folded into the archive (one compare-and-swap write each)")
    for column in ("time", "change", "results folded", "customers"):
        folds.add_column(column)
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
    meetings = Table(title="the change's one meeting (reconciled by the coordinator only)")
    for column in ("change", "event id", "generation", "revision", "attendees", "cancelled"):
        meetings.add_column(column)
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
    table = Table(
        title="SES events published for the emails sent (configuration set → EventBridge → delivery-events queue)"
    )
    for column in ("customer", "recipient", "emails", "events of each email"):
        table.add_column(column)
    per_email: dict[tuple[str, str], dict[str, list[str]]] = {}
    tagged: dict[str, int] = {}
    for event in published.events:
        detail = event["detail"]
        kind = detail["eventType"]
        if kind == "Bounce":
            kind = f"Bounce ({detail['bounce']['bounceType']}/{detail['bounce']['bounceSubType']})"
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


_deferring = False
_pending: list[int] = []


def _interrupted(signum: int, _frame: object) -> None:
    if _deferring:
        _pending.append(signum)
        return
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM (with :func:`_interrupted` installed) are held; raised after it.

    Only in the main thread, where the handlers run: the scheduler's thread (the sweeper's runs) must not
    take over an interrupt meant for the main thread (it would end that thread, and the demo would go on).
    The scheduler is stopped before the processes are (see :func:`run`)."""
    global _deferring
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
    if _pending:
        raise KeyboardInterrupt(signal.Signals(_pending.pop()).name)


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
    args = parser.parse_args()
    if args.changes < 1:
        parser.error("--changes must be at least 1")
    # SIGTERM ends the demo as Ctrl-C does: the ExitStack in run() stops everything it started.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
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
