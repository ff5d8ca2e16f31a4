"""Processing benchmarks against the local emulator. Prints its figures (see benchmarks/README.md).

The emulator (moto's server, conditional writes made atomic) runs in its own process so it does not
share a GIL with the load. Sections:

1. api-calls   AWS API calls per processed trigger, by operation (botocore ``before-call`` events on
               every client the processor creates), against the minimum the state machine needs.
2. throughput  triggers/s for one worker, and for one worker per customer, against a floor measured in
               the same run: a bare loop issuing the same API calls, with the same concurrency, no logic.
3. latency     trigger written -> trigger deleted, p50 / p99, with triggers arriving below capacity
               (from the worker's own ``TriggerAge`` metric, measured at the delete).
4. memory      the worker's peak RSS (VmHWM) after the runs above, against the task's 512 MiB.
5. send-rate   emails/s achieved for one change with many recipients against TTP_SEND_RATE_PER_SECOND.

    python benchmarks/processing_bench.py [--triggers 150] [--sections api-calls,throughput,...]
    python benchmarks/processing_bench.py --smallest  # every section, 3 triggers, 10 recipients in send-rate:
                                                      # what tests/test_benchmarks.py runs
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._compare import worker_against_floor  # noqa: E402
from benchmarks._floor import floor_child  # noqa: E402
from benchmarks._measure import unsubscribe_coordinator  # noqa: E402
from benchmarks._worker_process import (  # noqa: E402
    CONCURRENCY,
    WorkerProcess,
    spec,
    submit_many,
    wait_until_drained,
)
from devtools import sandbox as sb  # noqa: E402
from devtools.emulator import emulator_process as emulator  # noqa: E402
from devtools.emulator import reset  # noqa: E402
from runtime.archive.store import ArchiveStore  # noqa: E402
from runtime.archive.submit import submit_change  # noqa: E402
from runtime.archive.triggers import TriggerInfo, TriggerStore  # noqa: E402
from runtime.contract.keys import TriggerRef, parse_trigger_key  # noqa: E402
from runtime.contract.settings import SenderSettings, load  # noqa: E402
from runtime.telemetry.metrics import MetricsFactory  # noqa: E402

TASK_MEMORY_MIB = 512


@contextmanager
def instrumented_processor(box: sb.Sandbox, register: Callable[[Any], None]) -> Iterator[Any]:
    """The customer ``bench``'s processor, built in this process from its worker's environment, with
    ``register`` called on every botocore client it creates (to hook its calls' events); the environment
    and botocore are restored on exit."""
    original = botocore.session.Session.create_client

    def create_client(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        client = original(self, *args, **kwargs)
        register(client)
        return client

    saved = dict(os.environ)
    os.environ.update(box.worker_env("bench"))
    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        from runtime.pipeline.composition import build_processor

        processor = build_processor(load(SenderSettings))
        processor.metrics = MetricsFactory("bench", io.StringIO())  # keep the EMF lines off the report
        yield processor
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]
        os.environ.clear()
        os.environ.update(saved)


# ---- 1 ----------------------------------------------------------------------------------------


def api_calls(endpoint: str, triggers: int, recipients: int) -> None:
    reset(endpoint)
    counts: collections.Counter[str] = collections.Counter()

    def count(client: Any) -> None:
        client.meta.events.register(
            "before-call", lambda model, **_: counts.update([f"{model.service_model.service_name}:{model.name}"])
        )

    box = sb.create_sandbox([spec("bench", "777777777777", recipients)], notifications=False)
    submit_many(box, ["bench"], triggers, "A")
    # what each trigger's S3 event tells the worker (ETag, time): the processor then makes no HEAD
    listed = boto3.client("s3").list_objects_v2(Bucket=box.bucket, Prefix="customers/bench/")["Contents"]
    events = {
        item["Key"]: TriggerInfo(parse_trigger_key(item["Key"], encoded=False), item["ETag"], item["LastModified"])
        for item in listed
    }
    with instrumented_processor(box, count) as processor:
        for n in range(triggers):
            ref = TriggerRef("bench", f"A-{n}")
            assert processor.process(ref, f"bench:{n}", trigger=events[ref.key]).outcome.label == "processed"
    total = sum(counts.values())
    trips, critical = round_trips(box, recipients)
    # each send is preceded by the superseded check (a conditional GET, the first send's too: a newer
    # revision may claim right after ours); the trigger's ETag comes from its event (no HEAD)
    minimum = 4 + 2 * recipients
    checkpoints = counts["s3:PutObject"] / triggers - 2  # every PUT but the claim and the record
    print(f"\n== 1. AWS API calls per processed trigger ({triggers} triggers, {recipients} recipients) ==")
    for name, value in sorted(counts.items()):
        print(f"  {name:<28} {value / triggers:6.2f}")
    print(f"  {'total (processor)':<28} {total / triggers:6.2f}")
    print(f"  minimum the state machine needs: {minimum} = GET archive, PUT claim (a create: no GET),")
    print(
        f"    {recipients} x (GET IfNoneMatch + SendEmail), PUT record, DELETE trigger; on top of it: "
        f"{checkpoints:.2f} checkpoint PUT(s)"
    )
    print("    (the sender never runs more than 2 emails ahead of a durable checkpoint), GetContactList +")
    print("    ListContacts once per TTP_CONTACT_CACHE_SECONDS; the worker adds DeleteMessage and 1/batch")
    print("    ReceiveMessage (not counted here)")
    print(f"  round trips on one trigger's critical path: {trips} (calls that overlap in time count once)")
    print(f"    {' -> '.join(critical)}")


def round_trips(box: sb.Sandbox, recipients: int) -> tuple[int, list[str]]:
    """Process one more trigger alone and count the sequential round trips it took.

    Every AWS call is an interval (before-call .. after-call); calls whose intervals overlap (run
    concurrently) form one round trip.
    """
    intervals: list[tuple[float, float, str]] = []
    local = threading.local()

    def before(model: Any, **_: Any) -> None:
        local.__dict__.setdefault("stack", []).append((time.perf_counter(), model.name))

    def after(model: Any, **_: Any) -> None:
        started, name = local.stack.pop()
        intervals.append((started, time.perf_counter(), name))

    def time_calls(client: Any) -> None:
        client.meta.events.register("before-call", before)
        client.meta.events.register("after-call", after)

    submit_many(box, ["bench"], 1, "RT")
    with instrumented_processor(box, time_calls) as processor:
        intervals.clear()  # building the processor made no call worth counting; start from the trigger
        assert processor.process(TriggerRef("bench", "RT-0"), "bench:rt").outcome.label == "processed"
    groups: list[list[str]] = []
    end = float("-inf")
    for started, finished, name in sorted(intervals):
        if started < end:
            groups[-1].append(name)
        else:
            groups.append([name])
        end = max(end, finished) if started < end else finished
    return len(groups), ["+".join(g) if len(g) > 1 else g[0] for g in groups]


# ---- 2 ----------------------------------------------------------------------------------------


def throughput(endpoint: str, triggers: int, recipients: int, pairs: int) -> WorkerProcess:
    """Triggers/s of the bare loop and of one worker on the same workload, with the CPU each trigger
    costs the client and the emulator, in ``pairs`` interleaved pairs (benchmarks/_compare.py). Both start
    on a queue that already holds every trigger and are timed from their first receive (the worker: its
    "worker started" line) to the last trigger handled, so neither pays its interpreter's start-up. No
    coordinator runs: its queue is unsubscribed."""
    print(f"\n== 2. throughput: {triggers} triggers per customer, {recipients} recipients, {CONCURRENCY} threads ==")
    print(f"  the bare loop (the same calls, no logic) and one worker, {pairs} interleaved pairs:")
    worker: WorkerProcess = worker_against_floor(sys.modules[__name__], endpoint, triggers, recipients, pairs)
    per_customer_run(endpoint, triggers, recipients)
    return worker


def throughput_sandbox(endpoint: str, specs: list[sb.CustomerSpec], triggers: int, prefix: str) -> sb.Sandbox:
    """A fresh emulator holding the customers of ``specs``, no coordinator subscribed, ``triggers`` changes queued."""
    reset(endpoint)
    box = sb.create_sandbox(specs, visibility_timeout=60)
    unsubscribe_coordinator(box)
    submit_many(box, [s.code for s in specs], triggers, prefix)
    return box


def per_customer_run(endpoint: str, triggers: int, recipients: int) -> None:
    codes = ["c1", "c2", "c3"]
    specs = [spec(c, f"77777777777{i}", recipients) for i, c in enumerate(codes)]
    box = throughput_sandbox(endpoint, specs, triggers, "M")
    started = time.monotonic()
    workers = [WorkerProcess(box, c, endpoint) for c in codes]
    wait_until_drained(box)
    elapsed = time.monotonic() - started
    print(
        f"  one worker per customer (x3):   {3 * triggers / elapsed:7.1f} triggers/s in total "
        f"(the emulator is one process on a 2-core machine; includes the interpreters' start-up)"
    )
    for w in workers:
        w.stop()


# ---- 3 ----------------------------------------------------------------------------------------


def latency(endpoint: str, triggers: int, recipients: int, rate: float) -> None:
    reset(endpoint)
    box = sb.create_sandbox([spec("lat", "777777777777", recipients)], visibility_timeout=60)
    worker = WorkerProcess(box, "lat", endpoint, TTP_LOG_LEVEL="INFO")  # its "message handled" lines time the end
    time.sleep(2)  # the interpreter starts
    s3 = boto3.client("s3")
    archive, trigger_store = ArchiveStore(s3, box.bucket), TriggerStore(s3, box.bucket)
    submitted: dict[str, float] = {}
    for n in range(triggers):
        started = time.monotonic()
        change_id = f"L-{n}"
        submit_change(archive, trigger_store, {"change_id": change_id, "title": "t", "customers": ["lat"]}, user_id="b")
        submitted[change_id] = time.time()  # the trigger PUT has returned
        time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
    wait_until_drained(box)
    worker.stop()
    handled = worker.handled_at()
    measured = sorted(handled[c] - submitted[c] for c in submitted if c in handled)
    p50, p99 = statistics.median(measured), measured[min(len(measured) - 1, int(len(measured) * 0.99))]
    ages = sorted(worker.metric("TriggerAge"))
    print(
        f"\n== 3. end-to-end latency, trigger PUT returned -> trigger DELETE returned ({len(measured)} at {rate}/s) =="
    )
    print(
        f"  p50 {p50 * 1000:.0f} ms   p99 {p99 * 1000:.0f} ms   max {measured[-1] * 1000:.0f} ms  (millisecond clocks)"
    )
    print(
        f"  for comparison, TriggerAge (S3 Last-Modified, 1 s resolution): p50 {statistics.median(ages) * 1000:.0f} ms"
    )


# ---- 5 ----------------------------------------------------------------------------------------


def send_rate(endpoint: str, recipients: int, limit: float) -> None:
    reset(endpoint)
    box = sb.create_sandbox([spec("rate", "777777777777", recipients)], visibility_timeout=300)
    worker = WorkerProcess(box, "rate", endpoint, TTP_SEND_RATE_PER_SECOND=str(limit))
    submit_many(box, ["rate"], 1, "R")
    wait_until_drained(box)
    worker.stop()
    sent, duration = sum(worker.metric("EmailsSent")), sum(worker.metric("ProcessingDuration"))
    throttled = sum(1 for line in worker.log.read_text().splitlines() if "TooManyRequests" in line)
    print(f"\n== 5. email send rate, one change to {recipients} recipients, limit {limit}/s ==")
    print(
        f"  {sent:.0f} emails in {duration:.2f} s (whole trigger) -> {sent / duration:.1f}/s = "
        f"{100 * sent / duration / limit:.0f} % of the limit; throttling responses: {throttled}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triggers", type=int, default=150)
    parser.add_argument("--recipients", type=int, default=2)
    parser.add_argument("--sections", default="api-calls,throughput,latency,memory,send-rate")
    parser.add_argument("--send-rate-recipients", type=int, default=150, help="recipients of the send-rate change")
    parser.add_argument("--pairs", type=int, default=3, help="interleaved floor/worker pairs in throughput")
    parser.add_argument(
        "--smallest",
        action="store_true",
        help="every section at its smallest size: 3 triggers, 10 send-rate recipients (the test suite's run)",
    )
    parser.add_argument("--floor-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smallest:
        args.triggers, args.send_rate_recipients, args.pairs = 3, 10, 1
    if args.floor_child:
        floor_child(*json.loads(args.floor_child))
        return
    sections = set(args.sections.split(","))
    with emulator() as endpoint:
        print(f"emulator {endpoint} (separate process); machine: {os.cpu_count()} cores")
        if "api-calls" in sections:
            api_calls(endpoint, min(args.triggers, 50), args.recipients)
        worker = None
        if "throughput" in sections or "memory" in sections:
            worker = throughput(endpoint, args.triggers, args.recipients, args.pairs)
        if "memory" in sections and worker is not None:
            peak = worker.peak_rss_mib()
            worker.stop()
            print(f"\n== 4. worker peak memory (VmHWM after {args.triggers} triggers) ==")
            print(f"  {peak:.0f} MiB of the {TASK_MEMORY_MIB} MiB task ({100 * peak / TASK_MEMORY_MIB:.0f} %)")
        elif worker is not None:
            worker.stop()
        if "latency" in sections:
            latency(endpoint, min(args.triggers, 100), args.recipients, rate=5.0)
        if "send-rate" in sections:
            send_rate(endpoint, args.send_rate_recipients, 25.0)


if __name__ == "__main__":
    main()
