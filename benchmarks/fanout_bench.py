"""Fan-out benchmark: one change submitted for N customers, every customer's processor at once.

This is the platform team's normal case (a change for every customer). It measures what the design
costs per customer as N grows, against the local emulator (moto's server in its own process, with
atomic conditional writes):

* S3 requests (HTTP requests, retries included) per customer, processors and coordinator together;
* 412 conflicts (compare-and-swap writes that lost), archive writes, bytes read;
* wall time from "all processors start" to "every result is in the archive's audit trail".

With one writer per object (docs/design.md §1) each processor writes only its own processing object and
the coordinator folds many customers' results per archive write, so requests per customer stay flat
and wall time grows linearly in N. Each customer's processor is a task of its own, as in AWS: child
processes of 10 customers each (:mod:`benchmarks._fanout_tasks`; one boto3 session per customer, built
before the clock starts); the coordinator, when the runtime has one, runs in this process.

    python benchmarks/fanout_bench.py [--customers 10,200,1000] [--recipients 2] [--ratio-runs 3]
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import botocore.client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TTP_LOG_LEVEL", "WARNING")  # read when runtime.telemetry.log is imported: the report only

from benchmarks._fanout_layout import set_up_changes, trigger_events  # noqa: E402
from benchmarks._fanout_measures import (  # noqa: E402
    CONTROL_PREFIX,
    CustomerMeasures,
    Measures,
    control_changes_for,
    cpu_targets,
    describe,
    groups_of,
    load_average,
)
from benchmarks._fanout_tasks import Prepare, ProcessorTasks  # noqa: E402
from benchmarks._measure import cpu_seconds, emulator_pid  # noqa: E402
from devtools import hand_layout  # noqa: E402
from devtools.emulator import emulator_process as emulator  # noqa: E402
from devtools.emulator import reset  # noqa: E402
from runtime import aws  # noqa: E402
from runtime.archive.folds import FoldedResults, with_results  # noqa: E402
from runtime.archive.store import ArchiveStore  # noqa: E402
from runtime.contract import keys  # noqa: E402
from runtime.contract.names import ENV_PREFIX  # noqa: E402
from runtime.contract.settings import SenderSettings, SettingsT, load  # noqa: E402
from runtime.pipeline import decide  # noqa: E402
from runtime.telemetry.metrics import MetricsFactory  # noqa: E402

CHANGE_ID = "CHG-FANOUT"
DONE = ("processed", "already_recorded", "trigger_gone")
"""The outcomes that end a customer's work (its result recorded, its trigger deleted)."""


