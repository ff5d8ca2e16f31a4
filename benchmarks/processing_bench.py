"""Processing benchmark against the local emulator (moto server on loopback). Prints its figures.

1. AWS API calls per processed trigger, by operation, counted with botocore's ``before-call`` event
   on every client the processor creates (S3, SQS, STS, the customer's SES), next to the minimum the
   state machine needs.
2. Triggers per second for one worker process (a real subprocess, ``python -m runtime worker``):
   N triggers are written first, then the worker drains them; the clock runs from the worker's
   "worker started" log line to the last trigger deleted.

    python benchmarks/processing_bench.py [--triggers 200] [--recipients 2] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import botocore.session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools import sandbox as sb  # noqa: E402
from devtools.emulator import local_aws  # noqa: E402
from runtime.archive_store import ArchiveStore  # noqa: E402
from runtime.keys import TriggerRef  # noqa: E402
from runtime.settings import SenderSettings, load  # noqa: E402
from runtime.submit import submit_change  # noqa: E402
from runtime.triggers import TriggerStore  # noqa: E402

# The state machine's minimum for one trigger with R recipients, no meeting, no contention:
# HEAD trigger, GET archive, PUT archive (claim), SES GetContactList + ListContacts, R x SendEmail,
# PUT archive (record), DELETE trigger, SQS DeleteMessage (+ ReceiveMessage, amortised over a batch).
MINIMUM_FIXED = 8


def count_calls() -> collections.Counter[str]:
    """Count every API call made by any botocore client in this process."""
    counts: collections.Counter[str] = collections.Counter()
    original = botocore.session.Session.create_client

    def create_client(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        client = original(self, *args, **kwargs)
        client.meta.events.register(
            "before-call", lambda model, **_: counts.update([f"{model.service_model.service_name}:{model.name}"])
        )
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    return counts


def customer(recipients: int) -> sb.CustomerSpec:
    return sb.CustomerSpec(
        "bench", "777777777777", tuple(sb.Contact(f"r{i}@bench.example.com") for i in range(recipients))
    )


def api_calls_per_trigger(triggers: int, recipients: int) -> None:
    counts = count_calls()
    with local_aws():
        box = sb.create_sandbox([customer(recipients)], notifications=False)
        s3 = boto3.client("s3")
        for n in range(triggers):
            submit_change(
                ArchiveStore(s3, box.bucket),
                TriggerStore(s3, box.bucket),
                {"change_id": f"B-{n}", "title": "bench", "customers": ["bench"]},
                user_id="bench",
            )
        os.environ.update(box.worker_env("bench"))
        from runtime.wiring import build_processor

        processor = build_processor(load(SenderSettings))
        counts.clear()
        for n in range(triggers):
            assert processor.process(TriggerRef("bench", f"B-{n}"), f"bench:{n}").outcome.label == "processed"
        total = sum(counts.values())
        print(f"\n== AWS API calls per processed trigger ({triggers} triggers, {recipients} recipients each) ==")
        for name, value in sorted(counts.items()):
            print(f"  {name:<28} {value / triggers:6.2f}")
        print(f"  {'total':<28} {total / triggers:6.2f}   (processor only; the worker adds SQS Receive/Delete)")
        minimum = MINIMUM_FIXED - 1 + recipients  # minus the SQS delete, counted by the worker
        print(
            f"  minimum the state machine needs: {minimum} (HEAD, GET, PUT claim, 2 SES list calls, "
            f"{recipients} SendEmail, PUT record, DELETE)"
        )


def worker_throughput(triggers: int, recipients: int, concurrency: int) -> None:
    with local_aws() as aws:
        box = sb.create_sandbox([customer(recipients)], visibility_timeout=60)
        s3 = boto3.client("s3")
        for n in range(triggers):
            submit_change(
                ArchiveStore(s3, box.bucket),
                TriggerStore(s3, box.bucket),
                {"change_id": f"T-{n}", "title": "bench", "customers": ["bench"]},
                user_id="bench",
            )
        log = Path(tempfile.mkstemp(prefix="bench-worker-", suffix=".log")[1])
        env = {
            **os.environ,
            **aws.env(),
            "PYTHONPATH": str(ROOT),
            "TTP_LOG_LEVEL": "WARNING",
            **box.worker_env(
                "bench",
                TTP_RECEIVE_WAIT_SECONDS="1",
                TTP_MAX_CONCURRENCY=str(concurrency),
                TTP_SEND_RATE_PER_SECOND="500",
            ),
        }
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runtime", "worker"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
            started = time.monotonic()
            while s3.list_objects_v2(Bucket=box.bucket, Prefix="customers/").get("KeyCount", 0) > 0:
                if time.monotonic() - started > 600:
                    raise SystemExit("worker did not drain in 10 minutes")
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        print(f"\n== one worker (max_concurrency={concurrency}) against the emulator ==")
        print(
            f"  {triggers} triggers drained in {elapsed:.2f} s (incl. ~1 s interpreter start) "
            f"-> {triggers / elapsed:.1f} triggers/s, {triggers * recipients / elapsed:.1f} emails/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triggers", type=int, default=200)
    parser.add_argument("--recipients", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    api_calls_per_trigger(min(args.triggers, 50), args.recipients)
    worker_throughput(args.triggers, args.recipients, args.concurrency)
    print(json.dumps({"note": "figures from the local emulator: relative, not AWS latencies"}))


if __name__ == "__main__":
    main()
