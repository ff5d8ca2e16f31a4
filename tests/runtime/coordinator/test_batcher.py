"""FoldBatcher without S3: one write per batch, every caller gets its own outcome or the batch's failure."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from runtime.archive.processing import RevisionResult
from runtime.coordinator.folding import FoldBatcher, FoldOutcome, PendingResult


class FakeFolder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[PendingResult]] = []
        self.fail = fail

    def fold(self, change_id: str, pending: list[PendingResult]) -> FoldOutcome:
        self.calls.append(list(pending))
        if self.fail:
            raise RuntimeError("S3 is down")
        return FoldOutcome(folded=list(pending), writes=1)


def pending(code: str, revision: int = 1) -> PendingResult:
    return PendingResult(code, "CHG-1", RevisionResult(revision=revision, recipients=1, sent=1))


def run_concurrently(batcher: FoldBatcher, codes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    start = threading.Barrier(len(codes))

    def one(code: str) -> None:
        start.wait(5)
        try:
            out[code] = batcher.submit("CHG-1", [pending(code)])
        except Exception as exc:
            out[code] = exc

    threads = [threading.Thread(target=one, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return out


def test_callers_within_the_linger_share_one_fold_and_each_sees_its_own_results() -> None:
    folder = FakeFolder()
    batcher = FoldBatcher(folder, 0.3)  # type: ignore[arg-type]
    codes = [f"c{i}" for i in range(6)]
    out = run_concurrently(batcher, codes)
    assert len(folder.calls) == 1 and len(folder.calls[0]) == 6 and batcher.writes == 1
    for code in codes:
        assert [p.customer_code for p in out[code].folded] == [code]


def test_a_failed_fold_fails_every_caller_of_the_batch() -> None:
    batcher = FoldBatcher(FakeFolder(fail=True), 0.3)  # type: ignore[arg-type]
    out = run_concurrently(batcher, ["a", "b", "c"])
    assert sorted(type(e).__name__ for e in out.values()) == ["FoldFailed", "FoldFailed", "RuntimeError"]
    with pytest.raises(RuntimeError):  # the next batch starts afresh (nothing left open)
        batcher.submit("CHG-1", [pending("d")])


def test_remembered_results_skip_the_archive() -> None:
    batcher = FoldBatcher(FakeFolder(), 0.0, remember=2)  # type: ignore[arg-type]
    batcher.submit("CHG-1", [pending("a"), pending("b")])
    assert batcher.known_folded([pending("a"), pending("b")])
    assert not batcher.known_folded([pending("a", revision=2)])
    batcher.submit("CHG-1", [pending("c")])
    assert not batcher.known_folded([pending("a")])  # bounded: the oldest is forgotten


class SlowFolder(FakeFolder):
    """A write that takes a while, counting how many writes of the change run at once."""

    def __init__(self, seconds: float, hold_first: threading.Event | None = None) -> None:
        super().__init__()
        self.seconds = seconds
        self.hold_first = hold_first
        """The first write waits for this (bounded) instead of a fixed time: a loaded machine cannot
        make the callers that must arrive during it arrive after it."""
        self.first_started = threading.Event()
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def fold(self, change_id: str, pending: list[PendingResult]) -> FoldOutcome:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.hold_first is not None and not self.first_started.is_set():
                self.first_started.set()
                self.hold_first.wait(10)
            threading.Event().wait(self.seconds)
            return super().fold(change_id, pending)
        finally:
            with self._lock:
                self.running -= 1


def test_one_write_per_change_at_a_time_and_the_next_batch_collects_meanwhile() -> None:
    first_write = threading.Event()
    folder = SlowFolder(0.0, hold_first=first_write)
    batcher = FoldBatcher(folder, 0.0)  # type: ignore[arg-type]
    first = threading.Thread(target=batcher.submit, args=("CHG-1", [pending("first")]))
    first.start()
    assert folder.first_started.wait(10)  # the first write is in flight, and stays so until released
    arrivals = threading.Thread(target=lambda: out.update(run_concurrently(batcher, [f"c{i}" for i in range(8)])))
    out: dict[str, Any] = {}
    arrivals.start()

    def collected() -> int:  # the batch that opened while the first write runs (no timing guess: it is read)
        with batcher._batcher._lock:
            batch = batcher._batcher._open.get("CHG-1")
            return len(batch.items) if batch is not None else 0

    deadline = time.monotonic() + 10
    while collected() < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    first_write.set()
    first.join(10)
    arrivals.join(10)
    assert folder.most_at_once == 1  # the coordinator's own writes never race (no 412 among them)
    assert [len(call) for call in folder.calls] == [1, 8]  # the 8 waited together: one more write, not 8
    assert all(isinstance(outcome, FoldOutcome) for outcome in out.values())


class Arrivals:
    """A fake linger: during each of its first ``rounds`` waits, ``per_round`` more results of the change
    arrive and join the open batch (read from the batcher, no timing guess)."""

    def __init__(self, rounds: int, per_round: int) -> None:
        self.rounds, self.per_round = rounds, per_round
        self.waits: list[float] = []
        self.threads: list[threading.Thread] = []
        self.out: dict[str, Any] = {}
        self.batcher: FoldBatcher | None = None

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) > self.rounds:
            return
        batcher = self.batcher
        assert batcher is not None
        before = self.open_items()
        for i in range(self.per_round):
            code = f"r{len(self.waits)}c{i}"
            thread = threading.Thread(target=lambda c=code: self.out.update({c: batcher.submit("CHG-1", [pending(c)])}))
            thread.start()
            self.threads.append(thread)
        deadline = time.monotonic() + 10
        while self.open_items() < before + self.per_round and time.monotonic() < deadline:
            time.sleep(0.005)

    def open_items(self) -> int:
        assert self.batcher is not None
        with self.batcher._batcher._lock:
            batch = self.batcher._batcher._open.get("CHG-1")
            return len(batch.items) if batch is not None else 0


def test_while_many_results_keep_arriving_the_fold_waits_for_more_up_to_its_bounds() -> None:
    """Issue 21: each fold costs a segment, a head and a conditional GET, so a fold of the results of one
    linger (about 1 fold per 8 customers at N = 1,000 in the benchmark) cost 0.3-0.4 S3 requests per
    customer. While a linger brings many more results, the batch stays open for another, at most
    ``max_lingers`` lingers and ``max_items`` results."""
    folder = FakeFolder()
    arrivals = Arrivals(rounds=3, per_round=4)
    batcher = FoldBatcher(folder, 0.5, sleep=arrivals)  # type: ignore[arg-type]
    arrivals.batcher = batcher
    batcher.submit("CHG-1", [pending("first")])
    for thread in arrivals.threads:
        thread.join(10)
    assert [len(call) for call in folder.calls] == [13]  # 1 + 3 lingers x 4: one fold, not one per linger
    assert arrivals.waits == [0.5] * 4 and len(arrivals.out) == 12  # the 4th linger brought none: written then


def test_a_lone_result_waits_one_linger_and_a_stream_at_most_the_bound() -> None:
    lone = Arrivals(rounds=0, per_round=0)
    batcher = FoldBatcher(FakeFolder(), 0.5, sleep=lone)  # type: ignore[arg-type]
    lone.batcher = batcher
    batcher.submit("CHG-1", [pending("alone")])
    assert lone.waits == [0.5]  # no added latency when few arrive

    folder = FakeFolder()
    stream = Arrivals(rounds=4, per_round=25)  # every linger brings 25 (over an eighth of max_items: "many")
    batcher = FoldBatcher(folder, 0.5, sleep=stream, max_lingers=3, max_items=100)  # type: ignore[arg-type]
    stream.batcher = batcher
    batcher.submit("CHG-1", [pending("first")])
    for thread in stream.threads:
        thread.join(10)
    assert stream.waits == [0.5] * 3 and len(folder.calls[0]) == 76  # written after its 3 lingers


def test_a_full_batch_is_folded_at_once_without_waiting_out_its_linger() -> None:
    folder = FakeFolder()
    batcher = FoldBatcher(folder, 30.0, max_items=5)  # type: ignore[arg-type]
    started = time.monotonic()
    out = run_concurrently(batcher, [f"c{i}" for i in range(5)])
    assert time.monotonic() - started < 15 and [len(call) for call in folder.calls] == [5]
    assert all(isinstance(outcome, FoldOutcome) for outcome in out.values())
