"""The ``ttp`` configuration: the sample parses; bad input gets an error naming the field and the fix."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runtime.contract import names
from stacks.app_builder import REPO_ROOT, default_context
from stacks.config import (
    CODE_DERIVED_NAMES,
    COORDINATOR_NOTIFICATION_CONFIGURATIONS,
    EVENTBRIDGE_RULES_PER_BUS,
    RESERVED_CUSTOMER_CODES,
    S3_MAX_NOTIFICATION_CONFIGURATIONS,
    ConfigDeprecationWarning,
    ConfigError,
    codes_colliding_with_platform_names,
    config_from_context,
    parse_config,
    platform_owned_names,
    sample_customers,
)


def raw() -> dict[str, Any]:
    return copy.deepcopy(default_context()["ttp"])


def error_of(config: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(config)
    return str(info.value)


def test_sample_config_is_valid_and_multi_account() -> None:
    config = parse_config(raw())
    assert [c.code for c in config.customers] == ["hts", "htsnonprod"]
    assert config.routing == "s3"
    assert not config.single_account
    assert config.metadata_bucket_name == "ttp-metadata-111111111111-us-east-1"
    assert config.customer("htsnonprod").scale_to_zero is True


def test_single_account_mode_is_detected() -> None:
    data = raw()
    data["accounts"]["governance"] = data["accounts"]["management"]
    for customer in data["customers"]:
        customer["account"] = data["accounts"]["management"]
    data["customers"][0]["shares_ses_account_with"] = ["htsnonprod"]  # one account: one SES account
    data["customers"][1]["shares_ses_account_with"] = ["hts"]
    assert parse_config(data).single_account


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["customers"][0].update(code="Bad_Code"), ["ttp.customers[0].code", "invalid customer code"]),
        (
            lambda d: d["customers"][1].pop("sender_external_id"),
            ["ttp.customers[1].sender_external_id: is required", "ExternalId"],
        ),
        (
            lambda d: d["customers"][0].update(sender_external_id="x"),
            ["ttp.customers[0].sender_external_id", "at least 2"],
        ),
        (lambda d: d["accounts"].update(governance="2222"), ["ttp.accounts.governance", "12-digit"]),
        (lambda d: d["accounts"].update(region="useast1"), ["ttp.accounts.region"]),
        (lambda d: d["customers"][0].update(from_address="nobody"), ["ttp.customers[0].from_address"]),
        (lambda d: d["customers"][0].update(min_tasks=0), ["ttp.customers[0]", "set scale_to_zero: true"]),
        (lambda d: d["customers"][1].update(min_tasks=1), ["ttp.customers[1]", "min_tasks must be 0"]),
        (lambda d: d["customers"][0].update(max_tasks=0), ["ttp.customers[0].max_tasks"]),
        (lambda d: d["customers"][0].update(memory_mib=4096), ["memory_mib 4096 is not valid with cpu 256"]),
        (lambda d: d["customers"][0].update(cpu=300), ["cpu 300 is not a Fargate size"]),
        (lambda d: d["customers"].append(copy.deepcopy(d["customers"][0])), ["unique", "hts"]),
        (lambda d: d.update(routing="sns"), ["ttp.routing"]),
        (lambda d: d.update(colour="blue"), ["ttp.colour: is not a known setting"]),
        (lambda d: d.update(log_retention_days=42), ["ttp.log_retention_days", "CloudWatch Logs accepts only"]),
        (lambda d: d.update(visibility_timeout_seconds=60), ["greater than the worker's 90 s drain"]),
        (
            lambda d: d.update(
                meetings={"graph_tenant_id": "t", "graph_client_id": "c", "meeting_organizer": "o@example.com"}
            ),
            ["ttp.meetings.graph_client_secret: is required", "ttp.meetings.contact_reader_external_id: is required"],
        ),
        (
            lambda d: d.update(
                meetings={
                    "graph_tenant_id": "t",
                    "graph_client_id": "c",
                    "meeting_organizer": "o@example.com",
                    "graph_client_secret": "arn:aws:secretsmanager:us-east-1:222222222222:secret:graph",
                    "contact_reader_external_id": "abc",
                }
            ),
            ["ttp.meetings.graph_client_secret", "6-character suffix"],
        ),
        (
            lambda d: d.update(
                vpc={
                    "vpc_id": "vpc-0123456789abcdef0",
                    "availability_zones": ["a", "b"],
                    "private_subnet_ids": ["subnet-0123456789abcdef0"],
                }
            ),
            ["ttp.vpc.private_subnet_ids"],
        ),
    ],
)
def test_bad_config_names_the_field(mutate: Any, expected: list[str]) -> None:
    data = raw()
    mutate(data)
    message = error_of(data)
    for fragment in expected:
        assert fragment in message, message


def test_every_problem_is_reported_at_once() -> None:
    data = raw()
    data["customers"][0]["code"] = "UPPER"
    data["customers"][1]["account"] = "12"
    message = error_of(data)
    assert "ttp.customers[0].code" in message
    assert "ttp.customers[1].account" in message


def test_missing_config_says_where_to_start() -> None:
    assert "copy the sample" in error_of(None)


def test_s3_routing_is_refused_past_the_bucket_notification_limit() -> None:
    # The change coordinator takes two of the bucket's notification configurations (archive/, processing/).
    most = S3_MAX_NOTIFICATION_CONFIGURATIONS - COORDINATOR_NOTIFICATION_CONFIGURATIONS
    data = raw()
    data["customers"] = sample_customers(most + 1)
    message = error_of(data)
    assert "routing: 'eventbridge'" in message and str(S3_MAX_NOTIFICATION_CONFIGURATIONS) in message
    assert "change coordinator" in message
    data["routing"] = "eventbridge"
    assert len(parse_config(data).customers) == most + 1
    data["customers"] = sample_customers(most)
    data["routing"] = "s3"
    assert len(parse_config(data).customers) == most


def test_eventbridge_routing_is_refused_past_the_rule_quota() -> None:
    data = raw()
    data["routing"] = "eventbridge"
    data["customers"] = sample_customers(EVENTBRIDGE_RULES_PER_BUS)  # one rule is the coordinator's
    assert "rule per customer" in error_of(data)
    data["customers"] = sample_customers(EVENTBRIDGE_RULES_PER_BUS - 1)
    assert len(parse_config(data).customers) == EVENTBRIDGE_RULES_PER_BUS - 1


@pytest.mark.parametrize("code", sorted(RESERVED_CUSTOMER_CODES))
def test_customer_codes_of_the_platform_are_reserved(code: str) -> None:
    data = raw()
    data["customers"][0]["code"] = code
    error = error_of(data)
    assert f"customer codes {code!r}" in error and "choose another code" in error


def test_sweeper_is_reserved_because_its_log_group_would_be_the_sweepers() -> None:
    """Issue 12: a customer ``sweeper`` would get ``/ecs/change-processor/sweeper``, the sweeper's log group."""
    data = raw()
    data["customers"][0]["code"] = "sweeper"
    assert f"the platform's {names.SWEEPER_LOG_GROUP_NAME!r}" in error_of(data)


