"""The local runner: every ECS service a deployed assembly defines, started as a real process.

    from devtools.local_run import plan, Runner     # the demo and ``make emulator`` use it

What runs is read from what was deployed, never listed by hand: each ``AWS::ECS::Service`` of the
deployed world (each customer's processor, the change coordinator) runs its task definition's container
command, and each task definition an ``AWS::Events::Rule`` schedules (the sweeper) runs on the rule's
``rate(...)``. A customer added to ``cdk.json`` is a processor here after the next synth and deploy.

A process gets, as ECS would give it, the image's ``ENV`` (``runtime/Dockerfile``), the task definition's
environment exactly, its secrets resolved from the emulator's Secrets Manager with the execution role's
credentials, and the credentials of its task role (``sts:AssumeRole`` on the emulator, in the role's
account, so every request it makes is signed as that role). Only these are overridden, and
:meth:`ServicePlan.overrides` lists each one for the report:

* ``AWS_ENDPOINT_URL`` (the emulator), ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` (ECS sets them);
* ``python`` of the command is this interpreter, with ``PYTHONPATH`` the checkout (the image's ``/app``)
  and this ``PATH`` (the base image's);
* ``ECS_AGENT_URI`` (ECS injects it; the runner's :class:`~devtools.task_agent.TaskAgent` answers the
  task scale-in protection endpoint there, each call decided as the task role's ``UpdateTaskProtection``);
* the waits given in ``waits`` (demo-sized: a 1 s receive wait instead of 20 s, so a stop does not wait
  out a long poll) and the endpoints given in ``endpoints`` (the fake Graph's URLs and its CA bundle).

Queue URLs stay as the task definitions have them (``https://sqs.us-east-1.amazonaws.com/…``): boto3 sends
every request to ``AWS_ENDPOINT_URL`` and the URL is only a parameter, which the emulator accepts.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.local_deploy.assembly import read_assembly
from devtools.local_deploy.deployer import World
from devtools.local_deploy.resolve import Aws
from devtools.task_agent import TaskAgent
from runtime.worker.task_protection import AGENT_URI_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "runtime" / "Dockerfile"
SESSION_NAME = "local-runner"


def image_environment(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The ``ENV`` of the image (``NAME=value`` pairs, continuation lines joined)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


@dataclass(frozen=True)
class ServicePlan:
    """One process to run: a service's (or a scheduled task's) container, as its task definition says."""

    name: str  # the ECS service name, or the task definition family of a scheduled task
    account: str
    region: str
    family: str
    container: str
    command: tuple[str, ...]
    environment: dict[str, str]
    secrets: dict[str, str]  # variable -> ValueFrom (a Secrets Manager ARN)
    task_role_arn: str
    execution_role_arn: str
    schedule: str = ""  # "rate(5 minutes)" for a scheduled task; "" for a service
    cluster: str = ""  # the service's cluster (a name or an ARN)
    task_tags: dict[str, str] = field(default_factory=dict)  # what the service propagates to its tasks

    @property
    def customer(self) -> str:
        return self.environment.get("TTP_CUSTOMER_CODE", "")

    @property
    def schedule_seconds(self) -> float:
        """The period of ``rate(N unit)``; 0 for a service."""
        if not self.schedule:
            return 0.0
        match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", self.schedule)
        if match is None:
            raise ValueError(f"{self.name}: schedule {self.schedule!r} is not a rate(N unit) expression")
        unit = {"minute": 60, "hour": 3600, "day": 86400}[match[2].rstrip("s")]
        return float(int(match[1]) * unit)


def plan(assembly: Path, world: World) -> list[ServicePlan]:
    """Every ECS service of the deployed world and every scheduled task of the assembly's templates."""
    plans: list[ServicePlan] = []
    for account, mine in sorted(world.accounts.items()):
        by_arn = {td["arn"]: (family, td) for family, td in mine.task_definitions.items()}
        for name, service in sorted(mine.services.items()):
            family, td = by_arn[service["task_definition"]]
            tags = service.get("tags", {}) if service.get("propagate_tags") == "SERVICE" else {}
            plans.append(_plan(name, account, family, td, cluster=service.get("cluster", ""), task_tags=tags))
    for stack in read_assembly(assembly):
        resources = stack.template.get("Resources", {})
        for logical_id, resource in sorted(resources.items()):
            properties = resource.get("Properties", {})
            if resource.get("Type") != "AWS::Events::Rule" or "ScheduleExpression" not in properties:
                continue
            for target in properties.get("Targets", []):
                reference = target.get("EcsParameters", {}).get("TaskDefinitionArn", {})
                task_definition = resources.get(reference.get("Ref", "") if isinstance(reference, dict) else "")
                if task_definition is None:
                    raise ValueError(
                        f"{stack.stack_name} {logical_id}: a scheduled target whose task definition is not a Ref "
                        "to one of the stack's task definitions; the local runner cannot tell what to run"
                    )
                family = task_definition["Properties"]["Family"]
                td = world.account(stack.account).task_definitions[family]
                plans.append(_plan(family, stack.account, family, td, properties["ScheduleExpression"]))
    return plans


