"""The fan-out benchmark's per-customer measures (issue 21, sixth run; not a benchmark: tests/test_benchmarks.py
skips ``_*.py``).

"Processor CPU per customer flat" asks whether a customer's processing does more *work* at N = 1,000 than
at N = 10. The CPU clocks of 2 time-sliced, shared cores answer it badly: the same code measured 0.78x and
1.56x, and N = 10 alone 21-47 ms per customer over one day, as caches and the scheduler follow the load.
So each customer is measured one of two ways, chosen by its position (every ``count_every``-th counted):

* **counted**: its processing runs under :mod:`cProfile` (in its own thread and in every thread started
  on its behalf: its processor's read pool, its lease keeper), which counts the function calls, Python
  and C, per function. A count does not depend on the machine's load; its CPU is not used (the profiler
  adds its own);
* **timed**: ``time.thread_time`` around its processing (every attempt), no profiler.

And a **control group** runs inside every run of N > 10: ``control_changes`` changes of 10 customers each,
other customers of the same run, scattered through the same processor tasks and processed at the same
time. Load hits both groups alike, so the control's per-customer CPU is the N = 10 figure under the very
same load, and N's own effect is the ratio of the two medians.
"""

from __future__ import annotations

import collections
import cProfile
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

CONTROL_SIZE = 10
"""Customers per control change: the N = 10 run's change."""
CONTROL_PREFIX = "CHG-CONTROL-"
"""Change ids of the control group (the S3 counters of the measured change leave their requests out)."""


@dataclass
class Measures:
    """How a run's customers are measured: every ``count_every``-th of each group counted (0: none), the
    rest timed; control changes of 10 customers, about ``control_per_200`` per 200 customers of a run of
    N > 10 (0: none)."""

    count_every: int = 3
    control_per_200: float = 1.0


SHARED_THREADS = frozenset({"lease-alarms"})
"""Threads a process starts once for all its processors (whichever customer's processing starts them):
nobody's, so not profiled (:class:`runtime.pipeline.lease._Alarms`)."""


def control_changes_for(customers: int, per_200: float = 1.0) -> int:
    """Control changes in a run of ``customers``: none at N <= 10; about one per 200 customers otherwise
    (5 % more customers: at N = 1,000 five changes, 50 customers), at least one."""
    if customers <= CONTROL_SIZE:
        return 0
    return max(1, round(customers * per_200 / 200))


