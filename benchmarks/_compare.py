"""The worker against the bare loop (the floor) on the same workload, robust to the machine's load.

One pair of runs said little on the shared 2-core machine: the worker reached 0.53, 0.61 and 1.72 of the
floor in three ``make bench`` runs, because each single process's wall time moved with the neighbours'
load. Here the floor and the worker run in ``pairs`` interleaved pairs (the first of each pair alternates,
so neither always runs first on a warmer or quieter machine), and the script reports the median of the
pairs' ratios, in wall time and in CPU per trigger: the CPU a trigger costs the worker against the floor's
moves little with the load, where the wall time moves with it. The CPU the emulator spends per trigger
under the worker is set against the worker's own (issue 21: the emulator must not be the bottleneck).

The calls of all runs are summed by operation, the floor's against the worker's. Both read the contact
list once per cache period (the notifier lists it in one thread while the others wait) and both are
counted up to their last trigger handled, so what can differ is ``ReceiveMessage`` alone: each receive
asks for as many messages as there are free threads, so how many receives 150 triggers take depends on
how the handling threads finish relative to each receive, in both.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from benchmarks._measure import cpu_seconds, emulator_pid, unsubscribe_coordinator
from devtools.emulator import reset


@dataclass
class Run:
    """One run of ``triggers`` triggers: wall and CPU seconds from its first receive to its last trigger."""

    triggers: int
    wall: float
    cpu: float
    emulator_cpu: float
    calls: dict[str, int]

    @property
    def rate(self) -> float:
        return self.triggers / self.wall

    def ms_per_trigger(self, seconds: float) -> float:
        return 1000 * seconds / self.triggers


def floor_run(bench: ModuleType, endpoint: str, triggers: int, recipients: int) -> Run:
    """The bare loop (``processing_bench.py --floor-child``) on a fresh sandbox holding ``triggers`` triggers."""
    reset(endpoint)
    box = bench.sb.create_sandbox([bench.spec("floor", "777777777777", recipients)], visibility_timeout=60)
    unsubscribe_coordinator(box)
    bench.submit_many(box, ["floor"], triggers, "F")
    resources = box.customers["floor"]
    arguments = [box.bucket, resources.queue_url, triggers, "floor", resources.spec.sender]
    arguments += [resources.spec.sender_role_arn, resources.spec.ext_id]
    server = emulator_pid()
    before = cpu_seconds(server)
    out = subprocess.run(
        [sys.executable, bench.__file__, "--floor-child", json.dumps(arguments)],
        cwd=bench.ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(bench.ROOT)},
        check=True,
    )
    emulator = cpu_seconds(server) - before  # the child's start-up makes no request: only its run counts
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return Run(triggers, result["elapsed"], result["cpu"], emulator, result["calls"])


def worker_run(bench: ModuleType, endpoint: str, triggers: int, recipients: int) -> tuple[Run, Any]:
    """One worker (``python -m runtime worker``, its calls counted) on a fresh sandbox; it is left running
    (the memory section reads its peak)."""
    reset(endpoint)
    box = bench.sb.create_sandbox([bench.spec("one", "777777777777", recipients)], visibility_timeout=60)
    unsubscribe_coordinator(box)
    bench.submit_many(box, ["one"], triggers, "T")
    worker = bench.WorkerProcess(box, "one", endpoint, count_calls=True, TTP_LOG_LEVEL="INFO")  # its lines time it
    started_at = worker.wait_for_start()
    server = emulator_pid()
    worker_before, emulator_before = cpu_seconds(worker.proc.pid), cpu_seconds(server)
    handled = worker.wait_for_handled(triggers)
    cpu, emulator = cpu_seconds(worker.proc.pid) - worker_before, cpu_seconds(server) - emulator_before
    return Run(triggers, max(handled.values()) - started_at, cpu, emulator, worker.calls()), worker


def _ratio(a: float, b: float) -> float:
    """a / b; NaN when b is 0 (a process's CPU is read in clock ticks: a tiny run may read 0)."""
    return a / b if b else float("nan")


def _calls_line(runs: list[Run]) -> dict[str, float]:
    total: dict[str, int] = {}
    for run in runs:
        for name, count in run.calls.items():
            total[name] = total.get(name, 0) + count
    triggers = sum(run.triggers for run in runs)
    return {name: count / triggers for name, count in sorted(total.items())}


def worker_against_floor(bench: ModuleType, endpoint: str, triggers: int, recipients: int, pairs: int) -> Any:
    """Run and print the pairs (module docstring); returns the last worker, still running."""
    floors: list[Run] = []
    workers: list[Run] = []
    process = None
    for n in range(pairs):
        if process is not None:
            process.stop()
        order = ("floor", "worker") if n % 2 == 0 else ("worker", "floor")
        for which in order:
            if which == "floor":
                floors.append(floor_run(bench, endpoint, triggers, recipients))
            else:
                run, process = worker_run(bench, endpoint, triggers, recipients)
                workers.append(run)
        floor, worker = floors[-1], workers[-1]
        print(
            f"  pair {n + 1} ({order[0]} first): floor {floor.rate:6.1f} triggers/s, "
            f"{floor.ms_per_trigger(floor.cpu):.1f} ms CPU (emulator {floor.ms_per_trigger(floor.emulator_cpu):.1f}); "
            f"worker {worker.rate:6.1f} triggers/s, {worker.ms_per_trigger(worker.cpu):.1f} ms CPU "
            f"(emulator {worker.ms_per_trigger(worker.emulator_cpu):.1f}); "
            f"worker/floor {worker.rate / floor.rate:.2f} in wall, {_ratio(floor.cpu, worker.cpu):.2f} in CPU",
            flush=True,
        )
    wall = statistics.median(w.rate / f.rate for f, w in zip(floors, workers, strict=True))
    cpu = statistics.median(_ratio(f.cpu, w.cpu) for f, w in zip(floors, workers, strict=True))
    emulator = statistics.median(_ratio(w.emulator_cpu, w.cpu) for w in workers)
    print(f"  median of {pairs} pairs: the worker reaches {wall:.2f} of the floor's triggers/s (target >= 0.9),")
    print(f"    {cpu:.2f} of its CPU efficiency (floor CPU per trigger / worker CPU per trigger)")
    print(
        f"  emulator CPU per trigger / worker CPU per trigger: median {emulator:.2f} (target below 1; "
        + ", ".join(f"{_ratio(w.emulator_cpu, w.cpu):.2f}" for w in workers)
        + ")"
    )
    made, worker_made = _calls_line(floors), _calls_line(workers)
    for label, line in (("floor", made), ("worker", worker_made)):
        print(
            f"  {label} calls per trigger over its {pairs} runs: {sum(line.values()):.2f} = "
            + ", ".join(f"{name} {count:.2f}" for name, count in line.items())
        )
    differences = {
        name: worker_made.get(name, 0.0) - made.get(name, 0.0)
        for name in sorted({*made, *worker_made})
        if abs(worker_made.get(name, 0.0) - made.get(name, 0.0)) >= 0.005
    }
    print(
        "  worker minus floor: "
        + (", ".join(f"{name} {n:+.2f}" for name, n in differences.items()) or "none (the same calls)")
        + " (ReceiveMessage: receives ask for the free threads' worth of messages, in both)"
    )
    return process
