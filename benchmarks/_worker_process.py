"""The processing benchmark's workload and its worker processes (not a benchmark: tests/test_benchmarks.py
skips ``_*.py``): the customers' sandbox, the changes submitted to it, and ``python -m runtime worker``
run as a subprocess whose log lines and call counts the sections read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3

from devtools import sandbox as sb
from devtools.emulator import FAKE_CREDENTIALS
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 4


def spec(code: str, account: str, recipients: int) -> sb.CustomerSpec:
    return sb.CustomerSpec(code, account, tuple(sb.Contact(f"r{i}@{code}.example.com") for i in range(recipients)))


def submit_many(box: sb.Sandbox, codes: list[str], count: int, prefix: str) -> None:
    s3 = boto3.client("s3")
    archive, triggers = ArchiveStore(s3, box.bucket), TriggerStore(s3, box.bucket)
    for n in range(count):
        doc = {"change_id": f"{prefix}-{n}", "title": "bench", "customers": codes}
        submit_change(archive, triggers, doc, user_id="bench")


def triggers_left(box: sb.Sandbox) -> int:
    return int(boto3.client("s3").list_objects_v2(Bucket=box.bucket, Prefix="customers/").get("KeyCount", 0))


def wait_until_drained(box: sb.Sandbox, limit: float = 600) -> float:
    started = time.monotonic()
    while triggers_left(box) > 0:
        if time.monotonic() - started > limit:
            raise SystemExit(f"not drained in {limit} s")
        time.sleep(0.05)
    return time.monotonic() - started


def log_time(blob: dict[str, Any]) -> float:
    """Epoch seconds (ms resolution) of one of the worker's JSON log lines."""
    return datetime.strptime(blob["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z").timestamp()


class WorkerProcess:
    def __init__(
        self, box: sb.Sandbox, code: str, endpoint: str, *, count_calls: bool = False, **settings: str
    ) -> None:
        self.log = Path(tempfile.mkstemp(prefix=f"bench-{code}-", suffix=".log")[1])
        # its AWS calls counted by operation, as the bare loop counts its own (SIGUSR1 writes them)
        self.calls_file = self.log.with_suffix(".calls.json") if count_calls else None
        counting = ["-m", "benchmarks._measure", str(self.calls_file)] if self.calls_file else []
        env = {**os.environ, **FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "PYTHONPATH": str(ROOT)}
        defaults = {
            "TTP_RECEIVE_WAIT_SECONDS": "1",
            "TTP_MAX_CONCURRENCY": str(CONCURRENCY),
            "TTP_SEND_RATE_PER_SECOND": "500",
            "TTP_LOG_LEVEL": "WARNING",
        }
        env.update(box.worker_env(code, **{**defaults, **settings}))
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, *counting, "runtime", "worker"]
            if counting
            else [sys.executable, "-m", "runtime", "worker"],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def calls(self, limit: float = 30) -> dict[str, int]:
        """The AWS calls it has made so far, by ``service:Operation`` (started with ``count_calls``)."""
        assert self.calls_file is not None, "started without count_calls"
        self.calls_file.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                counted: dict[str, int] = json.loads(self.calls_file.read_text())
                return counted
            except (OSError, json.JSONDecodeError):  # not written yet, or half written
                time.sleep(0.05)
        raise SystemExit(f"the worker wrote no call counts in {limit} s: see {self.log}")

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self._out.close()

    def lines(self) -> Iterator[dict[str, Any]]:
        """Its log's JSON objects so far (log lines and EMF metric lines), skipping what is not one."""
        for line in self.log.read_text().splitlines():
            try:
                blob = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(blob, dict):
                yield blob

    def wait_for_start(self, limit: float = 120) -> float:
        """Epoch seconds of the worker's "worker started" line (INFO), once it is written."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for blob in self.lines():
                if blob.get("message") == "worker started":
                    return log_time(blob)
            time.sleep(0.02)
        raise SystemExit(f"the worker did not start in {limit} s: see {self.log}")

    def wait_for_handled(self, count: int, limit: float = 600) -> dict[str, float]:
        """Waits (reading its log, not the emulator) until ``count`` triggers were handled."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            handled = self.handled_at()
            if len(handled) >= count:
                return handled
            time.sleep(0.05)
        raise SystemExit(f"the worker handled {len(self.handled_at())} of {count} in {limit} s: see {self.log}")

    def metric(self, name: str) -> list[float]:
        return [value for blob in self.lines() if "_aws" in blob for value in blob.get(name, [])]

    def handled_at(self) -> dict[str, float]:
        """change id -> epoch seconds (ms resolution) of the worker's "message handled" line.

        The worker logs it after the trigger DELETE returned, so it closes the end-to-end interval
        with the millisecond clock of this same machine (``TriggerAge`` is rounded to S3's 1 s
        ``Last-Modified`` resolution and cannot measure sub-second latency).
        """
        found: dict[str, float] = {}
        for blob in self.lines():
            if blob.get("message") == "message handled" and blob.get("change_id"):
                found.setdefault(blob["change_id"], log_time(blob))
        return found
