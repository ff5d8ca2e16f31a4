"""The local runner runs what the templates define: every ECS service and the scheduled sweeper, each with
exactly its task definition's command and environment, its task role's credentials, and only the listed
overrides (devtools/local_run.py). One synth of the sample app plus one customer added to the context, one
deploy on an emulator in this process, every service started once for the module."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools import demo, local_run
from devtools import sandbox as sb
from devtools.emulator import LocalAws
from devtools.enforcement import Enforcement
from devtools.fake_graph import FakeGraph
from devtools.local_deploy import DeployReport, deploy_assembly, read_assembly
from devtools.local_deploy.resolve import Aws
from devtools.task_agent import TaskAgent
from runtime.contract import names
from stacks.config import config_from_context
from tests.support import deployed as dp

pytestmark = pytest.mark.slow

ADDED = {
    "code": "acme",
    "account": "555555555555",
    "from_address": "changes@acme.example.com",
    "sender_external_id": "ttp-acme-5e1f00",
    "contact_list_name": "change-notifications",
    "send_rate_per_second": 2,
    "min_tasks": 0,
    "max_tasks": 1,
    "scale_to_zero": True,
}
ALLOWED_OVERRIDES = {
    "PATH",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "PYTHONPATH",
    "command[0]",
    *demo.DEMO_WAITS,
    "TTP_GRAPH_BASE_URL",
    "TTP_GRAPH_AUTHORITY_HOST",
    "REQUESTS_CA_BUNDLE",
    "ECS_AGENT_URI",
}
CREDENTIALS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


class World:
    def __init__(self, assembly: Path, emulator: LocalAws, deployed: DeployReport, graph: FakeGraph) -> None:
        self.assembly = assembly
        self.emulator = emulator
        self.deployed = deployed
        self.graph = graph
        self.plans = local_run.plan(assembly, deployed.world)
        self.workers: dict[str, demo.Worker] = {}
        self.coordinator: demo.Worker | None = None
        self.launches: list[local_run.Launch] = []
        self.scheduled: local_run.Scheduled | None = None
        self.agent: TaskAgent | None = None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    assembly = tmp_path_factory.mktemp("assembly")
    context = demo.demo_context()
    context["ttp"]["customers"] = [*context["ttp"]["customers"], ADDED]
    dp.synthesize(assembly, context)
    emulator = LocalAws().start()
    graph = FakeGraph().start()
    saved = dict(os.environ)
    os.environ.update(emulator.env())
    try:
        deployed = deploy_assembly(assembly, emulator.endpoint)
        aws = Aws(emulator.endpoint)
        specs = sb.specs_from_config(config_from_context(context).customers)
        sb.create_unowned(
            aws,
            specs,
            governance_account=context["ttp"]["accounts"]["governance"],
            bucket=config_from_context(context).metadata_bucket_name,
            graph_secret=(demo.GRAPH_SECRET_NAME, graph.client_secret),
        )
        result = World(assembly, emulator, deployed, graph)
        logdir = tmp_path_factory.mktemp("logs")
        enforcement = Enforcement(world=deployed.world)  # decides the agent's calls only: the emulator enforces nothing
        enforcement.start()
        with contextlib.ExitStack() as stack:
            stack.callback(enforcement.close)
            result.agent = stack.enter_context(TaskAgent(enforcement))
            processes = stack.enter_context(demo.Processes())
            result.workers, result.coordinator, result.launches, result.scheduled = demo.start_services(
                aws, result.plans, processes, logdir, graph, sweep_every=1.0, agent=result.agent
            )
            try:
                yield result
            finally:
                if result.scheduled is not None:
                    result.scheduled.stop(15)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        graph.stop()
        emulator.stop()


def template_containers(assembly: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """family -> (stack account, the container definition as the template has it)."""
    found = {}
    for stack in read_assembly(assembly):
        for resource in stack.template["Resources"].values():
            if resource["Type"] == "AWS::ECS::TaskDefinition":
                [container] = resource["Properties"]["ContainerDefinitions"]
                found[resource["Properties"]["Family"]] = (stack.account, container)
    return found


def environ_of(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if p)


def test_every_service_and_the_scheduled_sweeper_of_the_templates_is_planned(world: World) -> None:
    services = {
        resource["Properties"]["ServiceName"]
        for stack in read_assembly(world.assembly)
        for resource in stack.template["Resources"].values()
        if resource["Type"] == "AWS::ECS::Service"
    }
    planned = {p.name for p in world.plans if not p.schedule}
    assert (
        planned
        == services
        == {
            "customer-hts-processor",
            "customer-htsnonprod-processor",
            "customer-acme-processor",
            "ttp-change-coordinator",
        }
    )
    [sweeper] = [p for p in world.plans if p.schedule]
    assert (sweeper.family, sweeper.schedule, sweeper.schedule_seconds) == ("ttp-sweeper", "rate(5 minutes)", 300)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_each_running_service_has_exactly_its_task_definitions_command_and_environment(world: World) -> None:
    containers = template_containers(world.assembly)
    running = {**{w.code: w for w in world.workers.values()}}
    assert world.coordinator is not None
    by_name = {item.plan.name: item for item in world.launches}
    image = local_run.image_environment()
    checked = 0
    for item in world.launches:
        if item.plan.schedule:
            continue
        process = running[item.plan.customer] if item.plan.customer else world.coordinator
        assert process.proc.poll() is None, process.log_path.read_text()[-2000:]
        account, container = containers[item.plan.family]
        assert item.plan.account == account
        cmdline = Path(f"/proc/{process.proc.pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        assert cmdline[1:] == container["Command"][1:] and container["Command"][0] == "python"
        env = environ_of(process.proc.pid)
        template_env = {e["Name"]: e["Value"] for e in container["Environment"]}
        secrets = {s["Name"] for s in container.get("Secrets", [])}
        # every variable is the template's, the image's, a secret, the task role's credentials or an override
        assert set(env) == set(template_env) | set(image) | secrets | CREDENTIALS | (
            set(item.overrides) - {"command[0]"}
        )
        assert set(item.overrides) <= ALLOWED_OVERRIDES, item.overrides
        for name, value in template_env.items():
            if name in item.overrides:
                assert env[name] == item.overrides[name]
            elif isinstance(value, str):
                assert env[name] == value, name  # a literal: exactly as written
            else:
                assert env[name] == item.plan.environment[name], name  # resolved by the deployer (verified)
        for name, value in image.items():
            assert env[name] == value
        checked += 1
    assert checked == 4 and set(by_name) >= {"ttp-change-coordinator"}


def test_the_coordinator_gets_its_graph_secret_from_secrets_manager_and_graph_endpoints_only(world: World) -> None:
    [item] = [i for i in world.launches if i.plan.name == "ttp-change-coordinator"]
    assert item.plan.secrets and set(item.plan.secrets) == {"TTP_GRAPH_CLIENT_SECRET"}
    assert item.env["TTP_GRAPH_CLIENT_SECRET"] == world.graph.client_secret
    assert item.overrides["TTP_GRAPH_BASE_URL"] == world.graph.graph_base_url
    assert item.plan.environment["TTP_GRAPH_BASE_URL"].startswith("https://graph.microsoft.com")


def test_each_service_signs_its_requests_as_its_task_role(world: World) -> None:
    for item in world.launches:
        sts = boto3.client(
            "sts",
            endpoint_url=world.emulator.endpoint,
            region_name="us-east-1",
            aws_access_key_id=item.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=item.env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=item.env["AWS_SESSION_TOKEN"],
        )
        arn = sts.get_caller_identity()["Arn"]
        role = item.plan.task_role_arn.split(":")
        assert arn == f"arn:aws:sts::{role[4]}:assumed-role/{role[5].split('/')[-1]}/{local_run.SESSION_NAME}"


def test_a_customer_added_to_the_context_runs_as_a_processor(world: World) -> None:
    worker = world.workers["acme"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not worker.handled():
        time.sleep(0.2)  # the first message on its queue is S3's test event of the notification configuration
    assert worker.proc.poll() is None
    assert worker.handled(), worker.log_path.read_text()[-2000:]
    env = environ_of(worker.proc.pid)
    assert env["TTP_CUSTOMER_CODE"] == "acme"
    assert env["TTP_SENDER_ROLE_ARN"] == "arn:aws:iam::555555555555:role/ttp-ses-sender-acme"


def test_the_sweeper_runs_on_its_schedule(world: World) -> None:
    assert world.scheduled is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(world.scheduled.runs) < 2:
        time.sleep(0.2)
    assert world.scheduled.runs[:2] == [0, 0], world.scheduled.runs


def test_an_override_the_task_definition_does_not_set_is_refused(world: World) -> None:
    [sweeper] = [p for p in world.plans if p.schedule]
    with pytest.raises(ValueError, match="TTP_RECEIVE_WAIT_SECONDS is not in the task definition's environment"):
        local_run.launch(sweeper, Aws(world.emulator.endpoint), waits={"TTP_RECEIVE_WAIT_SECONDS": "1"})


def test_a_schedule_that_is_not_a_rate_is_refused() -> None:
    service = local_run.ServicePlan(
        "s", "1", "us-east-1", "s", "c", ("python",), {}, {}, "arn:aws:iam::1:role/r", "", schedule="cron(0 * * * ? *)"
    )
    with pytest.raises(ValueError, match=r"schedule 'cron\(0 \* \* \* \? \*\)' is not a rate"):
        _ = service.schedule_seconds


def test_the_demo_context_keeps_cdk_json_customers() -> None:
    cdk = json.loads((local_run.ROOT / "cdk.json").read_text())["context"]["ttp"]
    assert demo.demo_context()["ttp"]["customers"] == cdk["customers"]


def test_the_demo_without_an_assembly_says_how_to_get_one(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "devtools.demo", "--skip-synth", "--assembly", str(tmp_path / "none")],
        cwd=local_run.ROOT,
        env={**os.environ, "PYTHONPATH": str(local_run.ROOT), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr[-2000:]
    said = " ".join(result.stdout.split())  # rich wraps the line at its width
    assert f"no cloud assembly in {tmp_path / 'none'}: run without --skip-synth, or give --assembly DIR" in said


def test_a_processor_protects_its_task_while_a_message_is_in_flight_and_releases_it_decided_as_its_task_role(
    world: World,
) -> None:
    """ECS_AGENT_URI as ECS injects it: the worker protects its task for its first message (S3's test event),
    each call decided as its task role's ecs:UpdateTaskProtection on its task (cluster, propagated tags), and
    releases it when it stops. Last in the module: it stops acme's processor."""
    assert world.agent is not None
    [item] = [i for i in world.launches if i.plan.customer == "acme"]
    task_id = item.env["ECS_AGENT_URI"].rpartition("/")[2]
    assert item.overrides["ECS_AGENT_URI"] == f"{world.agent.url}/api/{task_id}"
    worker = world.workers["acme"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not worker.handled():
        time.sleep(0.2)
    assert worker.handled(), worker.log_path.read_text()[-2000:]
    first = world.agent.calls_of(task_id)[0]
    assert first.task_arn == f"arn:aws:ecs:us-east-1:{item.plan.account}:task/{names.CLUSTER_NAME}/{task_id}", first
    assert (first.action, first.enabled, first.allowed) == ("ecs:UpdateTaskProtection", True, True), first
    assert first.answer["protection"]["ProtectionEnabled"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first.answer["protection"]["ExpirationDate"])
    assert worker.logged("task scale-in protection set"), worker.log_path.read_text()[-2000:]
    assert world.agent.tasks[task_id].tags[names.CUSTOMER_TAG_KEY] == "acme"  # what its grant is conditioned on
    assert worker.stop() == 0
    last = world.agent.calls_of(task_id)[-1]
    assert (last.action, last.enabled, last.allowed) == ("ecs:UpdateTaskProtection", False, True), last
    assert last.answer["protection"] == {"ExpirationDate": None, "ProtectionEnabled": False, "TaskArn": last.task_arn}
    assert worker.logged("task scale-in protection released")
    # the GET the endpoint also answers, decided as ecs:GetTaskProtection; a body without the field is refused
    with urllib.request.urlopen(item.env["ECS_AGENT_URI"] + "/task-protection/v1/state", timeout=10) as answer:
        assert json.load(answer)["protection"] == last.answer["protection"]
    assert world.agent.calls_of(task_id)[-1].action == "ecs:GetTaskProtection"
    bad = urllib.request.Request(item.env["ECS_AGENT_URI"] + "/task-protection/v1/state", data=b"{}", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad, timeout=10)
    error = json.load(refused.value)["error"]
    assert refused.value.code == 400 and "ProtectionEnabled" in error["Message"], error
    assert not world.agent.enforcement.denials
