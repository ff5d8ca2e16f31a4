"""The submission site's API (runtime.web.app) on moto: the handler as the function URL invokes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from runtime.contract import keys
from runtime.web import app as web_app

BUCKET = "ttp-metadata-test"
USER = "alice@example.com"


def _event(method: str, path: str, body: Any = None, user: str | None = USER) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    if user is not None:
        headers["x-ttp-user"] = user
    return {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": method, "path": path}, "requestId": "r", "stage": "$default"},
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def call(method: str, path: str, body: Any = None, user: str | None = USER) -> tuple[int, Any]:
    response = web_app.handler(_event(method, path, body, user), None)
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def change(change_id: str = "CHG-1001", customers: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"change_id": change_id, "title": "Patch the gateways", "customers": customers or ["hts", "cds"], **extra}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "TTP_BUCKET_NAME": BUCKET,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with mock_aws():
        monkeypatch.setattr(web_app, "_clients", None)
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        ssm = boto3.client("ssm", region_name="us-east-1")
        for code in ("hts", "cds", "nonprod"):
            ssm.put_parameter(Name=f"/ttp/customers/{code}", Value="{}", Type="String")
        yield client


def _keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_customers_are_the_published_registry(s3: Any) -> None:
    assert call("GET", "/api/customers") == (200, {"customers": ["cds", "hts", "nonprod"]})


def test_unauthenticated_request_is_refused_and_writes_nothing(s3: Any) -> None:
    status, body = call("POST", "/api/changes", change(), user=None)
    assert status == 401
    assert "x-ttp-user" in body["message"]
    assert call("GET", "/api/customers", user=None)[0] == 401
    assert _keys(s3) == []


def test_validate_gives_the_models_message_per_field(s3: Any) -> None:
    status, body = call("POST", "/api/validate", change(title="", implementation_start="2026-12-08T10:00:00"))
    assert status == 200
    assert body["valid"] is False
    assert body["fields"]["title"] == "String should have at least 1 character"
    assert "implementation_start" in body["fields"]
    assert body["message"].startswith("invalid change document: ")  # what `python -m runtime submit` prints
    assert call("POST", "/api/validate", change())[1] == {"valid": True, "message": "", "fields": {}}


def test_submit_with_a_bad_field_writes_nothing(s3: Any) -> None:
    status, body = call("POST", "/api/changes", change(title=""))
    assert status == 400
    assert body["fields"]["title"] == "String should have at least 1 character"
    assert _keys(s3) == []


def test_submit_refuses_an_unregistered_customer(s3: Any) -> None:
    status, body = call("POST", "/api/changes", change(customers=["hts", "nosuch"]))
    assert status == 400 and "nosuch" in body["message"]
    assert "published customer list" in body["message"]
    assert _keys(s3) == []


def test_submit_writes_archive_then_one_trigger_per_customer_recording_the_identity(s3: Any) -> None:
    status, body = call("POST", "/api/changes", change(user_id="mallory"))
    assert status == 201, body
    assert body["customers"] == [
        {"customer": "hts", "trigger_written": True},
        {"customer": "cds", "trigger_written": True},
    ]
    assert _keys(s3) == ["archive/CHG-1001.json", "customers/cds/CHG-1001.json", "customers/hts/CHG-1001.json"]
    archived = json.loads(s3.get_object(Bucket=BUCKET, Key="archive/CHG-1001.json")["Body"].read())
    assert [m["user_id"] for m in archived["modifications"]] == [USER]


def test_change_page_and_resubmission(s3: Any) -> None:
    call("POST", "/api/changes", change())
    status, body = call("GET", "/api/changes/CHG-1001")
    assert status == 200
    assert body["revision"] == 1 and body["document"]["title"] == "Patch the gateways"
    assert {c["customer"]: c["state"] for c in body["customers"]} == {"hts": "pending", "cds": "pending"}
    assert {c["customer"] for c in body["customers"] if c["trigger"]} == {"hts", "cds"}
    assert body["modifications"][0]["user_id"] == USER
    status, again = call("POST", "/api/changes/CHG-1001/revisions", change(title="Patch the gateways, again"))
    assert status == 201 and again["revision"] == 2
    assert call("GET", "/api/changes/CHG-1001")[1]["revisions"] == [1, 2]
    assert call("POST", "/api/changes/CHG-1001/revisions", change("CHG-2"))[0] == 400
    assert call("GET", "/api/changes/CHG-9")[0] == 404


def test_drafts_are_saved_conditionally_and_reopened(s3: Any) -> None:
    status, saved = call("PUT", "/api/drafts/CHG-7", {"draft": change("CHG-7", title="first"), "etag": None})
    assert status == 200 and saved["saved_by"] == USER
    status, opened = call("GET", "/api/drafts/CHG-7")
    assert opened["draft"]["title"] == "first" and opened["etag"] == saved["etag"]
    # someone else saves over the version they opened ...
    status, _ = call("PUT", "/api/drafts/CHG-7", {"draft": change("CHG-7", title="theirs"), "etag": saved["etag"]})
    assert status == 200
    # ... so a save over the older ETag, or a second "new" draft, overwrites nothing
    assert call("PUT", "/api/drafts/CHG-7", {"draft": change("CHG-7", title="mine"), "etag": saved["etag"]})[0] == 409
    assert call("PUT", "/api/drafts/CHG-7", {"draft": change("CHG-7", title="mine"), "etag": None})[0] == 409
    assert call("GET", "/api/drafts/CHG-7")[1]["draft"]["title"] == "theirs"
    assert call("GET", "/api/drafts/CHG-8")[0] == 404
    assert call("PUT", "/api/drafts/bad id", {"draft": {}, "etag": None})[0] == 400
    assert keys.draft_key("CHG-7") in _keys(s3)


def test_the_platforms_published_list_wins_over_the_registry(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTP_SITE_CUSTOMERS", "hts,cds")
    assert call("GET", "/api/customers") == (200, {"customers": ["cds", "hts"]})
    status, body = call("POST", "/api/changes", change(customers=["hts", "nonprod"]))
    assert status == 400 and "nonprod" in body["message"]
    assert _keys(s3) == []
