"""The fan-out benchmark's layout (not a benchmark: tests/test_benchmarks.py skips ``_*.py``): what
``fanout_bench.py`` needs of the hand-built layout for N customers, set up concurrently, and each
customer's trigger event as its worker would receive it."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote_plus

import boto3

from benchmarks._fanout_measures import with_control
from devtools import hand_layout
from devtools import sandbox as sb
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.contract import keys, names


def customer_ses(spec: sb.CustomerSpec, region: str) -> None:
    """The customer's configuration set, sender identity and contacts, created in its account by naming
    the account to the emulator (moto's ``x-moto-account-id`` header) instead of assuming a role there
    first: one call fewer per customer, and no role session to set up."""
    ses = boto3.client("sesv2", region_name=region)

    def in_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = spec.account

    ses.meta.events.register("before-sign.sesv2", in_account)
    ses.create_configuration_set(ConfigurationSetName=names.configuration_set_name(spec.code))
    sb.create_contacts(ses, spec)


def fan_out_layout(specs: list[sb.CustomerSpec], coordinated: bool) -> hand_layout.Sandbox:
    """What this benchmark needs of the hand-built layout, set up concurrently: the bucket, the
    customer registry, each customer's SES (configuration set, identity, contacts) and, with a
    coordinator, its queue fed by the archive/, processing/ and delivery/ events.

    No customer queue: the processors here are handed their trigger's event directly (below), so the
    2 x N queues and N notification routes the worker would need are not created (at N = 1,000 they took
    the hand-built set-up past 15 minutes, one call at a time)."""
    region = "us-east-1"
    s3, sqs = boto3.client("s3", region_name=region), boto3.client("sqs", region_name=region)
    bucket = "ttp-metadata-local"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda spec: customer_ses(spec, region), specs))
        list(pool.map(lambda spec: hand_layout.register_customers([spec.code], region), specs))
    resources = {
        spec.code: hand_layout.CustomerResources(spec, "unused: the trigger's event is handed over", "", "")
        for spec in specs
    }
    box = hand_layout.Sandbox(bucket, region, resources)
    if not coordinated:
        return box
    box.coordinator = hand_layout._create_queue(sqs, names.COORDINATOR_QUEUE_NAME, names.COORDINATOR_DLQ_NAME, 30, 3)
    box.delivery = hand_layout._create_queue(
        sqs, names.DELIVERY_EVENTS_QUEUE_NAME, names.DELIVERY_EVENTS_DLQ_NAME, 30, 3
    )
    routes = [
        {
            "Id": f"coordinator-{prefix.rstrip('/')}",
            "QueueArn": box.coordinator.queue_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {
                "Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}, {"Name": "suffix", "Value": keys.SUFFIX}]}
            },
        }
        for prefix in (keys.ARCHIVE_PREFIX, keys.PROCESSING_PREFIX, keys.DELIVERY_PREFIX)
    ]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": routes})
    return box


def set_up_changes(
    customers: int, recipients: int, controls: int, coordinated: bool, change_id: str
) -> tuple[hand_layout.Sandbox, dict[str, list[str]]]:
    """The layout, the measured change (``change_id``, ``customers`` customers) and ``controls`` control
    changes of 10 other customers each (:mod:`benchmarks._fanout_measures`), submitted. Returns the layout
    and every change's customers by change id, the measured change's first, plus under ``"order"`` every
    customer in processor-task order (the control group's scattered through the measured ones)."""
    measured = [f"c{n:04d}" for n in range(customers)]
    order, control = with_control(measured, controls)
    specs = [
        sb.CustomerSpec(
            code, f"{100000000000 + n}", tuple(sb.Contact(f"r{i}@{code}.example.com") for i in range(recipients))
        )
        for n, code in enumerate(order)
    ]
    box = fan_out_layout(specs, coordinated)
    s3 = boto3.client("s3")
    changes = {change_id: measured, **control}
    for submitted, codes in changes.items():
        submit_change(
            ArchiveStore(s3, box.bucket),
            TriggerStore(s3, box.bucket),
            {"change_id": submitted, "title": "fan-out", "customers": codes},
            user_id="bench",
        )
    return box, {"order": order, **changes}


def trigger_events(box: hand_layout.Sandbox, codes: list[str]) -> dict[str, str]:
    """Each customer's trigger as its S3 event describes it (key, ETag, time): the body the customer's
    worker would receive, listed before the clock starts."""
    s3 = boto3.client("s3", region_name=box.region)
    events: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=box.bucket, Prefix=keys.CUSTOMERS_PREFIX):
        for item in page.get("Contents", []):
            ref = keys.parse_trigger_key(item["Key"], encoded=False)
            record = {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "eventTime": item["LastModified"].isoformat(),
                "s3": {
                    "bucket": {"name": box.bucket},
                    "object": {"key": quote_plus(item["Key"], safe="/"), "eTag": item["ETag"].strip('"')},
                },
            }
            events[ref.customer_code] = json.dumps({"Records": [record]})
    missing = set(codes) - set(events)
    if missing:
        raise SystemExit(f"no trigger for {len(missing)} customers, e.g. {sorted(missing)[:3]}")
    return events
