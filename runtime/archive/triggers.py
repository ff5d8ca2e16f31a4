"""Transient triggers: ``customers/{code}/{change_id}.json``.

A trigger exists only to fire an S3 event; its content is never trusted (the archive is). The
processor reads its ETag before working and deletes it with ``IfMatch`` that ETag afterwards, so a
newer submission that replaced the trigger meanwhile is never deleted by the older message.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from runtime.aws import error_code, http_status
from runtime.contract import keys


@dataclass(frozen=True)
class TriggerInfo:
    ref: keys.TriggerRef
    etag: str
    last_modified: datetime


class DeleteOutcome(enum.Enum):
    DELETED = "deleted"
    ALREADY_GONE = "already_gone"
    REPLACED = "replaced"  # 412: a newer trigger with another ETag is there now
    FAILED = "failed"


def is_already_there(exc: ClientError) -> bool:
    """A create-only :meth:`TriggerStore.put` found a trigger there (412, or 409 for a concurrent write)."""
    return http_status(exc) in (409, 412) or error_code(exc) in {"PreconditionFailed", "ConditionalRequestConflict"}


class TriggerStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def head(self, ref: keys.TriggerRef) -> TriggerInfo | None:
        try:
            response = self._s3.head_object(Bucket=self.bucket, Key=ref.key)
        except ClientError as exc:
            if http_status(exc) == 404 or error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return TriggerInfo(ref, response["ETag"], response["LastModified"])

    def put(self, ref: keys.TriggerRef, revision: int, *, if_absent: bool = False) -> str:
        """Write the trigger (its creation fires the customer's queue). ``if_absent``: only create it
        (``IfNoneMatch="*"``), so a trigger someone else wrote meanwhile is never overwritten — S3 then
        answers 412 (:func:`is_already_there`)."""
        body = json.dumps({"change_id": ref.change_id, "customer_code": ref.customer_code, "revision": revision})
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        response = self._s3.put_object(
            Bucket=self.bucket, Key=ref.key, Body=body.encode(), ContentType="application/json", **condition
        )
        return str(response["ETag"])

    def delete_if_unchanged(self, info: TriggerInfo) -> tuple[DeleteOutcome, str]:
        """Delete the trigger only if it is still the one we read (same ETag)."""
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=info.ref.key, IfMatch=info.etag)
        except ClientError as exc:
            status, code = http_status(exc), error_code(exc)
            if status == 412 or code == "PreconditionFailed":
                return DeleteOutcome.REPLACED, "a newer trigger replaced it"
            if status == 404 or code in {"NoSuchKey", "404"}:
                return DeleteOutcome.ALREADY_GONE, "already deleted"
            return DeleteOutcome.FAILED, f"{code or status}: {exc}"
        return DeleteOutcome.DELETED, ""

    def list(self, customer_code: str | None = None) -> Iterator[TriggerInfo]:
        """Every trigger (of one customer, or of all); keys that are not valid triggers are skipped."""
        prefix = keys.trigger_prefix(customer_code) if customer_code else keys.CUSTOMERS_PREFIX
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                try:
                    ref = keys.parse_trigger_key(item["Key"], encoded=False)
                except keys.InvalidKeyError:
                    continue
                yield TriggerInfo(ref, item["ETag"], item["LastModified"])