@dataclass
class S3Counter:
    """HTTP requests to S3 (every attempt), 412 answers, archive writes and bytes read, from botocore events."""

    requests: int = 0
    conflicts: int = 0
    archive_writes: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    by_operation: collections.Counter[str] = field(default_factory=collections.Counter)
    """Requests by operation and key prefix (``GetObject processing/``): where the requests go."""
    ignore: str = CONTROL_PREFIX
    """Requests whose URL or key holds this (the control group's changes) are not counted."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.requests = self.conflicts = self.archive_writes = self.bytes_read = self.bytes_written = 0
            self.by_operation.clear()

    def snapshot(self) -> dict[str, Any]:
        """The counts as plain data (a processor task sends them to the benchmark's process)."""
        with self._lock:
            fields = ("requests", "conflicts", "archive_writes", "bytes_read", "bytes_written")
            return {**{name: getattr(self, name) for name in fields}, "by_operation": dict(self.by_operation)}

    def absorb(self, counts: dict[str, Any]) -> None:
        with self._lock:
            for name, value in counts.items():
                if name == "by_operation":
                    self.by_operation.update(value)
                else:
                    setattr(self, name, getattr(self, name) + value)

    def attach(self, client: Any) -> Any:
        events = client.meta.events
        events.register("before-send.s3", self._on_send)
        events.register("after-call.s3", self._on_call)
        return client

    def _on_send(self, request: Any, **_: Any) -> None:
        if self.ignore and self.ignore in str(getattr(request, "url", "")):
            return
        with self._lock:
            self.requests += 1

    def _on_call(self, http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any) -> None:
        status = getattr(http_response, "status_code", 0)
        with self._lock:
            params = kwargs.get("context", {}).get("ttp_params") or {}
            key = str(params.get("Key") or "")
            if self.ignore and self.ignore in key:
                return
            prefix = (
                "archive/*/folds" if key.startswith(keys.ARCHIVE_PREFIX) and "/folds/" in key else key.split("/", 1)[0]
            )
            self.by_operation[f"{model.name} {prefix}/" if prefix else model.name] += 1
            if status == 412:
                self.conflicts += 1
            if model.name == "GetObject" and status == 200:
                self.bytes_read += int(parsed.get("ContentLength") or 0)
            if model.name == "PutObject" and status == 200:
                self.bytes_written += int(params.get("size") or 0)
            if model.name == "PutObject" and str(params.get("Key", "")).startswith(keys.ARCHIVE_PREFIX):
                self.archive_writes += 1


def _body_size(body: Any) -> int:
    """Bytes of a request body: botocore has turned a ``bytes`` body into a file-like object by the time
    the parameters are built (so counting only ``bytes`` counted no PUT at all before issue 21's second run)."""
    if isinstance(body, (bytes, bytearray)):
        return len(body)
    if isinstance(body, str):
        return len(body.encode())
    if isinstance(body, io.BytesIO):
        return body.getbuffer().nbytes
    return 0


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["ttp_params"] = {"Key": params.get("Key"), "size": _body_size(params.get("Body"))}


def counted_session(counter: S3Counter) -> boto3.session.Session:
    """A session whose S3 clients report to ``counter``; built on the process's shared loader
    (:func:`runtime.aws.session`), as one process of the runtime builds its clients."""
    session = aws.session()
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


def build_processors(box: hand_layout.Sandbox, codes: list[str], counter: S3Counter) -> dict[str, Any]:
    from runtime.pipeline.composition import build_processor

    processors = {}
    for code in codes:
        env = box.worker_env(code, TTP_SEND_RATE_PER_SECOND="500", TTP_LOG_LEVEL="WARNING")
        processor = build_processor(settings_from(SenderSettings, env), counted_session(counter), pool=4)
        processor.metrics = MetricsFactory("bench", io.StringIO())  # keep the EMF lines off the report
        processors[code] = processor
    return processors


def task_of(box: hand_layout.Sandbox, events: dict[str, str], counted: set[str]) -> Prepare:
    """What one processor task (a child process, :mod:`benchmarks._fanout_tasks`) does with its customers:
    build their processors, then process each trigger's event until its result is recorded, each customer
    timed or, if in ``counted``, its function calls counted (:mod:`benchmarks._fanout_measures`)."""

    def prepare(codes: list[str], slots: Any) -> Callable[[], dict[str, Any]]:
        counter = S3Counter()
        processors = build_processors(box, codes, counter)

        def run() -> dict[str, Any]:
            measures = CustomerMeasures(counted & set(codes))

            def one(code: str, attempt: str) -> str:
                with slots:
                    return measures.measure(code, lambda: process(processors[code], events[code], code, attempt))

            with measures.installed(), SentEmails() as emails, ThreadPoolExecutor(max_workers=len(codes)) as pool:
                outcomes = list(pool.map(lambda code: one(code, "bench"), codes))
                retry = [code for code, outcome in zip(codes, outcomes, strict=True) if outcome != "processed"]
                failures = len(retry)
                while retry:  # what the queue's redelivery would do: process again until recorded
                    retry = [c for c in retry if one(c, "retry") not in DONE]
            sent = list(emails.sent.items())
            return {
                "measures": measures.snapshot(),
                "first_attempt_failures": failures,
                "s3": counter.snapshot(),
                "sent": sent,
            }

        return run

    return prepare


class CoordinatorThread:
    """The runtime's change coordinator consuming its queue in this process (S3 events route to it)."""

    def __init__(self, box: hand_layout.Sandbox, counter: S3Counter) -> None:
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


def wait_until_recorded(
    box: hand_layout.Sandbox, customers: int, limit: float = 1800, change_id: str = CHANGE_ID
) -> None:
    deadline = time.monotonic() + limit
    known = FoldedResults(change_id)
    while processed_in_archive(box, known, change_id) < customers:
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{change_id}: {processed_in_archive(box, known, change_id)} of {customers} results recorded"
            )
        time.sleep(0.2)


def process(processor: Any, event: str, code: str, attempt: str) -> str:
    """The customer's worker's handling of its trigger's event (steps 0-8: :func:`runtime.pipeline.decide`)."""
    [result] = decide(event, processor.archive.bucket, processor, f"sqs:bench-{attempt}:{code}")
    outcome: str = result.outcome.label
    return outcome


class SentEmails:
    """Every SendEmail SES accepted, by (customer tag, recipient): more than one is a duplicate email."""

    def __init__(self) -> None:
        self.sent: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        self._original = botocore.client.BaseClient._make_api_call

    def __enter__(self) -> SentEmails:
        original = self._original

        def call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            answer = original(client, operation, params)
            if operation == "SendEmail":
                tags = {t["Name"]: t["Value"] for t in params.get("EmailTags", [])}
                with self._lock:
                    for address in params["Destination"]["ToAddresses"]:
                        self.sent[(tags.get("ttp-customer-code", "?"), address)] += 1
            return answer

        botocore.client.BaseClient._make_api_call = call  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        botocore.client.BaseClient._make_api_call = self._original  # type: ignore[method-assign]

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.sent.values())


