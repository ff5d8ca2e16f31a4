"""SIGTERM during a sweeper pass (ECS stopping the scheduled task): the pass ends at the next trigger
boundary, prints what it did, and ``python -m runtime sweep`` exits 130 within seconds instead of being
killed at the stop timeout (as PID 1 without a handler it used to ignore SIGTERM).

The pass is made slow with 100 stuck triggers against the emulator (each one re-driven: a read, an SQS
send, a tag write; about 0.1 s each), so the signal lands in the middle of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from devtools import sandbox as sb
from devtools.emulator import LocalAws, local_aws
from runtime.archive.store import ArchiveStore
from runtime.archive.submit import submit_change
from runtime.archive.triggers import TriggerStore
from runtime.contract.exit_codes import EXIT_INTERRUPTED

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
TRIGGERS = 100
PROMPT_EXIT_SECONDS = 5.0


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    with local_aws() as server:
        yield server


def backdate_triggers(box: sb.Sandbox, minutes: int) -> None:
    """Age every trigger past the stuck threshold (the emulator runs in this process)."""
    from moto.s3.models import s3_backends

    bucket = s3_backends[sb.PLATFORM_ACCOUNT]["aws"].buckets[box.bucket]
    for key in list(bucket.keys.keys()):
        if key.startswith("customers/"):
            for version in bucket.keys.getlist(key):
                version.last_modified = version.last_modified - timedelta(minutes=minutes)


def test_sigterm_ends_the_pass_at_a_trigger_boundary_and_exits_130(
    aws: LocalAws, tmp_path: Path, say: Callable[[str], None]
) -> None:
    box = sb.create_sandbox([sb.CustomerSpec("acme", "770000000012", ())], notifications=False)
    s3 = boto3.client("s3", region_name=box.region)
    for i in range(TRIGGERS):
        document = {"change_id": f"CHG-{i:04d}", "title": "slow pass", "customers": ["acme"]}
        submit_change(ArchiveStore(s3, box.bucket), TriggerStore(s3, box.bucket), document, user_id="faults")
    backdate_triggers(box, minutes=20)
    env = {
        **os.environ,
        **aws.env(),
        "PYTHONPATH": str(ROOT),
        "AWS_DEFAULT_REGION": box.region,
        "TTP_BUCKET_NAME": box.bucket,
        "TTP_CUSTOMER_QUEUES": json.dumps({code: r.queue_url for code, r in box.customers.items()}),
    }
    stderr_path = tmp_path / "sweep.stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runtime", "sweep", "--json"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while '"redriven"' not in stderr_path.read_text():  # the pass is under way
                assert proc.poll() is None and time.monotonic() < deadline, stderr_path.read_text()[-2000:]
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            stdout, _ = proc.communicate(timeout=30)
            exited_after = time.monotonic() - signalled
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    say(f"sweeper: exit {proc.returncode} {exited_after:.2f}s after SIGTERM")
    assert proc.returncode == EXIT_INTERRUPTED, stderr_path.read_text()[-2000:]
    assert exited_after < PROMPT_EXIT_SECONDS
    report = json.loads(stdout)  # the report is still printed, as one JSON document
    assert report["interrupted"] is True
    redriven = [a for a in report["actions"] if a["action"] == "redriven"]
    assert 1 <= len(redriven) < TRIGGERS  # stopped part-way, and what it did is reported
    assert "stop requested" in stderr_path.read_text()
    sqs = boto3.client("sqs", region_name=box.region)
    attributes = sqs.get_queue_attributes(
        QueueUrl=box.customers["acme"].queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) == len(redriven)  # no re-drive unreported
