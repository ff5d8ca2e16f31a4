"""Helpers the benchmarks share (not a benchmark: tests/test_benchmarks.py skips ``_*.py``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3

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