def processed_in_archive(
    box: hand_layout.Sandbox, known: FoldedResults | None = None, change_id: str = CHANGE_ID
) -> int:
    """Customers whose result the archive records (inline or in its fold segments; ``known`` keeps the
    segments read by earlier polls of this run, so polling does not read the whole trail each time)."""
    store = ArchiveStore(boto3.client("s3"), box.bucket)
    document = store.load(change_id).document
    head, results = store.results(change_id, known)
    document = with_results(document, head, results)
    return sum(1 for code in document.customers if document.is_processed(code, document.revision))


def one_run(endpoint: str, customers: int, recipients: int, measures: Measures | None = None) -> dict[str, Any]:
    measures = measures or Measures()
    reset(endpoint)
    set_up_started = time.perf_counter()
    controls = control_changes_for(customers, measures.control_per_200)
    box, changes = set_up_changes(customers, recipients, controls, has_coordinator(), CHANGE_ID)
    order = changes.pop("order")
    events = trigger_events(box, order)
    print(f"N={customers:>4}: set-up {time.perf_counter() - set_up_started:.1f} s", flush=True)
    groups, counted = groups_of(changes, CHANGE_ID, measures.count_every)
    counter, coordinator_counter, emails = S3Counter(), S3Counter(), SentEmails()
    tasks = ProcessorTasks(order, task_of(box, events, counted))  # each customer's processor in a task, as in AWS
    coordinator = CoordinatorThread(box, coordinator_counter) if has_coordinator() else None
    time.sleep(1.5)  # let the submission's own archive event reach the coordinator before the clock starts
    coordinator_counter.reset()
    server = emulator_pid()
    server_cpu, own_cpu, load_before = cpu_seconds(server), cpu_seconds(os.getpid()), load_average()
    started = time.perf_counter()
    with ExitStack() as running:
        if coordinator is not None:
            running.enter_context(coordinator)
        figures = tasks.run()
        processors_done = time.perf_counter() - started
        wait_until_recorded(box, customers)
        wall = time.perf_counter() - started
        server_cpu, own_cpu = cpu_seconds(server) - server_cpu, cpu_seconds(os.getpid()) - own_cpu
        for change_id, codes in changes.items():  # the control group's results, after the measured wall time
            wait_until_recorded(box, len(codes), change_id=change_id)
    for task in figures:
        counter.absorb(task["s3"])
        emails.sent.update(dict(task["sent"]))
        for group in groups:
            group.absorb(task["measures"])
    recorded = processed_in_archive(box)
    if recorded != customers:
        raise SystemExit(f"N={customers}: only {recorded} of {customers} results in the archive")
    requests = counter.requests + coordinator_counter.requests
    for who, counted_requests in (("processors", counter), ("coordinator", coordinator_counter)):
        print(
            f"N={customers:>4}: {who} requests per customer by operation: "
            + ", ".join(f"{op} {n / customers:.2f}" for op, n in sorted(counted_requests.by_operation.items())),
            flush=True,
        )
    return {
        "customers": customers,
        "requests": requests,
        "per_customer": requests / customers,
        "conflicts": counter.conflicts + coordinator_counter.conflicts,
        "archive_writes": coordinator_counter.archive_writes + counter.archive_writes,
        "mb_read": (counter.bytes_read + coordinator_counter.bytes_read) / 1e6,
        "coordinator_bytes": coordinator_counter.bytes_read + coordinator_counter.bytes_written,
        "wall": wall,
        "processors_done": processors_done,
        "emulator_cpu": server_cpu,
        "client_cpu": own_cpu,
        # the timed customers' mean, scaled to N (the table divides by N, as before the counted ones)
        "processor_cpu": customers * sum(groups[0].cpu.values()) / max(1, len(groups[0].cpu)),
        # every customer processed (control group and counted ones, with their profilers, included)
        "processor_process_cpu": customers * sum(task["process_cpu"] for task in figures) / len(order),
        "processor_tasks": len(tasks),
        "emails": sum(emails.sent.values()),
        "duplicates": emails.duplicates(),
        "first_attempt_failures": sum(task["first_attempt_failures"] for task in figures),
        "load_before": load_before,
        "load_after": load_average(),
        "groups": groups,
        "measured": groups[0].summary(),
        "control": groups[1].summary() if groups[1].codes else None,
    }


def customers_of(row: dict[str, Any]) -> float:
    return max(1.0, float(row["customers"]))


