"""The triggers under ``customers/`` as the procedures look at them: grouped per customer, and with the
sweeper's re-drive record (object tags on the trigger, written by ``runtime.ops.sweep``, read by
``stuck`` and ``verify``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from runtime.archive.triggers import TriggerInfo, TriggerStore

REDRIVE_ATTEMPTS_TAG = "ttp-redrive-attempts"
LAST_REDRIVE_TAG = "ttp-last-redrive"


def triggers_by_customer(s3: Any, bucket: str, customer: str | None = None) -> dict[str, list[TriggerInfo]]:
    grouped: dict[str, list[TriggerInfo]] = {}
    for info in TriggerStore(s3, bucket).list(customer):
        grouped.setdefault(info.ref.customer_code, []).append(info)
    return grouped


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
