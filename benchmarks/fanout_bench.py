"""Fan-out benchmark: one change submitted for N customers, every customer's processor at once.

This is the platform team's normal case (a change for every customer). It measures what the design
costs per customer as N grows, against the local emulator (moto's server in its own process, with
atomic conditional writes):

* S3 requests (HTTP requests, retries included) per customer, processors and coordinator together;
* 412 conflicts (compare-and-swap writes that lost), archive writes, bytes read;
* wall time from "all processors start" to "every result is in the archive's audit trail".

With one writer per object (DESIGN.md v2) each processor writes only its own processing object and
the coordinator folds many customers' results per archive write, so requests per customer stay flat
and wall time grows linearly in N. Processors run as threads of this process (one boto3 session
each, built before the clock starts); the coordinator, when the runtime has one, runs after them.

    python benchmarks/fanout_bench.py [--customers 10,50,100,200] [--recipients 2]
    python benchmarks/fanout_bench.py --smallest    # N=10 only: what tests/test_benchmarks.py runs
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TTP_LOG_LEVEL", "WARNING")  # read when runtime.telemetry.log is imported: the report only

from devtools import sandbox as sb  # noqa: E402
from devtools.emulator import emulator_process as emulator  # noqa: E402
from devtools.emulator import reset  # noqa: E402
from runtime.archive.store import ArchiveStore  # noqa: E402
from runtime.archive.submit import submit_change  # noqa: E402
from runtime.archive.triggers import TriggerStore  # noqa: E402
from runtime.contract import keys  # noqa: E402
from runtime.contract.names import ENV_PREFIX  # noqa: E402
from runtime.contract.settings import SenderSettings, SettingsT, load  # noqa: E402
from runtime.telemetry.metrics import MetricsFactory  # noqa: E402

CHANGE_ID = "CHG-FANOUT"


@dataclass
class S3Counter:
    """HTTP requests to S3 (every attempt), 412 answers, archive writes and bytes read, from botocore events."""

    requests: int = 0
    conflicts: int = 0
    archive_writes: int = 0
    bytes_read: int = 0
    by_operation: collections.Counter[str] = field(default_factory=collections.Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.requests = self.conflicts = self.archive_writes = self.bytes_read = 0
            self.by_operation.clear()

    def attach(self, client: Any) -> Any:
        events = client.meta.events
        events.register("before-send.s3", self._on_send)
        events.register("after-call.s3", self._on_call)
        return client

    def _on_send(self, request: Any, **_: Any) -> None:
        with self._lock:
            self.requests += 1

    def _on_call(self, http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any) -> None:
        status = getattr(http_response, "status_code", 0)
        with self._lock:
            self.by_operation[model.name] += 1
            if status == 412:
                self.conflicts += 1
            if model.name == "GetObject" and status == 200:
                self.bytes_read += int(parsed.get("ContentLength") or 0)
            params = kwargs.get("context", {}).get("ttp_params") or {}
            if model.name == "PutObject" and str(params.get("Key", "")).startswith(keys.ARCHIVE_PREFIX):
                self.archive_writes += 1


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["ttp_params"] = {"Key": params.get("Key")}


def counted_session(counter: S3Counter) -> boto3.session.Session:
    session = boto3.session.Session()
    original = session.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        made = original(service, *args, **kwargs)  # type: ignore[call-overload]
        if service == "s3":
            made.meta.events.register("before-parameter-build.s3", _remember_params)
            counter.attach(made)
        return made

    session.client = client  # type: ignore[method-assign]
    return session


def settings_from(model: type[SettingsT], env: dict[str, str]) -> SettingsT:
    """``model`` read from ``env`` alone, as the service reads its task environment (``load``).

    The environment's values are what the stacks deploy: JSON-valued ones such as
    ``TTP_CUSTOMER_ACCOUNTS`` are decoded only by the environment source, so passing them as keyword
    arguments (as this script once did) fails. Called before any thread starts: the patch is global.
    """
    others = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
    with mock.patch.dict(os.environ, {**others, **env}, clear=True):
        return load(model)


def build_processors(box: sb.Sandbox, codes: list[str], counter: S3Counter) -> dict[str, Any]:
    from runtime.pipeline.composition import build_processor

    processors = {}
    for code in codes:
        env = box.worker_env(code, TTP_SEND_RATE_PER_SECOND="500", TTP_LOG_LEVEL="WARNING")
        processor = build_processor(settings_from(SenderSettings, env), counted_session(counter), pool=4)
        processor.metrics = MetricsFactory("bench", io.StringIO())  # keep the EMF lines off the report
        processors[code] = processor
    return processors


class CoordinatorThread:
    """The runtime's change coordinator consuming its queue in this process (S3 events route to it)."""

    def __init__(self, box: sb.Sandbox, counter: S3Counter) -> None:
        from runtime.contract.settings import CoordinatorSettings
        from runtime.coordinator.composition import build_coordinator

        env = box.coordinator_env(TTP_RECEIVE_WAIT_SECONDS="1", TTP_LOG_LEVEL="WARNING")  # default concurrency
        self.worker = build_coordinator(settings_from(CoordinatorSettings, env), counted_session(counter))
        quiet = MetricsFactory("bench", io.StringIO())  # keep the EMF lines off the report
        self.worker.handler.metrics = quiet  # type: ignore[attr-defined]
        self.worker.handler.batcher.folder.metrics = quiet  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.worker.run, name="coordinator", daemon=True)

    def __enter__(self) -> CoordinatorThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.request_stop()
        self._thread.join(60)


def has_coordinator() -> bool:
    try:
        import runtime.coordinator.composition  # noqa: F401
    except ImportError:  # a runtime from before the one-writer design: processors write the archive
        return False
    return True