def report(row: dict[str, Any]) -> None:
    n = customers_of(row)
    print(
        f"N={row['customers']:>4.0f}: {row['requests']:>7.0f} S3 requests ({row['per_customer']:.1f}/customer), "
        f"{row['conflicts']:.0f} 412s, {row['archive_writes']:.0f} archive writes, "
        f"{row['mb_read']:.2f} MB read, {row['wall']:.2f} s "
        f"(every processor done after {row['processors_done']:.2f} s); coordinator "
        f"{row['coordinator_bytes'] / n / 1000:.1f} kB read+written per customer; processor CPU "
        f"{1000 * row['processor_cpu'] / n:.1f} ms per customer ({1000 * row['processor_process_cpu'] / n:.1f} ms "
        f"with their {row['processor_tasks']:.0f} processes' other threads, /proc); "
        f"emulator CPU {row['emulator_cpu']:.1f} s "
        f"({1000 * row['emulator_cpu'] / max(1, row['requests']):.1f} ms per S3 request); "
        f"{row['emails']:.0f} emails, {row['duplicates']:.0f} duplicates; "
        f"load average {row['load_before']:.1f} at the start, {row['load_after']:.1f} at the end",
        flush=True,
    )
    print(f"N={row['customers']:>4.0f}: " + describe(f"its {row['customers']:.0f} customers", row["measured"]))
    if row["control"] is not None:
        print(f"N={row['customers']:>4.0f}: " + describe("control group (N = 10 changes, same run)", row["control"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="10,200,1000", help="comma-separated N values")
    parser.add_argument("--recipients", type=int, default=2, help="contacts per customer")
    parser.add_argument(
        "--ratio-runs", type=int, default=3, help="runs of N=10 and N=200 for wall(200)/wall(10), each its own"
    )
    parser.add_argument("--smallest", action="store_true", help="only the smallest size, N=10 (the test suite's run)")
    parser.add_argument("--count-every", type=int, default=3, help="count every K-th customer's calls (0: none)")
    parser.add_argument(
        "--control-per-200", type=float, default=1.0, help="control changes of 10 customers per 200 (0: none)"
    )
    args = parser.parse_args()
    measures = Measures(args.count_every, args.control_per_200)
    if args.smallest:
        args.customers, args.ratio_runs = "10", 1
    sizes = [int(n) for n in args.customers.split(",")]
    ratio_sizes = [n for n in (10, 200) if n in sizes]
    rows: list[dict[str, Any]] = []
    ratios: list[float] = []
    with emulator() as endpoint:
        for n in sizes:
            rows.append(one_run(endpoint, n, args.recipients, measures))
            report(rows[-1])
        if len(ratio_sizes) == 2:
            walls = {row["customers"]: row["wall"] for row in rows}
            ratios.append(walls[200] / walls[10])
            for _ in range(args.ratio_runs - 1):
                small = one_run(endpoint, 10, args.recipients, measures)
                large = one_run(endpoint, 200, args.recipients, measures)
                report(small)
                report(large)
                ratios.append(large["wall"] / small["wall"])
    columns = ["N", "S3 requests", "per customer", "412 conflicts", "archive writes", "MB read", "wall time"]
    extra = [
        "first attempts failed",
        "coordinator kB/customer",
        "processor CPU ms/customer",
        "processor processes' CPU ms/customer",
        "duplicate emails",
    ]
    print("\n| " + " | ".join([*columns, *extra]) + " |")
    print("|" + "---|" * (len(columns) + len(extra)))
    for row in rows:
        n = customers_of(row)
        print(
            f"| {row['customers']:.0f} | {row['requests']:.0f} | {row['per_customer']:.1f} | {row['conflicts']:.0f} | "
            f"{row['archive_writes']:.0f} | {row['mb_read']:.2f} | {row['wall']:.1f} s | "
            f"{row['first_attempt_failures']:.0f} | {row['coordinator_bytes'] / n / 1000:.1f} | "
            f"{1000 * row['processor_cpu'] / n:.1f} | {1000 * row['processor_process_cpu'] / n:.1f} | "
            f"{row['duplicates']:.0f} |"
        )
    first, last = rows[0], rows[-1]
    if len(rows) > 1:
        print("\ntargets (issue 21):")
        worst = max(row["per_customer"] for row in rows)
        print(f"  S3 requests per customer: at most {worst:.2f} (target <= 6.5 at every N)")
        growth = (last["coordinator_bytes"] / customers_of(last)) / max(
            1.0, first["coordinator_bytes"] / customers_of(first)
        )
        print(
            f"  coordinator bytes per customer: N={last['customers']:.0f} is {growth:.2f}x N={first['customers']:.0f}"
            " (target: flat, within 1.5x)"
        )
        cpu_targets(first, last)
        print(f"  duplicate emails: {sum(row['duplicates'] for row in rows):.0f} (target 0)")
    if ratios:
        print(
            "  wall(200)/wall(10) per run: " + ", ".join(f"{r:.1f}x" for r in ratios) + " (target <= 22x in each run)"
        )


if __name__ == "__main__":
    main()
