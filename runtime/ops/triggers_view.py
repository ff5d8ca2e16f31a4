"""The triggers under ``customers/`` as the procedures look at them: grouped per customer, the objects
there that are *not* valid triggers, and the sweeper's re-drive record (object tags on the trigger,
written by ``runtime.sweeper``, read by ``stuck`` and ``verify``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from runtime.archive import TriggerInfo
from runtime.contract import keys

REDRIVE_ATTEMPTS_TAG = "ttp-redrive-attempts"
LAST_REDRIVE_TAG = "ttp-last-redrive"


INVALID_TRIGGER_KEY = "invalid_trigger_key"
"""The diagnosis of an object under ``customers/`` whose key is not a valid trigger key."""


@dataclass(frozen=True)
class InvalidTriggerObject:
    """An object under ``customers/`` whose key is not ``customers/{code}/{change_id}.json`` with a valid
    code and change id (``runtime.contract.keys``): written by hand or by a broken client. No processor
    ever acts on it (its event is dead-lettered) and nothing deletes it, so the procedures list it
    rather than skip it. ``key`` is verbatim: it may hold anything S3 accepts (markup, control
    characters), so a renderer must escape it."""

    key: str
    etag: str
    last_modified: datetime
    problem: str
    customer: str | None
    """The customer of ``customers/{code}/…`` when ``code`` is a valid customer code, else None."""
    diagnosis: str = INVALID_TRIGGER_KEY


@dataclass
class CustomersListing:
    """One listing of ``customers/`` (or of one customer's prefix): valid triggers per customer, and
    every other object there."""

    triggers: dict[str, list[TriggerInfo]] = field(default_factory=dict)
    invalid: list[InvalidTriggerObject] = field(default_factory=list)


def list_customer_objects(s3: Any, bucket: str, customer: str | None = None) -> CustomersListing:
    """Every object under ``customers/`` (or ``customers/{customer}/``), valid triggers or not."""
    prefix = keys.trigger_prefix(customer) if customer else keys.CUSTOMERS_PREFIX
    listing = CustomersListing()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            try:
                ref = keys.parse_trigger_key(key, encoded=False)
            except keys.InvalidKeyError as exc:
                listing.invalid.append(
                    InvalidTriggerObject(key, item["ETag"], item["LastModified"], str(exc), _customer_of(key))
                )
                continue
            listing.triggers.setdefault(ref.customer_code, []).append(
                TriggerInfo(ref, item["ETag"], item["LastModified"])
            )
    return listing


def _customer_of(key: str) -> str | None:
    code = key[len(keys.CUSTOMERS_PREFIX) :].split("/", 1)[0]
    try:
        return keys.validate_customer_code(code)
    except keys.InvalidKeyError:
        return None


def triggers_by_customer(s3: Any, bucket: str, customer: str | None = None) -> dict[str, list[TriggerInfo]]:
    """The valid triggers only, per customer (what the sweeper acts on)."""
    return list_customer_objects(s3, bucket, customer).triggers


def redrive_attempts(s3: Any, bucket: str, key: str) -> tuple[int, datetime | None]:
    """The sweeper's re-drive record on a trigger (object tags; 0 and None when untagged)."""
    try:
        tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])}
    except ClientError:
        return 0, None
    try:
        attempts = int(tags.get(REDRIVE_ATTEMPTS_TAG, "0"))
    except ValueError:
        attempts = 0
    last = None
    if LAST_REDRIVE_TAG in tags:
        try:
            last = datetime.fromisoformat(tags[LAST_REDRIVE_TAG])
        except ValueError:
            last = None
    return attempts, last
