"""Shared pieces of the fault-injection tests (issue 6, "Fault injection").

* :class:`RandomFaults` wraps a boto3 client and makes a seeded, random fraction of its calls fail —
  before the call (the request never happened) or after it (the call happened, its answer was lost).
* :class:`WorkerProcess` is ``python -m runtime worker`` as a real subprocess against the emulator
  (the pattern of ``tests/e2e/test_worker_integration.py``), with SIGKILL and SIGTERM.
* Email accounting reads what the emulator's SES accepted, per change (the subject ends with
  ``(change_id)``) and recipient, so tests can count lost and duplicate emails.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from devtools import sandbox as sb
from devtools.emulator import LocalAws, make_conditional_writes_atomic
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.contract.names import CALENDAR_TOPIC

make_conditional_writes_atomic()  # S3's compare-and-swap is atomic; moto's in-process backend is not without this

ROOT = Path(__file__).resolve().parents[2]

_SUBJECT_CHANGE = re.compile(r"\(([A-Za-z0-9][A-Za-z0-9._-]*)\)$")


def client_error(code: str, status: int, message: str = "injected") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Injected"
    )


# ---- random faults in boto3 clients --------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """``method`` fails with ``probability``, raising ``error()``; ``after_success``: the call happens first."""

    method: str
    probability: float
    error: Callable[[], BaseException]
    after_success: bool = False
    label: str = ""


# Frames in which no fault is injected: the best-effort save of progress that follows a failure.
# If that write fails too, the emails sent since the last checkpoint (at most 2, the same bound as a
# crash: docs/architecture.md, "The duplicate-email window") are sent again, so the tests that expect no
# duplicates keep faults out of it.
EXEMPT_FRAMES = frozenset({"_save_progress"})


class RandomFaults:
    """A boto3 client whose listed methods fail at random (seeded, thread-safe); counts calls and faults."""

    def __init__(self, target: Any, rules: list[Rule], rng: random.Random) -> None:
        self._target = target
        self._rules: dict[str, list[Rule]] = {}
        for rule in rules:
            self._rules.setdefault(rule.method, []).append(rule)
        self._rng = rng
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()

    def _pick(self, name: str) -> Rule | None:
        rules = self._rules.get(name)
        if not rules or _in_exempt_frame():
            return None
        with self._lock:
            draw = self._rng.random()
        for rule in rules:
            if draw < rule.probability:
                return rule
            draw -= rule.probability
        return None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            rule = self._pick(name)
            with self._lock:
                self.calls[name] += 1
                if rule is not None:
                    self.injected[f"{name}:{rule.label or type(rule.error()).__name__}"] += 1
            if rule is not None and not rule.after_success:
                raise rule.error()
            result = attr(*args, **kwargs)
            if rule is not None:
                raise rule.error()
            return result

        return call


def _in_exempt_frame(depth: int = 12) -> bool:
    frame = sys._getframe(2)
    for _ in range(depth):
        if frame is None:
            return False
        if frame.f_code.co_name in EXEMPT_FRAMES:
            return True
        frame = frame.f_back
    return False


# ---- the platform over HTTP ----------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def submit(box: sb.Sandbox, document: dict[str, Any], s3: Any = None) -> None:
    s3 = s3 or boto3.client("s3", region_name=box.region)
    submit_change(ArchiveStore(s3, box.bucket), TriggerStore(s3, box.bucket), document, user_id="faults")


def archive(box: sb.Sandbox, change_id: str, s3: Any = None) -> dict[str, Any]:
    """The archive as readers read it: its fold segments' entries among its modifications."""
    s3 = s3 or boto3.client("s3", region_name=box.region)
    return ArchiveStore(s3, box.bucket).read_json(change_id)


def processing(box: sb.Sandbox, code: str, change_id: str, s3: Any = None) -> dict[str, Any]:
    """Customer ``code``'s processing object of ``change_id`` (``{}`` when it does not exist yet)."""
    s3 = s3 or boto3.client("s3", region_name=box.region)
    try:
        body = s3.get_object(Bucket=box.bucket, Key=f"processing/{code}/{change_id}.json")["Body"].read()
    except ClientError:
        return {}
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def checkpointed(doc: dict[str, Any], recipients: set[str], revision: int = 1) -> set[str]:
    """The recipients (of ``recipients``) a processing object records as done for ``revision``: its
    result if recorded, else its progress cursor over the sorted, lower-cased list."""
    ordered = sorted({r.lower() for r in recipients})
    if str(revision) in doc.get("results", {}):
        return set(ordered)
    progress = doc.get("progress")
    if not progress or progress.get("revision") != revision:
        return set()
    through = progress.get("done_through")
    return {r for r in ordered if through is not None and r <= through}


def trigger_keys(box: sb.Sandbox, s3: Any = None) -> list[str]:
    s3 = s3 or boto3.client("s3", region_name=box.region)
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=box.bucket, Prefix="customers/"):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def queue_depth(sqs: Any, url: str) -> int:
    """Visible + in flight + delayed messages."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attrs.get(name, 0)) for name in names)


def modifications(doc: dict[str, Any], kind: str, customer: str | None = None) -> list[dict[str, Any]]:
    return [
        m
        for m in doc.get("modifications", [])
        if m["modification_type"] == kind and (customer is None or m.get("customer_code") == customer)
    ]


# ---- email accounting ----------------------------------------------------------------------------


def email_counts(account: str, region: str = "us-east-1") -> Counter[tuple[str, str]]:
    """How many emails the emulator's SES accepted in ``account``, per (change id, recipient)."""
    counts: Counter[tuple[str, str]] = Counter()
    for message in list(sb.sent_emails(account, region)):
        match = _SUBJECT_CHANGE.search(message["subject"] or "")
        change = match.group(1) if match else "?"
        for recipient in message["to"]:
            counts[(change, recipient.lower())] += 1
    return counts


