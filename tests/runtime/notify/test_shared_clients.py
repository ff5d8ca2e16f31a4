"""Customers' SES clients share one loader and one STS client, never credentials (issue 21).

A botocore session's first client parses the endpoint data, the SDK defaults and the service model;
with a fresh session per customer that was ~38 ms CPU per customer, most of the processor's CPU in
the fan-out benchmark and the coordinator's attendee lookup. These tests count the parsed files and
the clients built, and read the access key each customer's requests are signed with.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import botocore.client
import botocore.loaders
import pytest
from moto import mock_aws

from runtime import aws
from runtime.notify.attendees import ContactDirectory
from runtime.notify.ses import CustomerSes

REGION = "eu-west-1"
CUSTOMERS = [f"c{n:02d}" for n in range(12)]


def role(code: str) -> str:
    return f"arn:aws:iam::{100000000000 + CUSTOMERS.index(code)}:role/ttp-sender-{code}"


@pytest.fixture
def parsed_files(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """How many times each botocore data file is parsed (what a loader's cache saves), from a process
    that has parsed none yet."""
    monkeypatch.setattr(aws, "_process_core", None)
    counts: collections.Counter[str] = collections.Counter()
    original = botocore.loaders.JSONFileLoader.load_file

    def load_file(self: Any, file_path: str) -> Any:
        loaded = original(self, file_path)
        if loaded is not None:
            counts[file_path] += 1
        return loaded

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", load_file)
    return counts


@pytest.fixture
def clients_built(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    original = botocore.client.ClientCreator.create_client

    def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        counts[service_name] += 1
        return original(self, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.client.ClientCreator, "create_client", create_client)
    return counts


@pytest.fixture
def moto_account(aws_credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


def test_n_customers_parse_each_data_file_once(parsed_files: collections.Counter[str]) -> None:
    base = boto3.session.Session(region_name=REGION)
    for code in CUSTOMERS:
        CustomerSes(role(code), "ext", f"ttp-{code}", base_session=base).client("sesv2")
    assert any("sesv2" in path for path in parsed_files), parsed_files
    assert {path: n for path, n in parsed_files.items() if n > 1} == {}


def test_the_coordinators_directory_parses_each_data_file_once(parsed_files: collections.Counter[str]) -> None:
    directory = ContactDirectory({code: role(code) for code in CUSTOMERS}, "ext", "list", region=REGION)
    for code in CUSTOMERS:
        directory._ses(code)
    assert any("sesv2" in path for path in parsed_files), parsed_files
    assert {path: n for path, n in parsed_files.items() if n > 1} == {}


def test_each_customer_signs_with_its_own_role_and_one_sts_client_assumes_them_all(
    moto_account: None, clients_built: collections.Counter[str]
) -> None:
    base = aws.session(region_name=REGION)
    issued: dict[str, str] = {}  # access key -> the role name it was issued for

    def on_assume_role(parsed: dict[str, Any], **_: Any) -> None:
        issued[parsed["Credentials"]["AccessKeyId"]] = parsed["AssumedRoleUser"]["Arn"].split("/")[1]

    base.events.register("after-call.sts.AssumeRole", on_assume_role)
    customers = {code: CustomerSes(role(code), "ext", f"ttp-{code}", base_session=base) for code in CUSTOMERS}
    signed: dict[str, set[str]] = collections.defaultdict(set)

    def call(code: str) -> None:
        client = customers[code].client("sesv2")

        def on_send(request: Any, **_: Any) -> None:
            authorization = request.headers["Authorization"].decode()
            signed[code].add(re.search(r"Credential=([^/]+)/", authorization)[1])  # type: ignore[index]

        client.meta.events.register("before-send.sesv2", on_send)
        for _ in range(3):
            client.list_contact_lists()

    with ThreadPoolExecutor(max_workers=len(CUSTOMERS)) as pool:  # concurrently, as the processors do
        list(pool.map(call, CUSTOMERS))

    for code in CUSTOMERS:
        assert len(signed[code]) == 1, (code, signed[code])
        (key,) = signed[code]
        assert issued[key] == f"ttp-sender-{code}"
    assert len(issued) == len(CUSTOMERS)
    assert clients_built["sts"] == 1
    assert clients_built["sesv2"] == len(CUSTOMERS)