def test_reserved_codes_are_derived_from_every_code_derived_name() -> None:
    """No customer code outside the reserved set derives a name the platform owns (``runtime.contract.names``)."""
    platform = platform_owned_names()
    assert {"sweeper", "coordinator"} <= RESERVED_CUSTOMER_CODES
    for code in ("sweeper", "coordinator", "hts", "change-processor-cluster", "ttp-sweeper"):
        derived = {derive(code) for derive in CODE_DERIVED_NAMES}
        assert bool(derived & platform) == (code in codes_colliding_with_platform_names()), code


def test_context_overrides_generate_sample_customers() -> None:
    context = {"ttp": raw(), "ttp:sample-customers": "12", "ttp:routing": "eventbridge"}
    config = config_from_context(context)
    assert len(config.customers) == 12 and config.routing == "eventbridge"
    assert config.customers[0].code == "c0001"
    with pytest.raises(ConfigError, match="must be an integer"):
        config_from_context({"ttp": raw(), "ttp:sample-customers": "many"})


def test_context_value_may_be_a_json_string() -> None:
    assert config_from_context({"ttp": json.dumps(raw())}).customers[0].code == "hts"
    with pytest.raises(ConfigError, match="not valid JSON"):
        config_from_context({"ttp": "{not json"})


def test_app_exits_with_the_message_on_bad_config(tmp_path: Path) -> None:
    bad = raw()
    bad["customers"][0]["sender_external_id"] = "x"
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"ttp": bad}),
        "CDK_OUTDIR": str(tmp_path),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "ttp.customers[0].sender_external_id" in result.stderr


