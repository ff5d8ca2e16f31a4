"""Helpers the benchmarks share (not a benchmark: tests/test_benchmarks.py skips ``_*.py``)."""

from __future__ import annotations

import collections
import json
import os
import runpy
import signal
import sys
from pathlib import Path
from typing import Any

import boto3
import botocore.session

from devtools import sandbox as sb


def emulator_pid() -> int | None:
    """The pid of this process's emulator child (``python -m devtools.emulator``), from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"devtools.emulator" in cmdline:
            return int(entry.name)
    return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (0 when unknown): what the work cost, whatever the load."""
    if pid is None:
        return 0.0
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def unsubscribe_coordinator(box: sb.Sandbox) -> None:
    """Drop the bucket notifications that feed the change coordinator's queue.

    The per-trigger benchmarks run no coordinator: subscribed, its queue would only grow through the
    run, and every notification into it would cost the emulator more as it grows."""
    if box.coordinator is None:
        return
    s3 = boto3.client("s3")
    config: dict[str, Any] = s3.get_bucket_notification_configuration(Bucket=box.bucket)
    config.pop("ResponseMetadata", None)
    config["QueueConfigurations"] = [
        c for c in config.get("QueueConfigurations", []) if c["QueueArn"] != box.coordinator.queue_arn
    ]
    s3.put_bucket_notification_configuration(Bucket=box.bucket, NotificationConfiguration=config)


def count_calls(counts: collections.Counter[str]) -> None:
    """Count every AWS call of this process in ``counts``, as ``service:Operation`` (a ``before-call``
    handler on each botocore client created from now on: the worker's and the bare loop's alike)."""
    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register(
            "before-call", lambda model, **_: counts.update([f"{model.service_model.service_name}:{model.name}"])
        )
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def run_counting_calls() -> None:
    """``python -m benchmarks._measure FILE MODULE [ARGS...]``: ``python -m MODULE ARGS...`` with every AWS call
    it makes counted; SIGUSR1 writes the counts so far to FILE (JSON), so a benchmark can read them at the
    moment its workload is done, before the process idles on empty receives."""
    counts: collections.Counter[str] = collections.Counter()
    count_calls(counts)
    path, module = sys.argv[1], sys.argv[2]

    def dump(*_: Any) -> None:
        Path(path).write_text(json.dumps(dict(counts)))

    signal.signal(signal.SIGUSR1, dump)
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    run_counting_calls()
