"""The local deployer: a synthesized cloud assembly, deployed onto the embedded emulator as ``cdk deploy`` would.

    python -m devtools.local_deploy [--assembly cdk.out] [--endpoint URL] [--world world.json]
    make deploy-local                # synthesize the sample app, then deploy it on a fresh emulator

Design (decided on measurements of moto 5.2.5, made when the deployer was written):

* **Input.** ``manifest.json``'s ``aws:cloudformation:stack`` artifacts: each stack's template, its
  ``aws://ACCOUNT/REGION`` and its dependencies (:mod:`.assembly`). Stacks deploy after the stacks they
  depend on, each in its own account (moto's ``x-moto-account-id`` header); a single-account assembly is
  the same thing with one account.
* **Strategy: moto's CloudFormation, then the service APIs.** moto's CloudFormation creates most types
  faithfully (roles with their policies, queues with their redrive and key, ECS, KMS, SNS, the VPC) and
  gives the stacks, their resources and outputs the runner can read back. It was tried on every stack of
  the sample assembly: it failed on two moto bugs only (a rule's ``EventBusName`` given as a reference to
  a bus; an SSM parameter's tags as a map), which are rewritten before the template goes to moto, and it
  lacks ``Fn::GetStackOutput``, which the deployer resolves from the outputs of the stacks already
  deployed. Writing a second CloudFormation (a creator per type) would have been more code to get wrong.
* **Every type and property in exactly one table** (:mod:`.tables`): created by moto's CloudFormation,
  rewritten for it, applied by the deployer through the API (queue, topic, bucket and event-bus policies,
  the SES configuration set, and the bucket's versioning, notifications, lifecycle, public access block
  and ownership controls, the KMS keys' tags), or recorded, not emulated (alarms, autoscaling, SES's
  EventBridge destination, the Lambda-backed custom resource and its function, the task definitions'
  roles and runtime platform, the bucket's access logging). A type or property in no table stops the
  deploy before anything is created, naming stack, logical id, type (and property).
* **Never trust CREATE_COMPLETE** (:mod:`.verify`): every resource handed to moto must be in the stack's
  resource list, and the bucket's notifications, versioning and policy, each queue's redrive and policy,
  each task definition's containers (command, environment) and roles, each role's trust and inline
  policies are read back and compared with the resolved template; a difference fails the deploy.
  A bucket notification naming a queue that does not exist fails as S3 fails it.
* **The deployed world** (:class:`.deployer.World`): what moto keeps nowhere, per account: every resource
  policy by ARN (queues, topics, buckets, event buses, KMS keys), each task definition's command,
  environment, secrets and roles, each service's cluster and task definition, the recorded resources, and
  the assets (container images are not built, no Docker: their URIs are recorded). The policy engine and
  the runner read it (``--world FILE`` writes it as JSON).
* **Cross-account S3 → SQS** (:mod:`.s3_delivery`): moto delivers a bucket's events to its own account
  only; the deployer patches moto's notifier, in the process that runs the emulator, to deliver to the
  account the queue ARN names, as AWS does. With ``--endpoint`` (an emulator in another process) the patch
  cannot reach it: the report says so.
* **EventBridge** (:mod:`.event_routing`): moto 5.2.5 delivered no S3 event through the routing rules
  (measured), so in the emulator's process the deployer routes EventBridge itself: S3 events of a bucket
  with EventBridge notifications, ``PutEvents`` and SES's events (:mod:`devtools.ses_events`, from the
  configuration sets' event destinations the deployed world keeps) reach the targets of the deployed rules,
  across buses and accounts, each target decided by the deployed policies when IAM is enforced. moto's
  ``GetBucketNotificationConfiguration`` leaves the bucket's EventBridge setting out, so that one setting
  is not read back. With ``--endpoint`` (another process) the routing is moto's own: the report says so.
* **Bootstrap.** The ``/cdk-bootstrap/hnb659fds/version`` parameter the templates' ``CheckBootstrapVersion``
  rule reads is put in each account first. With a ``gate`` (:class:`devtools.iam_engine.bootstrap.BootstrapGate`;
  ``make deploy-local``, ``make demo`` and ``make emulator`` pass one) each stack is first decided as the
  CloudFormation execution role docs/infrastructure.md prescribes for its account: a request that policy
  denies fails the deploy before the stack is created, naming stack, logical id, type, action and policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from devtools.local_deploy import event_routing
from devtools.local_deploy.assembly import DeployError, StackArtifact, read_assembly
from devtools.local_deploy.deployer import (
    StackReport,
    World,
    apply_direct,
    bootstrap,
    check_bootstrap,
    check_template,
    create_stack,
)
from devtools.local_deploy.resolve import Aws
from devtools.local_deploy.s3_delivery import deliver_across_accounts
from devtools.local_deploy.verify import verify_stack

if TYPE_CHECKING:
    from devtools.iam_engine.bootstrap import BootstrapGate

__all__ = ["DeployError", "DeployReport", "World", "deliver_across_accounts", "deploy_assembly", "read_assembly"]


@dataclass
class DeployReport:
    stacks: list[StackReport] = field(default_factory=list)
    world: World = field(default_factory=World)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return any(stack.failure for stack in self.stacks)


def deploy_assembly(
    outdir: Path,
    endpoint: str,
    *,
    in_process: bool = True,
    gate: BootstrapGate | None = None,
    on_stack: Callable[[StackReport], None] | None = None,
) -> DeployReport:
    """Deploy every stack of the assembly on the emulator at ``endpoint``; raise :class:`DeployError` on the
    first stack that cannot be deployed as its template says, or (with ``gate``) as the execution role of
    its account (the report so far is on the exception). ``on_stack`` is called after each deployed stack
    (progress of a long deploy; what it raises ends the deploy)."""
    started = time.monotonic()
    stacks = read_assembly(outdir)
    report = DeployReport()
    for stack in stacks:
        check_template(stack)  # before anything is created: a template the deployer cannot honour deploys nothing
    if in_process:
        deliver_across_accounts()
        event_routing.install()
        event_routing.router.world = report.world  # resource policies and SES event destinations moto lacks
    else:
        report.notes.append(
            "the emulator runs in another process: S3 notifications reach queues of the bucket's own account only"
        )
        if _routes_through_eventbridge(stacks):
            report.notes.append(
                "routing through EventBridge: moto's own routing in the emulator's process delivers no S3 event "
                "through the rules (measured on 5.2.5); deploy in the emulator's process to run it"
            )
    resolved = None
    if gate is not None:
        from devtools.iam_engine.templates import Assembly

        resolved = Assembly.from_cloud_assembly(outdir)
    aws = Aws(endpoint)
    outputs: dict[str, dict[str, str]] = {}
    bootstrapped: set[tuple[str, str]] = set()
    for stack in stacks:
        stack_report = StackReport(stack.stack_name, stack.account, stack.region)
        report.stacks.append(stack_report)
        try:
            if (stack.account, stack.region) not in bootstrapped:
                bootstrap(aws, stack.account, stack.region)
                bootstrapped.add((stack.account, stack.region))
            if gate is not None and resolved is not None:
                check_bootstrap(gate, resolved, stack)
            resolver = create_stack(aws, stack, outputs, stack_report)
            apply_direct(stack, resolver, report.world, stack_report)
            verify_stack(stack, resolver, report.world.account(stack.account))
        except DeployError as exc:
            stack_report.failure = str(exc)
            report.seconds = time.monotonic() - started
            exc.report = report  # type: ignore[attr-defined]
            raise
        if on_stack is not None:
            on_stack(stack_report)
    if gate is not None:
        report.notes.append(
            f"bootstrap gate: {gate.stacks} stacks decided as their accounts' CloudFormation execution roles "
            f"(docs/infrastructure.md's policies) in {gate.seconds:.1f}s, nothing denied"
        )
    report.seconds = time.monotonic() - started
    return report


def _routes_through_eventbridge(stacks: list[StackArtifact]) -> bool:
    return any(
        "EventBridgeConfiguration" in resource.get("Properties", {}).get("NotificationConfiguration", {})
        for stack in stacks
        for resource in stack.template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::S3::Bucket"
    )