def _plan(
    name: str,
    account: str,
    family: str,
    td: dict[str, Any],
    schedule: str = "",
    *,
    cluster: str = "",
    task_tags: dict[str, str] | None = None,
) -> ServicePlan:
    if len(td["containers"]) != 1:
        raise ValueError(f"{family}: {len(td['containers'])} containers; the local runner runs one per task")
    [container] = td["containers"]
    region = td["arn"].split(":")[3]
    return ServicePlan(
        name=name,
        account=account,
        region=region,
        family=family,
        container=container["name"],
        command=tuple(container["command"]),
        environment=dict(container["environment"]),
        secrets=dict(container["secrets"]),
        task_role_arn=td["task_role_arn"],
        execution_role_arn=td["execution_role_arn"],
        schedule=schedule,
        cluster=cluster,
        task_tags=dict(task_tags or {}),
    )


@dataclass
class Launch:
    """The argv and environment of one process, and what differs from the task definition."""

    plan: ServicePlan
    argv: list[str]
    env: dict[str, str]
    overrides: dict[str, str] = field(default_factory=dict)  # variable (or "command[0]") -> value used

    @property
    def role_session(self) -> str:
        return f"{self.plan.task_role_arn} (session {SESSION_NAME})"


def assume(aws: Aws, role_arn: str, region: str) -> dict[str, str]:
    """Credentials of ``role_arn``, assumed on the emulator in the role's own account."""
    account = role_arn.split(":")[4]
    credentials = aws.client("sts", account, region).assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME)[
        "Credentials"
    ]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def resolve_secrets(endpoint: str, service: ServicePlan, credentials: dict[str, str]) -> dict[str, str]:
    """Each ECS secret's value, read from the emulator's Secrets Manager as the execution role (as ECS does)."""
    import boto3

    values: dict[str, str] = {}
    for variable, value_from in service.secrets.items():
        parts = value_from.split(":")
        if len(parts) < 7 or parts[2] != "secretsmanager":
            raise ValueError(f"{service.name}: secret {variable} comes from {value_from!r}, not a Secrets Manager ARN")
        region = parts[3]
        client = boto3.client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=credentials["AWS_SESSION_TOKEN"],
        )
        # arn:…:secret:NAME[-suffix][:json-key:version-stage:version-id]; a partial ARN names the secret
        secret_id = ":".join(parts[:7])
        try:
            answer = client.get_secret_value(SecretId=secret_id)
        except client.exceptions.ResourceNotFoundException:
            answer = client.get_secret_value(SecretId=parts[6])
        values[variable] = answer["SecretString"]
    return values


