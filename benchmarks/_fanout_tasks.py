"""The fan-out benchmark's processors laid out as AWS runs them: each customer's processor is a task of
its own (issue 21).

In AWS no two customers' processors share an interpreter. Run as threads of one process (as this
benchmark did until issue 21's fourth run), N processors shared one heap, one garbage collector and
botocore's process-wide endpoint cache (100 entries for every client), and a profile showed what grew
with N there: the same botocore calls costing more per call, full collections of a heap holding every
customer's clients (2 million objects at N = 200, 20 full collections during the run against 3 at
N = 10). That is the benchmark's layout, not the processor's cost.

So the processors run in child processes (forked from the benchmark once its set-up is done) of at
most :data:`CUSTOMERS_PER_PROCESS` customers each: the N = 10 layout at every N. A cross-process
semaphore keeps at most :data:`IN_FLIGHT` customers processing at once. Each child reports its
processors' thread CPU (``time.thread_time`` around each ``process`` call, the figure of the earlier
runs), its own CPU from /proc, its S3 requests by operation and the emails SES accepted.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable
from typing import Any

from benchmarks._measure import cpu_seconds

CUSTOMERS_PER_PROCESS = 10
"""Customers per child process: the N = 10 run's layout (one process), whatever N."""
IN_FLIGHT = 20
"""Customers processing at once across the children. Two cores cannot give N tasks a CPU each, as AWS
does: 200 at once (the one process's thread pool) left hundreds of runnable processors time-sliced on
2 cores, which inflated each one's CPU clock (N = 200 / N = 10: 1.11-1.59x, walls of N = 200 30-43 s);
20 keep the emulator, the bottleneck, busy (1.16-1.21x, walls 23-30 s, in runs at a load of 19-20)."""

Run = Callable[[], dict[str, Any]]
Prepare = Callable[[list[str], Any], Run]
"""Given a child's customers and the shared semaphore, build their processors and return what processes
them (called in the child, before the clock starts)."""


def _child(conn: Any, prepare: Prepare, codes: list[str], slots: Any) -> None:
    try:
        run = prepare(codes, slots)
        conn.send("ready")
        conn.recv()  # go
        before = cpu_seconds(os.getpid())
        figures = run()
        figures["process_cpu"] = cpu_seconds(os.getpid()) - before
        conn.send(figures)
    except BaseException:  # reported to the parent, which stops the run naming it
        conn.send({"error": traceback.format_exc()})


class ProcessorTasks:
    """Forks the children and has each build its customers' processors; :meth:`run` starts them all."""

    def __init__(self, codes: list[str], prepare: Prepare, per_process: int = CUSTOMERS_PER_PROCESS) -> None:
        context = multiprocessing.get_context("fork")  # the set-up is done: no thread of this run yet
        slots = context.BoundedSemaphore(IN_FLIGHT)
        self._children: list[tuple[Any, Any]] = []
        for start in range(0, len(codes), per_process):
            ours, theirs = context.Pipe()
            chunk = codes[start : start + per_process]
            process = context.Process(target=_child, args=(theirs, prepare, chunk, slots), daemon=True)
            process.start()
            self._children.append((process, ours))
        for _, conn in self._children:
            self._answer(conn, "ready")

    @staticmethod
    def _answer(conn: Any, expected: str | None = None) -> Any:
        answer = conn.recv()
        if isinstance(answer, dict) and "error" in answer:
            raise SystemExit(f"a processor task failed:\n{answer['error']}")
        if expected is not None and answer != expected:
            raise SystemExit(f"a processor task answered {answer!r}, not {expected!r}")
        return answer

    def run(self) -> list[dict[str, Any]]:
        """Every child processes its customers until each is recorded; their figures, one dict each."""
        for _, conn in self._children:
            conn.send("go")
        figures = [self._answer(conn) for _, conn in self._children]
        for process, _ in self._children:
            process.join(30)
        return figures

    def __len__(self) -> int:
        return len(self._children)
