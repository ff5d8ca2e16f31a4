"""Fixtures for runtime tests: an in-process moto account with the hand-built layout, and fault proxies.

Not the deployed assembly, on purpose: these are unit-level fixtures (one in-process account per test or
module, every call in process); a deploy would cost 1.5 to 3.5 s each and put every call over HTTP. The
deployed platform is tests/support/deployed.py (the worker, coordinator, meeting and delivery-event tests)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from devtools import hand_layout
from devtools import sandbox as sb
from devtools.emulator import make_conditional_writes_atomic
from runtime.archive.processing_store import ProcessingStore
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.notify.ses import RateLimiter, SesMailer
from runtime.pipeline.state_machine import Processor
from runtime.telemetry.metrics import MetricsFactory

make_conditional_writes_atomic()


def client_error(code: str, status: int, message: str = "injected") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Injected"
    )


class Faulty:
    """Wraps a boto3 client; ``fail(name, exc, times)`` makes the next calls of ``name`` raise."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self._faults: dict[str, list[BaseException | Callable[..., Any]]] = {}
        self.calls: dict[str, int] = {}

    def fail(self, name: str, exc: BaseException | Callable[..., Any], times: int = 1) -> Faulty:
        self._faults.setdefault(name, []).extend([exc] * times)
        return self

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            queue = self._faults.get(name)
            if queue:
                fault = queue.pop(0)
                if isinstance(fault, BaseException):
                    raise fault
                fault(*args, **kwargs)
            return attr(*args, **kwargs)

        return call


class Platform:
    """One emulated platform: bucket, queues, customers' SES, and helpers to build processors."""

    def __init__(self, box: hand_layout.Sandbox) -> None:
        self.box = box
        self.bucket = box.bucket
        self.s3 = boto3.client("s3", region_name=box.region)
        self.sqs = boto3.client("sqs", region_name=box.region)
        self.metrics_stream = io.StringIO()

    def ses(self, code: str) -> Any:
        return hand_layout.customer_session(self.box.customers[code].spec, self.box.region).client("sesv2")

    def processor(
        self,
        code: str,
        *,
        s3: Any = None,
        ses: Any = None,
        lease_seconds: int = 60,
        rate: float = 1000.0,
        **kwargs: Any,
    ) -> Processor:
        s3 = s3 or self.s3
        ses_client = ses or self.ses(code)
        spec = self.box.customers[code].spec
        mailer = SesMailer(lambda: ses_client, spec.sender, sb.DEFAULT_CONTACT_LIST_NAME, RateLimiter(rate, burst=rate))
        return Processor(
            code,
            ArchiveStore(s3, self.bucket, sleep=lambda _s: None),
            TriggerStore(s3, self.bucket),
            mailer,
            MetricsFactory("CustomMetrics", self.metrics_stream),
            lease_seconds=lease_seconds,
            store=kwargs.pop("store", None) or ProcessingStore(s3, self.bucket, sleep=lambda _s: None),
            **kwargs,
        )

    def fold(self, change_id: str = "CHG-1", customers: list[str] | None = None) -> None:
        """What the change coordinator does on the processing objects' events: fold their results into
        the archive (in-process, no queue)."""
        from runtime.contract.keys import TriggerRef
        from runtime.coordinator.folding import FoldBatcher, Folder
        from runtime.coordinator.handler import CoordinatorHandler

        archive = ArchiveStore(self.s3, self.bucket, sleep=lambda _s: None)
        metrics = MetricsFactory("CustomMetrics", self.metrics_stream)
        handler = CoordinatorHandler(self.s3, self.bucket, archive, FoldBatcher(Folder(archive, metrics), 0.0), metrics)
        for code in customers or list(self.box.customers):
            result = handler.fold(TriggerRef(code, change_id))
            assert result.fate.value == "ack", result

    def submit(self, change_id: str = "CHG-1", customers: list[str] | None = None, **fields: Any) -> None:
        doc = {"change_id": change_id, "title": f"Change {change_id}", "customers": customers or ["hts", "htsnonprod"]}
        doc.update(fields)
        s3 = self.s3
        submit_change(ArchiveStore(s3, self.bucket), TriggerStore(s3, self.bucket), doc, user_id="tester")

    def archive(self, change_id: str = "CHG-1") -> dict[str, Any]:
        """The stored document, its audit trail read as readers read it (with its fold segments' entries)."""
        return ArchiveStore(self.s3, self.bucket).read_json(change_id)

    def trigger_exists(self, code: str, change_id: str = "CHG-1") -> bool:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"customers/{code}/{change_id}.json")
        return listed.get("KeyCount", 0) > 0

    def emails(self, code: str) -> list[dict[str, Any]]:
        return sb.sent_emails(self.box.customers[code].spec.account, self.box.region)

    def metrics(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.metrics_stream.getvalue().splitlines() if line]

    def metric_total(self, name: str, code: str | None = None) -> float:
        total = 0.0
        for blob in self.metrics():
            if code is None or blob.get("CustomerCode") == code:
                total += sum(blob.get(name, []))
        return total

    def processing(self, code: str, change_id: str = "CHG-1") -> dict[str, Any] | None:
        """The processing object ``processing/{code}/{change_id}.json`` (None when absent)."""
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=f"processing/{code}/{change_id}.json")["Body"].read()
        except ClientError:
            return None
        loaded: dict[str, Any] = json.loads(body)
        return loaded

    def result(self, code: str, revision: int = 1, change_id: str = "CHG-1") -> dict[str, Any] | None:
        """The recorded result of ``revision`` in ``code``'s processing object (step 7), or None."""
        doc = self.processing(code, change_id) or {}
        found: dict[str, Any] | None = doc.get("results", {}).get(str(revision))
        return found

    def processed_entries(self, change_id: str = "CHG-1") -> list[dict[str, Any]]:
        return [m for m in self.archive(change_id)["modifications"] if m["modification_type"] == "processed"]