def settled_email_counts(aws: LocalAws, account: str) -> Counter[tuple[str, str]]:
    """Email counts once every request that reached the emulator has been served (a request of a
    just-killed client may still be finishing in the server: it counts)."""
    aws.settle()
    return email_counts(account)


def duplicates(counts: Counter[tuple[str, str]]) -> int:
    return sum(n - 1 for n in counts.values() if n > 1)


# ---- workers as subprocesses ---------------------------------------------------------------------


class WorkerProcess:
    """``python -m runtime worker`` for one customer, logging JSON lines to ``log``."""

    DEFAULTS = {
        "TTP_RECEIVE_WAIT_SECONDS": "1",
        "TTP_VISIBILITY_TIMEOUT_SECONDS": "30",
        "TTP_RETRY_BASE_SECONDS": "0",
        "TTP_DRAIN_SECONDS": "5",
    }

    def __init__(
        self, box: sb.Sandbox, code: str, aws_env: dict[str, str], log: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.box, self.code, self.aws_env, self.extra_env = box, code, aws_env, dict(extra_env or {})
        settings = {k: v for k, v in self.extra_env.items() if k.startswith("TTP_")}
        env = {**os.environ, **aws_env, "PYTHONPATH": str(ROOT)}
        env.update(box.worker_env(code, **{**self.DEFAULTS, **settings}))
        env.update({k: v for k, v in self.extra_env.items() if not k.startswith("TTP_")})
        self.log = log
        self._out = log.open("w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime", "worker"], env=env, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._out.close()

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._out.close()
        return code

    def restart(self, log: Path) -> WorkerProcess:
        return WorkerProcess(self.box, self.code, self.aws_env, log, self.extra_env)

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.log.read_text().splitlines()[-n:])


class CoordinatorProcess(WorkerProcess):
    """``python -m runtime coordinator`` over the sandbox's coordinator queue, logging JSON lines to ``log``.

    It gets the Graph settings only through ``extra_env`` (without them, meetings are off); the
    ``TTP_GRAPH_*`` variables of this process's own environment are never inherited.
    """

    DEFAULTS = {
        "TTP_RECEIVE_WAIT_SECONDS": "1",
        "TTP_VISIBILITY_TIMEOUT_SECONDS": "30",
        "TTP_RETRY_BASE_SECONDS": "0.5",
        "TTP_DRAIN_SECONDS": "5",
        "TTP_MAX_CONCURRENCY": "8",
        "TTP_FOLD_LINGER_SECONDS": "0.2",
    }

    def __init__(
        self, box: sb.Sandbox, aws_env: dict[str, str], log: Path, extra_env: dict[str, str] | None = None
    ) -> None:  # no super().__init__: another command, another environment
        self.box, self.code, self.aws_env, self.extra_env = box, "coordinator", aws_env, dict(extra_env or {})
        settings = {k: v for k, v in self.extra_env.items() if k.startswith("TTP_")}
        env = {k: v for k, v in os.environ.items() if not k.startswith("TTP_GRAPH_")}
        env.update({**aws_env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})  # its log survives a SIGKILL
        env.update(box.coordinator_env(**{**self.DEFAULTS, **settings}))
        env.update({k: v for k, v in self.extra_env.items() if not k.startswith("TTP_")})
        self.log = log
        self._out = log.open("w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime", "coordinator"],
            env=env,
            cwd=ROOT,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def restart(self, log: Path) -> CoordinatorProcess:
        return CoordinatorProcess(self.box, self.aws_env, log, self.extra_env)


def processed_entries(doc: dict[str, Any], customer: str, revision: int = 1) -> list[dict[str, Any]]:
    """The archive's folded ``processed`` entries of ``customer`` for ``revision``."""
    return [m for m in modifications(doc, "processed", customer) if m.get("revision") == revision]


def first_unfolded(
    box: sb.Sandbox, plan: list[dict[str, Any]], done: set[str], s3: Any = None
) -> tuple[str, list[str]] | None:
    """The first planned change (not in ``done``) whose archive lacks a listed customer's ``processed``
    entry for revision 1, with those customers; ``None`` when all are folded. Adds each fully folded
    change to ``done`` and stops at the first that is not, so polling costs about one GET."""
    s3 = s3 or boto3.client("s3", region_name=box.region)
    for doc in plan:
        if doc["change_id"] in done:
            continue
        stored = archive(box, doc["change_id"], s3)
        missing = [code for code in doc["customers"] if not processed_entries(stored, code)]
        if missing:
            return doc["change_id"], missing
        done.add(doc["change_id"])
    return None


def chaos_customer(code: str, account: str) -> sb.CustomerSpec:
    """A customer with three change-notification subscribers and one aws-calendar subscriber."""
    contacts = (
        *(sb.Contact(f"ops{i}@{code}.example.com") for i in range(3)),
        sb.Contact(f"lead@{code}.example.com", {CALENDAR_TOPIC: "OPT_IN"}),
    )
    return sb.CustomerSpec(code, account, contacts)