# --- Two customer codes in one SES account (issue 17) ------------------------------------------------------
# An SES account has one contact list per region: customers sending from the same one could each read (and
# mail) the other's recipients. Refused unless both name each other in shares_ses_account_with.


def _same_ses_account(data: dict[str, Any]) -> dict[str, Any]:
    data["customers"][1]["account"] = data["customers"][0]["account"]
    return data


def test_two_customers_in_one_ses_account_are_refused() -> None:
    message = error_of(_same_ses_account(raw()))
    for fragment in ("'hts'", "'htsnonprod'", "333333333333", "us-east-1", "contact list", "shares_ses_account_with"):
        assert fragment in message, message


def test_one_sided_sharing_is_refused() -> None:
    data = _same_ses_account(raw())
    data["customers"][0]["shares_ses_account_with"] = ["htsnonprod"]
    message = error_of(data)
    assert "'htsnonprod' does not name 'hts'" in message, message


def test_two_customers_that_name_each_other_may_share_an_ses_account() -> None:
    data = _same_ses_account(raw())
    data["customers"][0]["shares_ses_account_with"] = ["htsnonprod"]
    data["customers"][1]["shares_ses_account_with"] = ["hts"]
    config = parse_config(data)
    assert config.customer("hts").shares_ses_account_with == ["htsnonprod"]


@pytest.mark.parametrize(
    ("named", "expected"),
    [
        ("nosuch", "'nosuch', which is not a customer"),
        ("htsnonprod", "'htsnonprod', which sends from SES account 444444444444"),  # not shared: stale
        ("hts", "names itself"),
    ],
)
def test_shares_ses_account_with_names_only_customers_of_the_same_ses_account(named: str, expected: str) -> None:
    data = raw()
    data["customers"][0]["shares_ses_account_with"] = [named]
    message = error_of(data)
    assert "ttp.customers" in message or "customer 'hts'" in message, message
    assert expected in message, message


def test_generated_sample_customers_declare_the_accounts_they_share() -> None:
    config = parse_config({**raw(), "routing": "eventbridge", "customers": sample_customers(6)})
    first = config.customer("c0001")
    assert sorted(first.shares_ses_account_with) == ["c0003", "c0005"]


# --- One name per setting (issue 19): a deployed cdk.json's old key still works ------------------------


def test_the_old_external_id_key_is_read_with_a_deprecation_warning() -> None:
    data = raw()
    data["customers"][0]["external_id"] = data["customers"][0].pop("sender_external_id")
    with pytest.warns(
        ConfigDeprecationWarning, match=r"'external_id' \(customer 'hts'\).*rename it to 'sender_external_id'"
    ):
        config = parse_config(data)
    assert config.customer("hts").sender_external_id == "ttp-hts-7f3c9a"
    assert config == parse_config(raw())  # the same config as with the new key


def test_the_old_and_the_new_key_together_are_refused() -> None:
    data = raw()
    data["customers"][0]["external_id"] = "ttp-hts-other"
    with pytest.raises(
        ConfigError, match=r"ttp.customers\[0\]: give sender_external_id only: external_id is its old name"
    ):
        parse_config(data)
