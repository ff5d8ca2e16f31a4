"""The deployed sample assembly as a test fixture: what the integration tests run against (issue 18).

The sample app (``cdk.json``'s customers, meetings configured for the fake Graph: ``devtools.demo``'s
context) is synthesized **once per test session**: the first xdist worker synthesizes it into a directory
under pytest's shared temporary root, keyed by a hash of the sources that shape the templates, while the
others wait on a file lock and reuse it. Each test then deploys it (``devtools.local_deploy``) on an
emulator in this process and adds what the stacks do not own (``devtools.sandbox.create_unowned``: SES
identities, contact lists, subscribers, the Graph secret, the operator's key). Queue URLs, role ARNs and
every service's environment come from the deployed world's task definitions (``devtools.local_run``),
never from a hand-written layout, so a wrong notification, queue name or forgotten variable fails here.

Measured on the 2-core machine: synth 5.5 s once per session; a deploy on a fresh emulator 3.5 s, on an
emulator already warm 1.5 s; ``create_unowned`` 0.3 s.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools import demo, local_run
from devtools import sandbox as sb
from devtools.emulator import LocalAws
from devtools.fake_graph import FakeGraph
from devtools.local_deploy import DeployReport, deploy_assembly
from devtools.local_deploy.resolve import Aws
from stacks.config import PlatformConfig, config_from_context

ROOT = Path(__file__).resolve().parents[2]
SHAPING = ("app.py", "cdk.json", "stacks", "cdk_constructs", "cdk_support", "runtime", "devtools/demo.py")
"""The sources a synthesized template depends on (the runtime is the container image asset)."""
NO_GRAPH = "placeholder: this test runs no Graph"


def source_hash() -> str:
    digest = hashlib.sha256()
    for entry in SHAPING:
        path = ROOT / entry
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def shared_root(factory: pytest.TempPathFactory) -> Path:
    """The temporary root every xdist worker of this run shares (a worker's base is ``…/popen-gwN``)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def synthesize(outdir: Path, context: dict[str, Any]) -> None:
    """``devtools.demo.synthesize`` (``python app.py`` as the demo runs it) as ``cdk synth --no-validation``
    would: aws-cdk-lib's built-in CloudFormation validation changes no template and costs a fresh process
    ~6 CPU s; the shared sample's synthesis runs it (``tests/infra/test_compliance.py``)."""
    with pytest.MonkeyPatch.context() as synth_env:
        synth_env.setenv("CDK_VALIDATION", "false")
        demo.synthesize(outdir, context=context)


def sample_assembly_dir(factory: pytest.TempPathFactory) -> Path:
    """The sample assembly for this session, synthesized by whichever worker gets here first."""
    root = shared_root(factory)
    outdir = root / f"sample-assembly-{source_hash()}"
    with (root / "sample-assembly.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (outdir / "manifest.json").is_file():
            synthesize(outdir, demo.demo_context())
    return outdir


def sample_config() -> PlatformConfig:
    return config_from_context(demo.demo_context())


def customer_specs(contacts: dict[str, tuple[sb.Contact, ...]] | None = None) -> list[sb.CustomerSpec]:
    """The sample's customers (codes, accounts, senders, ExternalIds of ``cdk.json``), with the given
    contacts instead of the demo's (a customer not named keeps the demo's)."""
    specs = sb.specs_from_config(sample_config().customers)
    return [
        sb.CustomerSpec(s.code, s.account, contacts[s.code], s.from_address, s.external_id)
        if contacts and s.code in contacts
        else s
        for s in specs
    ]


def sandbox_contacts() -> dict[str, tuple[sb.Contact, ...]]:
    """The contacts of ``hts`` and ``htsnonprod`` in ``sandbox.sample_customers()`` (no mailbox-simulator
    addresses, so every email is a plain delivery): what the older tests' counts were written for."""
    return {spec.code: spec.contacts for spec in sb.sample_customers() if spec.code in ("hts", "htsnonprod")}


@dataclass
class Deployed:
    """The sample assembly deployed on ``server``, with the unowned resources, read as the services see it."""

    server: LocalAws
    assembly: Path
    report: DeployReport
    customers: dict[str, sb.CustomerSpec]
    operator: sb.Operator
    region: str

    @property
    def aws(self) -> Aws:
        return Aws(self.server.endpoint)

    @functools.cached_property
    def plans(self) -> list[local_run.ServicePlan]:
        """Read once: the deployed world does not change, and reading the templates costs ~10 ms, which the
        tests' polls (``bucket``, ``queue_url`` in a condition checked five times a second) paid each time."""
        return local_run.plan(self.assembly, self.report.world)

    def plan(self, code: str | None) -> local_run.ServicePlan:
        """The customer's processor service, or (``None``) the change coordinator's."""
        found = [p for p in self.plans if not p.schedule and p.customer == (code or "")]
        assert len(found) == 1, f"expected one service for {code or 'the coordinator'}, found {found}"
        return found[0]

    @property
    def bucket(self) -> str:
        return self.plan(None).environment["TTP_BUCKET_NAME"]

    def queue_url(self, code: str | None) -> str:
        return self.plan(code).environment["TTP_QUEUE_URL"]

    def dlq_url(self, code: str | None) -> str:
        """The dead-letter queue of the queue the service consumes, read from the queue's redrive policy."""
        sqs = self.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=self.queue_url(code), AttributeNames=["RedrivePolicy"])
        arn = json.loads(attributes["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
        account, name = arn.split(":")[4:6]
        return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])

    def service_env(self, code: str | None, graph: FakeGraph | None = None, **settings: str) -> dict[str, str]:
        """The environment ``devtools.local_run`` gives the service's process (its task definition's
        environment and secrets, the task role's credentials, the emulator's endpoint, with ``graph`` the
        fake Graph's endpoints), plus the test's ``settings`` (demo-sized waits and the like: the only
        values a test changes)."""
        endpoints = None
        if graph is not None:
            endpoints = {
                "TTP_GRAPH_BASE_URL": graph.graph_base_url,
                "TTP_GRAPH_AUTHORITY_HOST": graph.authority_host,
                "REQUESTS_CA_BUNDLE": graph.ca_path,
            }
        launch = local_run.launch(self.plan(code), self.aws, endpoints=endpoints)
        return {**launch.env, **settings}

    def operator_env(self) -> dict[str, str]:
        """The operator's key on the emulator (the governance account's administrator): what the CLI uses."""
        return {
            **self.operator.env(),
            "AWS_ENDPOINT_URL": self.server.endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self, service: str) -> Any:
        env = self.operator_env()
        return boto3.client(
            service,
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=self.region,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )


def deploy_sample(
    server: LocalAws,
    assembly: Path,
    customers: list[sb.CustomerSpec] | None = None,
    *,
    graph_secret: str = NO_GRAPH,
) -> Deployed:
    """Empty ``server``, deploy the sample assembly on it, and create the unowned resources of ``customers``
    (default: :func:`customer_specs`); ``graph_secret`` is the fake Graph's client secret, stored under the
    name the coordinator's task definition reads (the secret must exist for the coordinator to start, as
    on ECS; a test without Graph stores a placeholder and drops the Graph settings)."""
    server.reset()
    report = deploy_assembly(assembly, server.endpoint)
    config = sample_config()
    specs = customers if customers is not None else customer_specs()
    operator = sb.create_unowned(
        Aws(server.endpoint),
        specs,
        governance_account=config.accounts.governance,
        bucket=config.metadata_bucket_name,
        region=config.accounts.region,
        graph_secret=(demo.GRAPH_SECRET_NAME, graph_secret),
    )
    return Deployed(server, assembly, report, {s.code: s for s in specs}, operator, config.accounts.region)


@pytest.fixture(scope="session")
def sample_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_assembly_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def deploy_server() -> Iterator[LocalAws]:
    """One emulator per module, in this process (the deployer's cross-account S3 → SQS patch reaches it)."""
    server = LocalAws().start()
    yield server
    server.stop()


def use_operator(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Deployed:
    """This process's boto3 acts as the operator on the emulator (``boto3.client("s3")`` reads the platform)."""
    for name in [n for n in os.environ if n.startswith(("AWS_", "TTP_"))]:
        monkeypatch.delenv(name)
    for name, value in deployed.operator_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the credentials it first read
    return deployed
