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
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import botocore.session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._compare import worker_against_floor  # noqa: E402
from benchmarks._measure import count_calls, unsubscribe_coordinator  # noqa: E402
from devtools import sandbox as sb  # noqa: E402
from devtools.emulator import FAKE_CREDENTIALS, reset  # noqa: E402
from devtools.emulator import emulator_process as emulator  # noqa: E402
from runtime.archive.store import ArchiveStore  # noqa: E402
from runtime.archive.submit import submit_change  # noqa: E402
from runtime.archive.triggers import TriggerInfo, TriggerStore  # noqa: E402
from runtime.contract.keys import TriggerRef, parse_trigger_key  # noqa: E402
from runtime.contract.settings import SenderSettings, load  # noqa: E402
from runtime.telemetry.metrics import MetricsFactory  # noqa: E402

CONCURRENCY = 4
TASK_MEMORY_MIB = 512


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

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text().splitlines():
            try:
                blob = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(blob, dict):
                found.append(blob)
        return found

    def wait_for_start(self, limit: float = 120) -> float:
        """Epoch seconds of the worker's "worker started" line (INFO), once it is written."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for blob in self.lines():
                if blob.get("message") == "worker started":
                    return datetime.strptime(blob["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z").timestamp()
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
        values: list[float] = []
        for line in self.log.read_text().splitlines():
            try:
                blob = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(blob, dict) and "_aws" in blob:
                values.extend(blob.get(name, []))
        return values

    def handled_at(self) -> dict[str, float]:
        """change id -> epoch seconds (ms resolution) of the worker's "message handled" line.

        The worker logs it after the trigger DELETE returned, so it closes the end-to-end interval
        with the millisecond clock of this same machine (``TriggerAge`` is rounded to S3's 1 s
        ``Last-Modified`` resolution and cannot measure sub-second latency).
        """
        found: dict[str, float] = {}
        for line in self.log.read_text().splitlines():
            try:
                blob = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(blob, dict) and blob.get("message") == "message handled" and blob.get("change_id"):
                stamp = datetime.strptime(blob["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z")
                found.setdefault(blob["change_id"], stamp.timestamp())
        return found


def wait_until_drained(box: sb.Sandbox, limit: float = 600) -> float:
    started = time.monotonic()
    while triggers_left(box) > 0:
        if time.monotonic() - started > limit:
            raise SystemExit(f"not drained in {limit} s")
        time.sleep(0.05)
    return time.monotonic() - started


# ---- 1 ----------------------------------------------------------------------------------------


def api_calls(endpoint: str, triggers: int, recipients: int) -> None:
    reset(endpoint)
    counts: collections.Counter[str] = collections.Counter()
    original = botocore.session.Session.create_client

    def create_client(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        client = original(self, *args, **kwargs)
        client.meta.events.register(
            "before-call", lambda model, **_: counts.update([f"{model.service_model.service_name}:{model.name}"])
        )
        return client

    box = sb.create_sandbox([spec("bench", "777777777777", recipients)], notifications=False)
    submit_many(box, ["bench"], triggers, "A")
    # what each trigger's S3 event tells the worker (ETag, time): the processor then makes no HEAD
    listed = boto3.client("s3").list_objects_v2(Bucket=box.bucket, Prefix="customers/bench/")["Contents"]
    events = {
        item["Key"]: TriggerInfo(parse_trigger_key(item["Key"], encoded=False), item["ETag"], item["LastModified"])
        for item in listed
    }
    saved = dict(os.environ)
    os.environ.update(box.worker_env("bench"))
    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        from runtime.pipeline.composition import build_processor

        processor = build_processor(load(SenderSettings))
        processor.metrics = MetricsFactory("bench", io.StringIO())  # keep the EMF lines off the report
        for n in range(triggers):
            ref = TriggerRef("bench", f"A-{n}")
            assert processor.process(ref, f"bench:{n}", trigger=events[ref.key]).outcome.label == "processed"
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]
        os.environ.clear()
        os.environ.update(saved)
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
    original = botocore.session.Session.create_client

    def before(model: Any, **_: Any) -> None:
        local.__dict__.setdefault("stack", []).append((time.perf_counter(), model.name))

    def after(model: Any, **_: Any) -> None:
        started, name = local.stack.pop()
        intervals.append((started, time.perf_counter(), name))

    def create_client(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call", before)
        client.meta.events.register("after-call", after)
        return client

    submit_many(box, ["bench"], 1, "RT")
    saved = dict(os.environ)
    os.environ.update(box.worker_env("bench"))
    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        from runtime.pipeline.composition import build_processor

        processor = build_processor(load(SenderSettings))
        processor.metrics = MetricsFactory("bench", io.StringIO())
        intervals.clear()  # building the processor made no call worth counting; start from the trigger
        assert processor.process(TriggerRef("bench", "RT-0"), "bench:rt").outcome.label == "processed"
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]
        os.environ.clear()
        os.environ.update(saved)
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


def floor_child(bucket: str, queue_url: str, count: int, code: str, sender: str, role: str, external_id: str) -> None:
    """The worker's calls, with the same parameters and no logic: the emulator's ceiling for this workload.

    Per trigger, as ``api-calls`` traces the processor: GET archive, PUT the processing object
    (``IfNoneMatch``), per recipient a GET ``IfNoneMatch`` of it (a 304) and a SendEmail
    with the list-management options, tags and configuration set, PUT it again (``IfMatch``), DELETE the
    trigger (``IfMatch`` the ETag its event carries: no HEAD); the contact list is read once per
    ``TTP_CONTACT_CACHE_SECONDS``, and every message is deleted from the queue."""
    from runtime.contract.names import configuration_set_name
    from runtime.contract.settings import SenderSettings as Sender

    calls: collections.Counter[str] = collections.Counter()
    count_calls(calls)  # every call from here on, its AssumeRole included, as the worker's are counted
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    ses_clients: list[Any] = []
    ses_lock = threading.Lock()

    def ses() -> Any:
        # as the worker's CustomerSes: the role assumed and the client built on first use, inside the timed run
        with ses_lock:
            if not ses_clients:
                assumed = boto3.client("sts").assume_role(RoleArn=role, RoleSessionName="floor", ExternalId=external_id)
                creds = assumed["Credentials"]
                ses_clients.append(
                    boto3.client(
                        "sesv2",
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"],
                    )
                )
            return ses_clients[0]

    cache_seconds = Sender.model_fields["contact_cache_seconds"].default
    contacts: list[tuple[float, list[str]]] = []
    contacts_lock = threading.Lock()

    def subscribers() -> list[str]:
        # as the worker's notifier (runtime.notify.ses) caches them: one thread lists them while the cache is
        # cold, the others wait for its answer (one listing per cache period, as the worker makes)
        with contacts_lock:
            cached = contacts[0] if contacts else None
            if cached is not None and time.monotonic() - cached[0] < cache_seconds:
                return cached[1]
            return listed_now()

    def listed_now() -> list[str]:
        read_at = time.monotonic()
        ses().get_contact_list(ContactListName=sb.DEFAULT_CONTACT_LIST_NAME)
        listed = ses().list_contacts(
            ContactListName=sb.DEFAULT_CONTACT_LIST_NAME,
            Filter={
                "FilteredStatus": "OPT_IN",
                "TopicFilter": {"TopicName": sb.DEFAULT_TOPIC, "UseDefaultIfPreferenceUnavailable": True},
            },
            PageSize=1000,
        )["Contacts"]
        addresses = [c["EmailAddress"] for c in listed]
        contacts[:] = [(read_at, addresses)]
        return addresses

    def one(pair: tuple[int, str], trigger_etag: str) -> None:
        n, receipt = pair
        trigger, archive = f"customers/{code}/F-{n}.json", f"archive/F-{n}.json"
        processing = f"processing/{code}/F-{n}.json"
        body = s3.get_object(Bucket=bucket, Key=archive)["Body"].read()
        etag = s3.put_object(Bucket=bucket, Key=processing, Body=body, IfNoneMatch="*")["ETag"]
        for address in subscribers():
            try:
                s3.get_object(Bucket=bucket, Key=processing, IfNoneMatch=etag)
            except botocore.exceptions.ClientError as exc:
                if exc.response["ResponseMetadata"]["HTTPStatusCode"] != 304:
                    raise
            ses().send_email(
                FromEmailAddress=sender,
                Destination={"ToAddresses": [address]},
                Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}, "Html": {"Data": "h"}}}},
                ListManagementOptions={"ContactListName": sb.DEFAULT_CONTACT_LIST_NAME, "TopicName": sb.DEFAULT_TOPIC},
                EmailTags=[{"Name": "ttp-change-id", "Value": f"F-{n}"}, {"Name": "ttp-customer-code", "Value": code}],
                ConfigurationSetName=configuration_set_name(code),
            )
        s3.put_object(Bucket=bucket, Key=processing, Body=body, IfMatch=etag)
        s3.delete_object(Bucket=bucket, Key=trigger, IfMatch=f'"{trigger_etag}"')
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)

    # received as the worker receives: as many messages as it has free slots (threads), each one
    # handled and deleted in a thread of its own, the slot freed when it is done
    slots = threading.BoundedSemaphore(CONCURRENCY)
    numbers = iter(range(count))
    done = threading.Semaphore(0)
    handled: list[int] = []
    last: dict[str, Any] = {}  # when the last trigger was handled, as the worker's run ends at its last one

    def handle(message: dict[str, Any]) -> None:
        try:
            if "Records" in message["Body"]:
                record = json.loads(message["Body"])["Records"][0]
                one((next(numbers), message["ReceiptHandle"]), record["s3"]["object"]["eTag"])
                with ses_lock:
                    handled.append(1)
                    if len(handled) == count:  # not the idle receives after it: the worker's are not counted
                        last.update(at=time.monotonic(), cpu=time.process_time(), calls=dict(calls))
                done.release()
            else:  # S3's test event
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        finally:
            slots.release()

    started = time.monotonic()
    cpu = time.process_time()
    finished = 0
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        while finished < count:
            if not slots.acquire(timeout=1.0):
                continue
            free = 1
            while free < CONCURRENCY and slots.acquire(blocking=False):
                free += 1
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=free,
                WaitTimeSeconds=1,
                VisibilityTimeout=60,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
            for _ in range(free - len(messages)):
                slots.release()
            for message in messages:
                pool.submit(handle, message)
            while done.acquire(blocking=False):
                finished += 1
    print(json.dumps({"elapsed": last["at"] - started, "cpu": last["cpu"] - cpu, "calls": last["calls"]}))


def throughput(endpoint: str, triggers: int, recipients: int, pairs: int) -> WorkerProcess:
    """Triggers/s of the bare loop and of one worker on the same workload, with the CPU each trigger
    costs the client and the emulator, in ``pairs`` interleaved pairs (benchmarks/_compare.py). Both start
    on a queue that already holds every trigger and are timed from their first receive (the worker: its
    "worker started" line) to the last trigger handled, so neither pays its interpreter's start-up. No
    coordinator runs: its queue is unsubscribed."""
    print(f"\n== 2. throughput: {triggers} triggers per customer, {recipients} recipients, {CONCURRENCY} threads ==")
    print(f"  the bare loop (the same calls, no logic) and one worker, {pairs} interleaved pairs:")
    last_worker: WorkerProcess = worker_against_floor(sys.modules[__name__], endpoint, triggers, recipients, pairs)

    reset(endpoint)
    codes = ["c1", "c2", "c3"]
    box = sb.create_sandbox(
        [spec(c, f"77777777777{i}", recipients) for i, c in enumerate(codes)], visibility_timeout=60
    )
    unsubscribe_coordinator(box)
    submit_many(box, codes, triggers, "M")
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
    return last_worker


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