def launch(
    service: ServicePlan,
    aws: Aws,
    *,
    waits: dict[str, str] | None = None,
    endpoints: dict[str, str] | None = None,
    agent: TaskAgent | None = None,
) -> Launch:
    """The process ECS would start for ``service``, on the emulator at ``aws.endpoint``; with ``agent``,
    its ``ECS_AGENT_URI`` (a service's task only: the agent decides as its task role, on its cluster and tags)."""
    argv = list(service.command)
    overrides: dict[str, str] = {}
    if argv and argv[0] == "python":
        argv[0] = sys.executable
        overrides["command[0]"] = sys.executable
    env = {**image_environment(), **service.environment}
    execution = assume(aws, service.execution_role_arn, service.region) if service.secrets else {}
    env.update(resolve_secrets(aws.endpoint, service, execution) if service.secrets else {})
    credentials = assume(aws, service.task_role_arn, service.region)
    env.update(credentials)
    local = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),  # the base image's PATH names the image's python
        "AWS_ENDPOINT_URL": aws.endpoint,
        "AWS_REGION": service.region,
        "AWS_DEFAULT_REGION": service.region,
        "PYTHONPATH": str(ROOT),
        **(waits or {}),
        **(endpoints or {}),
    }
    for name in (waits or {}) | (endpoints or {}):
        if name not in service.environment and not name.startswith("REQUESTS_"):
            raise ValueError(
                f"{service.name}: {name} is not in the task definition's environment; the runner overrides "
                "waits and endpoints the task definition sets, it adds no setting of its own"
            )
    if agent is not None and not service.schedule:
        local[AGENT_URI_VARIABLE] = agent.register(
            region=service.region,
            account=service.account,
            cluster=service.cluster,
            tags=service.task_tags,
            access_key=credentials["AWS_ACCESS_KEY_ID"],
        )
    overrides.update(local)
    env.update(local)
    return Launch(service, argv, env, overrides)


class Scheduled:
    """A scheduled task: one run of its command every ``period`` seconds (the first at once), one at a time
    (as EventBridge's ECS target with a task count of 1 would start them, they do not overlap here)."""

    def __init__(self, start: Callable[[int], subprocess.Popen[bytes]], period: float) -> None:
        self.period = period
        self.runs: list[int] = []  # exit codes of the finished runs
        self._start = start
        self._stop = threading.Event()
        self._current: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="scheduled-task", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            with self._lock:
                if self._stop.is_set():
                    return
                self._current = self._start(number)
            self.runs.append(self._current.wait())
            self._stop.wait(self.period)

    def stop(self, timeout: float) -> None:
        self._stop.set()
        with self._lock:
            current = self._current
        if current is not None and current.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                current.send_signal(signal.SIGTERM)
            try:
                current.wait(timeout)
            except subprocess.TimeoutExpired:
                current.kill()
        self._thread.join(timeout)


