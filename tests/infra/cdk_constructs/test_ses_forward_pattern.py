"""The SES forwarding rule of a customer account stays below EventBridge's 2,048-character pattern quota.

It matched every platform configuration set of the account by name (~12 characters per customer): with
200 customers sharing one SES account the pattern passed the quota (the 1,000-customer sample puts 500 in
each of its two accounts). Past half the quota it matches the platform's sets by their ``ttp-`` prefix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import Environment, Stack

from cdk_constructs.ses_delivery_events import SesDeliveryEvents, SesDeliveryEventsProps
from cdk_support.quotas import check, read_assembly
from runtime.contract import names
from tests.support.synth import app_without_validation

GOV = "222222222222"


def _forward_pattern(outdir: Path, others: list[str]) -> dict[str, Any]:
    app = app_without_validation(outdir=str(outdir))
    stack = Stack(app, "Account", env=Environment(account="333333333333", region="us-east-1"))
    SesDeliveryEvents(
        stack,
        "DeliveryEvents",
        SesDeliveryEventsProps(customer_code="c0001", governance_account=GOV, other_configuration_sets=others),
    )
    app.synth()
    check(read_assembly(outdir))  # every quota, the pattern size among them
    template = json.loads((outdir / "Account.template.json").read_text())
    (rule,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    return dict(rule["Properties"]["EventPattern"])


def test_two_hundred_customers_in_one_account_fit_the_pattern_quota(tmp_path: Path) -> None:
    others = [names.configuration_set_name(f"c{i:04d}") for i in range(2, 201)] + ["customers-own-set"]
    pattern = _forward_pattern(tmp_path, others)
    matched = pattern["detail"]["mail"]["tags"]["ses:configuration-set"]
    assert matched == [{"prefix": "ttp-"}, "customers-own-set"]


def test_a_few_customers_are_still_matched_by_name(tmp_path: Path) -> None:
    pattern = _forward_pattern(tmp_path, ["ttp-c0002", "customers-own-set"])
    assert pattern["detail"]["mail"]["tags"]["ses:configuration-set"] == [
        "customers-own-set",
        "ttp-c0001",
        "ttp-c0002",
    ]