def emulator_pid() -> int | None:
    """The pid of the emulator child process (``python -m devtools.emulator``), from /proc."""
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
    fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_recorded(box: sb.Sandbox, customers: int, limit: float = 1800) -> None:
    deadline = time.monotonic() + limit
    while processed_in_archive(box) < customers:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {processed_in_archive(box)} of {customers} results reached the archive")
        time.sleep(0.2)


def process(processor: Any, code: str, attempt: str) -> str:
    outcome: str = processor.process(keys.TriggerRef(code, CHANGE_ID), f"bench-{attempt}:{code}").outcome.label
    return outcome


def processed_in_archive(box: sb.Sandbox) -> int:
    store = ArchiveStore(boto3.client("s3"), box.bucket)
    document = store.load(CHANGE_ID).document
    return sum(1 for code in document.customers if document.is_processed(code, document.revision))


def one_run(endpoint: str, customers: int, recipients: int) -> dict[str, float]:
    reset(endpoint)
    codes = [f"c{n:03d}" for n in range(customers)]
    specs = [
        sb.CustomerSpec(
            code, f"{100000000000 + n}", tuple(sb.Contact(f"r{i}@{code}.example.com") for i in range(recipients))
        )
        for n, code in enumerate(codes)
    ]
    coordinated = has_coordinator()
    # With a coordinator, the bucket's notifications bring it the archive/ and processing/ events.
    box = sb.create_sandbox(specs, notifications=coordinated)
    s3 = boto3.client("s3")
    submit_change(
        ArchiveStore(s3, box.bucket),
        TriggerStore(s3, box.bucket),
        {"change_id": CHANGE_ID, "title": "fan-out", "customers": codes},
        user_id="bench",
    )
    counter = S3Counter()
    processors = build_processors(box, codes, counter)
    coordinator = CoordinatorThread(box, counter) if coordinated else None
    time.sleep(1.5)  # let the submission's own archive event reach the coordinator before the clock starts
    counter.reset()
    server = emulator_pid()
    server_cpu, own_cpu = cpu_seconds(server), cpu_seconds(os.getpid())
    started = time.perf_counter()
    with ExitStack() as running:
        if coordinator is not None:
            running.enter_context(coordinator)
        with ThreadPoolExecutor(max_workers=customers) as pool:
            outcomes = list(pool.map(lambda code: process(processors[code], code, "bench"), codes))
        retry = [code for code, outcome in zip(codes, outcomes, strict=True) if outcome != "processed"]
        first_attempt_failures = len(retry)
        while retry:  # what the queue's redelivery would do: process again until recorded
            retry = [c for c in retry if process(processors[c], c, "retry") not in ("processed", "already_recorded")]
        processors_done = time.perf_counter() - started
        wait_until_recorded(box, customers)
        wall = time.perf_counter() - started
        server_cpu, own_cpu = cpu_seconds(server) - server_cpu, cpu_seconds(os.getpid()) - own_cpu
    recorded = processed_in_archive(box)
    if recorded != customers:
        raise SystemExit(f"N={customers}: only {recorded} of {customers} results in the archive")
    return {
        "customers": customers,
        "requests": counter.requests,
        "per_customer": counter.requests / customers,
        "conflicts": counter.conflicts,
        "archive_writes": counter.archive_writes,
        "mb_read": counter.bytes_read / 1e6,
        "wall": wall,
        "processors_done": processors_done,
        "emulator_cpu": server_cpu,
        "client_cpu": own_cpu,
        "first_attempt_failures": first_attempt_failures,
    }


def customers_of(row: dict[str, float]) -> float:
    return max(1.0, row["customers"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="10,50,100,200", help="comma-separated N values")
    parser.add_argument("--recipients", type=int, default=2, help="contacts per customer")
    parser.add_argument("--smallest", action="store_true", help="only the smallest size, N=10 (the test suite's run)")
    args = parser.parse_args()
    if args.smallest:
        args.customers = "10"
    sizes = [int(n) for n in args.customers.split(",")]
    rows = []
    with emulator() as endpoint:
        for n in sizes:
            rows.append(one_run(endpoint, n, args.recipients))
            row = rows[-1]
            print(
                f"N={n:>4}: {row['requests']:>7.0f} S3 requests ({row['per_customer']:.1f}/customer), "
                f"{row['conflicts']:.0f} 412s, {row['archive_writes']:.0f} archive writes, "
                f"{row['mb_read']:.2f} MB read, {row['wall']:.2f} s "
                f"(every processor done after {row['processors_done']:.2f} s); CPU: emulator "
                f"{row['emulator_cpu']:.1f} s ({1000 * row['emulator_cpu'] / max(1, row['requests']):.1f} ms per S3 "
                f"request), processors + coordinator {row['client_cpu']:.1f} s "
                f"({1000 * row['client_cpu'] / customers_of(row):.0f} ms per customer)",
                flush=True,
            )
    columns = ["N", "S3 requests", "per customer", "412 conflicts", "archive writes", "MB read", "wall time"]
    print("\n| " + " | ".join([*columns, "first attempts failed"]) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['customers']:.0f} | {row['requests']:.0f} | {row['per_customer']:.1f} | {row['conflicts']:.0f} | "
            f"{row['archive_writes']:.0f} | {row['mb_read']:.2f} | {row['wall']:.1f} s | "
            f"{row['first_attempt_failures']:.0f} |"
        )
    if len(rows) > 1:
        growth = rows[-1]["customers"] / rows[0]["customers"]
        print(
            f"\nwall time N={rows[-1]['customers']:.0f} / N={rows[0]['customers']:.0f}: "
            f"{rows[-1]['wall'] / rows[0]['wall']:.1f}x for {growth:.0f}x customers"
        )


if __name__ == "__main__":
    main()
