"""Issue 17: the platform publishes its customer list where ``submit`` reads it — one SSM String parameter
per customer, ``/ttp/customers/{code}``, in the governance account, created with the customer's queue."""

from __future__ import annotations

import json

from aws_cdk import Environment, Stack
from aws_cdk.assertions import Template

from cdk_constructs.customer_queue import CustomerQueue, CustomerQueueProps
from stacks.app_builder import customer_stack_name
from tests.support.synth import Synth, app_without_validation


def test_each_customer_stack_publishes_its_code_under_the_registry_path(sample: Synth) -> None:
    for code in ("hts", "htsnonprod"):
        [parameter] = sample.resources(customer_stack_name(code), "AWS::SSM::Parameter").values()
        props = parameter["Properties"]
        assert props["Name"] == f"/ttp/customers/{code}" and props["Type"] == "String"
        assert json.loads(props["Value"]) == {
            "code": code,
            "queue_name": f"customer-{code}-changes",
            "account": "222222222222",  # the governance account of cdk.json, where operators run `submit`
            "region": "us-east-1",
        }


def test_a_customer_queue_in_another_app_registers_its_customer() -> None:
    app = app_without_validation()
    stack = Stack(app, "Work", env=Environment(account="123456789012", region="eu-west-1"))
    CustomerQueue(stack, "Queue", CustomerQueueProps("acme", source_account="123456789012", bucket_name="b"))
    [parameter] = Template.from_stack(stack).find_resources("AWS::SSM::Parameter").values()
    assert parameter["Properties"]["Name"] == "/ttp/customers/acme"
    assert json.loads(parameter["Properties"]["Value"]) == {
        "code": "acme",
        "queue_name": "customer-acme-changes",
        "account": "123456789012",
        "region": "eu-west-1",
    }