def with_control(codes: list[str], changes: int) -> tuple[list[str], dict[str, list[str]]]:
    """``codes`` with the control group's customers scattered evenly through them (so each lands in some
    processor task among the measured ones), and the control changes' customers by change id."""
    control = {f"{CONTROL_PREFIX}{j}": [f"k{j}{i:03d}" for i in range(CONTROL_SIZE)] for j in range(changes)}
    extra = [code for group in control.values() for code in group]
    if not extra:
        return list(codes), control
    step = max(1, len(codes) // len(extra))
    merged: list[str] = []
    for n, code in enumerate(codes):
        if n % step == 0 and extra:
            merged.append(extra.pop(0))
        merged.append(code)
    return merged + extra, control


def label(code: Any) -> str:
    """A profiler entry's function: ``path:line(name)`` (path from the package root or site-packages on)."""
    if isinstance(code, str):
        return code
    path = code.co_filename
    for marker in ("site-packages/", "/benchmarks/", "/runtime/", "/devtools/"):
        if marker in path:
            path = (marker.strip("/") + "/" if marker != "site-packages/" else "") + path.split(marker, 1)[1]
            break
    return f"{path}:{code.co_firstlineno}({code.co_name})"


class CustomerMeasures:
    """Per customer of one processor task: its thread CPU (timed) or its function calls (counted), and when
    its first attempt started (``time.monotonic``: one clock for every process of the machine)."""

    def __init__(self, counted: set[str]) -> None:
        self.counted = counted
        self.cpu: dict[str, float] = collections.defaultdict(float)
        self.started: dict[str, float] = {}
        self._profiles: dict[str, list[cProfile.Profile]] = collections.defaultdict(list)
        self._owners: dict[int, str] = {}
        """Thread ident -> the counted customer it is processing now."""
        self._lock = threading.Lock()
        self._original_start = threading.Thread.start

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Threads started while a counted customer is processed (in that customer's thread) are profiled as
        that customer's from their first call: a patched ``Thread.start`` notes the owner, and the
        ``threading.setprofile`` hook of the new thread starts a profiler of its own (a ``cProfile`` object is
        one thread's). Only in a processor task (a child process): both hooks are process-wide."""
        original, owners = self._original_start, self._owners

        def start(thread: threading.Thread) -> None:
            shared = thread.name in SHARED_THREADS
            thread._ttp_owner = None if shared else owners.get(threading.get_ident())  # type: ignore[attr-defined]
            original(thread)

        threading.Thread.start = start  # type: ignore[method-assign]
        threading.setprofile(self._thread_hook)
        try:
            yield
        finally:
            threading.setprofile(None)
            threading.Thread.start = original  # type: ignore[method-assign]

    def _thread_hook(self, frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        owner = getattr(threading.current_thread(), "_ttp_owner", None)
        if owner is not None:
            profile = cProfile.Profile()
            with self._lock:
                self._profiles[owner].append(profile)
            profile.enable()

    def measure(self, code: str, work: Callable[[], str]) -> str:
        """``work()`` (one attempt at ``code``'s trigger), counted or timed."""
        with self._lock:
            self.started.setdefault(code, time.monotonic())
        if code not in self.counted:
            before = time.thread_time()
            try:
                return work()
            finally:
                spent = time.thread_time() - before
                with self._lock:
                    self.cpu[code] += spent
        profile = cProfile.Profile()
        with self._lock:
            self._profiles[code].append(profile)
            self._owners[threading.get_ident()] = code
        profile.enable()
        try:
            return work()
        finally:
            profile.disable()
            with self._lock:
                self._owners.pop(threading.get_ident(), None)

    def calls(self) -> dict[str, dict[str, int]]:
        """Per counted customer, its function calls by function (every profile of its threads)."""
        counts: dict[str, dict[str, int]] = {}
        with self._lock:
            profiles = {code: list(found) for code, found in self._profiles.items()}
        for code, found in profiles.items():
            per_function: collections.Counter[str] = collections.Counter()
            for profile in found:
                for entry in profile.getstats():
                    per_function[label(entry.code)] += entry.callcount
            counts[code] = dict(per_function)
        return counts

    def snapshot(self) -> dict[str, Any]:
        return {"cpu": dict(self.cpu), "started": dict(self.started), "calls": self.calls()}


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0.5: the median) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    at = (len(ordered) - 1) * q
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


class Group:
    """One group of customers of a run (the measured change, or the control group): its samples."""

    def __init__(self, name: str, codes: set[str]) -> None:
        self.name = name
        self.codes = codes
        self.cpu: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.calls: dict[str, dict[str, int]] = {}

    def absorb(self, snapshot: dict[str, Any]) -> None:
        for kind in ("cpu", "started", "calls"):
            mine = {code: value for code, value in snapshot[kind].items() if code in self.codes}
            getattr(self, kind).update(mine)

    def cpu_ms(self) -> list[float]:
        return [1000 * seconds for seconds in self.cpu.values()]

    def first_processed_cpu_ms(self, count: int = CONTROL_SIZE) -> list[float]:
        """The timed customers among the first ``count`` whose processing started (the run's quietest start)."""
        first = sorted(self.started, key=self.started.__getitem__)[:count]
        return [1000 * self.cpu[code] for code in first if code in self.cpu]

    def total_calls(self) -> list[float]:
        return [float(sum(per_function.values())) for per_function in self.calls.values()]

    def per_function(self) -> dict[str, float]:
        """Mean calls per counted customer, by function."""
        summed: collections.Counter[str] = collections.Counter()
        for per_function in self.calls.values():
            summed.update(per_function)
        return {name: n / max(1, len(self.calls)) for name, n in summed.items()}

    def summary(self) -> dict[str, float]:
        cpu, calls = self.cpu_ms(), self.total_calls()
        return {
            "cpu_timed": len(cpu),
            "cpu_median": quantile(cpu, 0.5),
            "cpu_p90": quantile(cpu, 0.9),
            "cpu_iqr_low": quantile(cpu, 0.25),
            "cpu_iqr_high": quantile(cpu, 0.75),
            "calls_counted": len(calls),
            "calls_median": quantile(calls, 0.5),
            "calls_p90": quantile(calls, 0.9),
            "first_cpu_median": quantile(self.first_processed_cpu_ms(), 0.5),
        }


def groups_of(changes: dict[str, list[str]], measured: str, count_every: int) -> tuple[list[Group], set[str]]:
    """The measured change's customers and the control group's, and which of them are counted: every
    ``count_every``-th of each group by code (the others are timed)."""
    control = {code for change_id, codes in changes.items() if change_id != measured for code in codes}
    groups = [Group("measured", set(changes[measured])), Group("control", control)]
    every = count_every
    counted = {code for g in groups for n, code in enumerate(sorted(g.codes)) if every and n % every == 0}
    return groups, counted


def describe(name: str, s: dict[str, float]) -> str:
    return (
        f"{name}: CPU per customer median {s['cpu_median']:.1f} ms, p90 {s['cpu_p90']:.1f} "
        f"(quartiles {s['cpu_iqr_low']:.1f}-{s['cpu_iqr_high']:.1f}; {s['cpu_timed']:.0f} timed); "
        f"function calls per customer median {s['calls_median']:,.0f}, p90 {s['calls_p90']:,.0f} "
        f"({s['calls_counted']:.0f} counted)"
    )


def growing_functions(large: Group, small: Group, top: int = 8) -> list[tuple[str, float, float]]:
    """Functions called more often per customer in ``large`` than in ``small`` (at least one call more per
    customer on average), most added calls first: ``(function, small's mean, large's mean)``."""
    big, little = large.per_function(), small.per_function()
    grown = [
        (name, little.get(name, 0.0), calls) for name, calls in big.items() if calls - little.get(name, 0.0) >= 1.0
    ]
    return sorted(grown, key=lambda row: row[1] - row[2])[:top]


def ratio(large: float, small: float) -> str:
    return f"{large / small:.2f}x" if small == small and small > 0 and large == large else "n/a"


def cpu_targets(first: dict[str, Any], last: dict[str, Any]) -> None:
    """Issue 21's "processor CPU per customer flat" three ways: the two runs' means (the earlier runs'
    figure), their medians and call counts, and the last run against its own control group (the same
    machine load at the same time): the one the noise does not decide."""
    n, m = last["customers"], first["customers"]
    mine, theirs, control = last["measured"], first["measured"], last["control"]
    mean = (last["processor_cpu"] / max(1, n)) / max(1e-9, first["processor_cpu"] / max(1, m))
    process = (last["processor_process_cpu"] / max(1, n)) / max(1e-9, first["processor_process_cpu"] / max(1, m))
    print(
        f"  processor CPU per customer: N={n:.0f} is {mean:.2f}x N={m:.0f} (target within 1.3x; their processes' "
        f"CPU from /proc: {process:.2f}x); medians {ratio(mine['cpu_median'], theirs['cpu_median'])}, "
        f"function calls per customer (median) {ratio(mine['calls_median'], theirs['calls_median'])}, "
        f"p90 {ratio(mine['calls_p90'], theirs['calls_p90'])}"
    )
    if control is not None:
        print(
            f"  same run, N={n:.0f} against its control group of N=10 changes: CPU per customer (median) "
            f"{ratio(mine['cpu_median'], control['cpu_median'])}, p90 {ratio(mine['cpu_p90'], control['cpu_p90'])}; "
            f"function calls (median) {ratio(mine['calls_median'], control['calls_median'])}, "
            f"p90 {ratio(mine['calls_p90'], control['calls_p90'])}"
        )
    smaller = [(f"N={m:.0f}'s run", first["groups"][0])]
    if control is not None:
        smaller.insert(0, ("its control group", last["groups"][1]))
    for which, small in smaller:
        grown = growing_functions(last["groups"][0], small)
        print(f"  functions called more often per customer at N={n:.0f} than in {which} (top {len(grown)}):")
        for name, before, after in grown:
            print(f"    {before:9.1f} -> {after:9.1f}  {name}")


def load_average() -> float:
    """The 1-minute load average (the machine's 2 cores are shared: every figure names its load)."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return float("nan")


def median_of(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
