"""200 customers (sharded EventBridge routing, meetings on: the largest shape) synthesize within every limit.

Routing 'eventbridge' cannot hold them: its per-customer wildcard rules on one bus pass the quota of 30
(cdk_support/quotas.py fails that synth); 'eventbridge-sharded' puts each customer's rule in its own stack.

CloudFormation: 500 resources, 200 outputs, 200 parameters and a 1 MB template (uploaded through
the bootstrap bucket). ECS: a task definition of at most 64 KiB. IAM: 10,240 characters of inline
policy per role. S3: a 20 KB bucket policy. CloudWatch: the overview dashboard does not change.
Built once (about 40-50 s on two cores, cdk-nag included).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from cdk_constructs.sweeper import SWEEPER_TASK_FAMILY
from runtime.contract import names
from stacks.app_builder import PLATFORM_STACK, STORAGE_STACK, customer_stack_name
from tests.support.synth import MEETINGS, Synth, env_of, sample_context, synthesize, task_definition

CUSTOMERS = 200
MAX_RESOURCES = 500
MAX_OUTPUTS = 200
MAX_PARAMETERS = 200
MAX_TEMPLATE_BYTES = 1_000_000
MAX_TASK_DEFINITION_BYTES = 64 * 1024
MAX_ROLE_INLINE_POLICY = 10_240
MAX_BUCKET_POLICY_BYTES = 20 * 1024


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> tuple[Synth, float]:
    context = sample_context(routing="eventbridge-sharded", meetings=MEETINGS)
    context["ttp:sample-customers"] = CUSTOMERS
    started = time.perf_counter()
    synth = synthesize(tmp_path_factory.mktemp("scale-200"), context, read_metadata=False)
    return synth, time.perf_counter() - started


def _compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def test_every_stack_is_within_cloudformation_limits(large: tuple[Synth, float]) -> None:
    synth, seconds = large
    assert len(synth.config.customers) == CUSTOMERS
    assert len(synth.templates) == 2 + 2 * CUSTOMERS
    sizes = {}
    for name, template in synth.templates.items():
        resources = len(template["Resources"])
        assert resources <= MAX_RESOURCES, (name, resources)
        assert len(template.get("Outputs", {})) <= MAX_OUTPUTS, name
        assert len(template.get("Parameters", {})) <= MAX_PARAMETERS, name
        size = (synth.outdir / f"{name}.template.json").stat().st_size
        assert size <= MAX_TEMPLATE_BYTES, (name, size)
        sizes[name] = (resources, size)
    largest = max(sizes, key=lambda n: sizes[n][0])
    # No stack grows by a resource per customer: the storage stack holds the two buckets and their policies,
    # the coordinator's rule and router role (+ policy), the 5 forwarding rules and the forwarder role (+ policy)
    # whatever the number of customers.
    assert largest == PLATFORM_STACK and sizes[STORAGE_STACK][0] == 14
    print(f"\n200 customers: synth {seconds:.1f}s, largest stack {largest} {sizes[largest]}")


def test_task_definitions_and_policies_fit(large: tuple[Synth, float]) -> None:
    synth, _ = large
    for name, template in synth.templates.items():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::ECS::TaskDefinition":
                assert _compact(resource["Properties"]) < MAX_TASK_DEFINITION_BYTES, name
            if resource["Type"] == "AWS::IAM::Policy":
                assert _compact(resource["Properties"]["PolicyDocument"]) < MAX_ROLE_INLINE_POLICY, name
            if resource["Type"] == "AWS::S3::BucketPolicy":
                assert _compact(resource["Properties"]["PolicyDocument"]) < MAX_BUCKET_POLICY_BYTES, name
    sweeper = task_definition(synth, PLATFORM_STACK, SWEEPER_TASK_FAMILY)
    # Issue 19: codes and accounts only; the runtime derives every URL and role ARN (runtime.contract.names).
    assert len(json.loads(env_of(sweeper)["TTP_CUSTOMER_CODES"])) == CUSTOMERS
    assert json.loads(env_of(sweeper)["TTP_CUSTOMER_QUEUES"]) == {}
    coordinator = task_definition(synth, PLATFORM_STACK, names.COORDINATOR_SERVICE_NAME)
    assert len(json.loads(env_of(coordinator)["TTP_CUSTOMER_ACCOUNTS"])) == CUSTOMERS
    assert json.loads(env_of(coordinator)["TTP_CALENDAR_CONTACT_ROLES"]) == {}
    last = synth.only(customer_stack_name(f"c{CUSTOMERS:04d}"), "AWS::ECS::TaskDefinition")
    assert "TTP_CALENDAR_CONTACT_ROLES" not in env_of(last)  # meetings are the coordinator's


def test_shared_policies_do_not_grow_with_customers(large: tuple[Synth, float], multi: Synth) -> None:
    # Compared with the same shape (EventBridge routing, meetings on) at two customers.
    synth, _ = large
    for stack, type_ in ((STORAGE_STACK, "AWS::S3::BucketPolicy"), (PLATFORM_STACK, "AWS::IAM::Policy")):
        big = sorted(_compact(p["Properties"]["PolicyDocument"]) for p in synth.resources(stack, type_).values())
        small = sorted(_compact(p["Properties"]["PolicyDocument"]) for p in multi.resources(stack, type_).values())
        assert big == small, stack
    overview = synth.only(PLATFORM_STACK, "AWS::CloudWatch::Dashboard")["Properties"]
    assert overview == multi.only(PLATFORM_STACK, "AWS::CloudWatch::Dashboard")["Properties"]