def main(argv: list[str] | None = None) -> int:
    """``python -m devtools.local_run`` (``make emulator``): one local world until Ctrl-C or SIGTERM.

    Synthesizes the sample app (customers from ``cdk.json``, meetings on the fake Graph), deploys it on a
    fresh emulator, creates what the stacks do not own, starts the fake Graph and, unless ``--no-services``,
    every service and the sweeper as :mod:`devtools.demo` does; every request of a service is decided by the
    policy engine from the synthesized policies, as in the demo. Prints the ``export`` lines of an operator
    (the ops CLI, ``python -m runtime …``) and of every service (to run one by hand instead).
    """
    import tempfile

    from devtools import demo, site_server
    from devtools import sandbox as sb
    from devtools.emulator import LocalAws
    from devtools.enforcement import Enforcement
    from devtools.fake_graph import FakeGraph
    from devtools.iam_engine.bootstrap import BootstrapGate
    from devtools.local_deploy import DeployError, deploy_assembly

    args = _parse_args(argv)
    if not args.skip_synth:
        demo.synthesize(args.assembly, context=demo.demo_context(args.cdk_json))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with contextlib.ExitStack() as cleanup:
        enforcement = Enforcement()
        emulator = LocalAws(enforce=enforcement).start()
        cleanup.callback(emulator.stop)
        try:
            gate = None if args.no_bootstrap_gate else BootstrapGate(enforcement.engine)
            deployed = deploy_assembly(args.assembly, emulator.endpoint, gate=gate)
        except DeployError as exc:
            print(f"deploy failed: {exc}", file=sys.stderr)
            return 1
        demo.report_deploy(deployed)
        enforcement.world = deployed.world  # the bucket policy lives only in the deployed world
        agent = cleanup.enter_context(TaskAgent(enforcement))  # the services' ECS_AGENT_URI
        cleanup.callback(demo.report_policy_decisions, enforcement, agent)  # printed when the world stops
        plans = plan(args.assembly, deployed.world)
        config = demo.load_platform_config(args.cdk_json)
        aws = Aws(emulator.endpoint)
        graph = FakeGraph().start()
        cleanup.callback(graph.stop)
        operator = sb.create_unowned(
            aws,
            sb.specs_from_config(config.customers),
            governance_account=config.accounts.governance,
            bucket=config.metadata_bucket_name,
            region=config.accounts.region,
            graph_secret=(demo.GRAPH_SECRET_NAME, graph.client_secret),
        )
        print(f"# emulator {emulator.endpoint}, fake Graph {graph.url}")
        _print_exports(aws, plans, graph, {**operator.env(), **demo.operator_settings(plans)}, config.accounts.region)
        if not args.no_services:
            logdir = Path(tempfile.mkdtemp(prefix="ttp-emulator-"))
            processes = cleanup.enter_context(demo.Processes())
            *_, scheduled = demo.start_services(
                aws, plans, processes, logdir, graph, sweep_every=args.sweep_every, agent=agent
            )
            if scheduled is not None:
                cleanup.callback(scheduled.stop, 15)
            print(f"# running every service above (logs in {logdir}); sweeper every {args.sweep_every:.0f} s")
        print(
            "# SES publishes the events of every email it accepts (mailbox-simulator outcomes) through each "
            "configuration set's event destination and the deployed EventBridge rules (devtools/ses_events.py)"
        )
        if site := site_server.start(args.assembly, emulator.endpoint, Path(tempfile.mkdtemp()) / "site.log"):
            cleanup.callback(site_server.stop, site[0])
            print(f"# submission site (local sign-in stand-in, API as its deployed role): {site[1]}")
        print("# Ctrl-C (or SIGTERM) stops everything; the data lives in memory only.", flush=True)
        stop.wait()
    return 0


def _parse_args(argv: list[str] | None) -> Any:
    """The command line of :func:`main`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m devtools.local_run", description=main.__doc__)
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out.local", help="where to synthesize")
    parser.add_argument("--skip-synth", action="store_true", help="deploy the assembly already there")
    parser.add_argument("--no-services", action="store_true", help="print the exports, run no service")
    parser.add_argument("--sweep-every", type=float, default=300.0, help="the sweeper's period here (s)")
    parser.add_argument(
        "--no-bootstrap-gate",
        action="store_true",
        help="do not decide each stack as its account's CloudFormation execution role before creating it",
    )
    parser.add_argument(
        "--cdk-json",
        type=Path,
        default=ROOT / "cdk.json",
        help="the app's configuration: a copy of cdk.json, e.g. with a customer being onboarded (docs/onboarding.md)",
    )
    args = parser.parse_args(argv)
    return args


def _print_exports(aws: Aws, plans: list[ServicePlan], graph: Any, operator: dict[str, str], region: str) -> None:
    """The ``export`` lines of an operator (``operator``: its keys and the ops CLI's settings) and of every
    service, each with its task role's credentials and, where it meets, the fake Graph's endpoints."""
    from devtools.emulator import exports

    endpoints = {
        "TTP_GRAPH_BASE_URL": graph.graph_base_url,
        "TTP_GRAPH_AUTHORITY_HOST": graph.authority_host,
        "REQUESTS_CA_BUNDLE": graph.ca_path,
    }
    print("# an operator (python -m runtime …, governance account): in another shell, paste")
    operator_env = {"AWS_ENDPOINT_URL": aws.endpoint, "AWS_REGION": region, "AWS_DEFAULT_REGION": region, **operator}
    print("unset AWS_SESSION_TOKEN\n" + "\n".join(exports(operator_env)))
    for service in plans:
        graph_endpoints = endpoints if "TTP_GRAPH_BASE_URL" in service.environment else {}
        item = launch(service, aws, endpoints=graph_endpoints)
        print(f"# service {service.name} ({' '.join(service.command)}; task role {service.task_role_arn}):")
        print("\n".join(exports({k: v for k, v in item.env.items() if k != "PATH"})))


if __name__ == "__main__":
    sys.exit(main())
