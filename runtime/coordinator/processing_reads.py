"""The coordinator's reads of processing objects: one GET per object's claim and record, none for an event
a read already answered (issue 21).

A customer's processor writes its processing object at least twice per revision, its claim (step 5) and
its record (step 7), and S3 announces each write. The claim's version holds no result of its revision,
and an event does not say which write it announces. Reading each event's object once one linger after
it cost 1.5-1.9 GETs per customer in the fan-out benchmark: a processor there takes 1-2 s from claim to
record, the linger is 0.5 s, and the claim's read found nothing to fold. So:

* **The first event of an object waits for the object's next version**, up to ``max_lingers`` lingers
  (:data:`RECORD_WAIT_LINGERS`): an event of another version of the same object (another ETag: the
  record, or a claim announced late) ends the wait at once, and one read answers both. An object's
  results are only ever added to, so the newer version holds everything the older one did. If no other
  event comes (the record's event was lost, or the processor stopped), the object is read at the end of
  the wait: a result recorded meanwhile is folded then, which a read one linger after the claim missed.
* **After a read that found a claim in progress** (a lease), the object's next event is its record or a
  checkpoint: it waits one linger, as every event did before.
* **Bounded.** Each waiting event holds one of the coordinator's handler threads; at most
  ``max_waiting`` wait past their first linger at once (``build_handler``: half of ``max_concurrency``),
  the others are read after one linger. A wait that ends goes on to the fold batch in the same thread
  (the records' events return at once), so thread for thread it replaces the linger the record's event
  waited before; when the waits and a fold batch hold every thread, the waits end by their bound. An
  event without ETag cannot tell a newer version from a duplicate: it waits one linger.
* **Moot events.** An event whose ETag is the version last read and dealt with, or whose sequencer is
  below the highest of the events that read answered, costs no read, on arrival or while it waits (a
  record's event that came just after its claim's wait ended, while the claim's read found the
  record). S3's sequencer orders the events of one key, and a read after an event sees that event's
  version or a newer one. Sequencers are compared only at equal length (AWS's documentation has said
  both "left" and "right" for the padding of shorter ones); emulated events carry none, and the ETag
  alone decides.

The events of one object that share a read are answered by it together; only the first (the one that
read) folds what it found, so a result costs one place in a fold batch and one handler thread while it
waits for the fold. The others are acknowledged: if that fold fails, its message is retried and its next
read covers them (:meth:`runtime.coordinator.handler.CoordinatorHandler.fold`).
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.archive import VersionedProcessing

RECORD_WAIT_LINGERS = 6
"""How many lingers the first event of a processing object waits for the object's next version (3 s at
the default 0.5 s linger): the fan-out benchmark's processors take 1-2 s from claim to record."""
REMEMBERED_OBJECTS = 10_000
"""Processing objects whose last read this process remembers (an ETag, a sequencer and a flag each)."""


@dataclass(frozen=True)
class EventVersion:
    """The version of a processing object one event announces, as far as the event says."""

    etag: str | None = None
    sequencer: str | None = None

    @classmethod
    def of(cls, etag: str | None, sequencer: str | None) -> EventVersion:
        return cls(etag.strip('"') if etag else None, sequencer or None)


def sequenced_before(sequencer: str | None, other: str | None) -> bool:
    """Whether S3 sequenced the event of ``sequencer`` before the one of ``other`` (same key): hexadecimal
    strings compared lexicographically, only at equal length; unknown otherwise (False)."""
    if not sequencer or not other or len(sequencer) != len(other):
        return False
    return sequencer.upper() < other.upper()


@dataclass(frozen=True)
class Read:
    """One read of a processing object, shared by the events it answers: the version, or why not."""

    version: VersionedProcessing | None
    error: Exception | None = None
    events: tuple[EventVersion, ...] = ()
    """The events this read answers (each was announced before the read began)."""


@dataclass(frozen=True)
class Answer:
    """What one event gets: the shared read, and whether this event's message folds what it found."""

    read: Read
    folds: bool
    moot: bool = False
    """A read dealt with while this event waited covers its version: no read was made for it."""


@dataclass
class _Known:
    """The last read of one object by this process."""

    etag: str | None = None
    """The ETag of the version last read and dealt with (its results folded, or none to fold)."""
    sequencer: str | None = None
    """The highest sequencer among the events that dealt-with read answered."""
    in_progress: bool = False
    """The last read found a lease: a claim or a checkpoint, whose record is still to come."""


@dataclass
class _Wait:
    events: list[EventVersion] = field(default_factory=list)
    newer: threading.Event = field(default_factory=threading.Event)
    """Set when an event of another version of the object joins: read at once."""
    done: threading.Event = field(default_factory=threading.Event)
    read: Read | None = None
    moot: bool = False


class ProcessingReads:
    """Thread-safe. ``read(key)`` reads one processing object (it returns a :class:`Read`, never raises)."""

    def __init__(
        self,
        read: Callable[[str], Read],
        linger_seconds: float,
        *,
        max_lingers: int = RECORD_WAIT_LINGERS,
        max_waiting: int = 0,
        remember: int = REMEMBERED_OBJECTS,
    ) -> None:
        self._read = read
        self.linger_seconds = linger_seconds
        self.max_lingers = max(1, max_lingers)
        self.max_waiting = max(0, max_waiting)
        self._remember = remember
        self._lock = threading.Lock()
        self._open: dict[str, _Wait] = {}
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._waiting = 0
        self.reads = 0
        self.ended: Counter[str] = Counter()
        """How the waits ended: ``next version`` (another version's event came), ``one linger`` (an event
        without ETag, or one whose record was expected), ``bound`` (``max_waiting`` were waiting),
        ``answered`` (a read dealt with meanwhile covers every event of the wait: no read) or ``waited
        out`` (no other version's event within ``max_lingers``)."""

    # ---- what this process knows of an object -----------------------------------------------

    def answered(self, key: str, event: EventVersion) -> bool:
        """Whether a read already dealt with covers the version ``event`` announces (module docstring)."""
        with self._lock:
            known = self._known.get(key)
        if known is None:
            return False
        return (event.etag is not None and event.etag == known.etag) or sequenced_before(
            event.sequencer, known.sequencer
        )

    def dealt_with(self, key: str, read: Read) -> None:
        """``read``'s version had its results folded (or none to fold): its events, and older ones, are moot."""
        assert read.version is not None
        highest = None
        for event in read.events:
            if event.sequencer and (highest is None or sequenced_before(highest, event.sequencer)):
                highest = event.sequencer
        with self._lock:
            known = self._entry(key)
            known.etag = read.version.etag.strip('"')
            if highest is not None and not sequenced_before(highest, known.sequencer):
                known.sequencer = highest

    def _entry(self, key: str) -> _Known:
        """Under the lock: the entry of ``key``, created if new, kept as the most recent."""
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = _Known()
        self._known.move_to_end(key)
        while len(self._known) > self._remember:
            self._known.popitem(last=False)
        return known

    def _answered_all(self, key: str, events: list[EventVersion] | tuple[EventVersion, ...]) -> bool:
        return all(self.answered(key, e) for e in events)

    def _expects_record(self, key: str) -> bool:
        with self._lock:
            known = self._known.get(key)
            return known is not None and known.in_progress

    # ---- reading --------------------------------------------------------------------------------

    def submit(self, key: str, event: EventVersion) -> Answer:
        """The read answering ``event``: a wait's read if one is open for ``key``, else a new wait's."""
        with self._lock:
            wait = self._open.get(key)
            leader = wait is None
            if wait is None:
                wait = self._open[key] = _Wait()
            elif event.etag is not None and all(e.etag != event.etag for e in wait.events):
                wait.newer.set()
            wait.events.append(event)
        if not leader:
            wait.done.wait()
            assert wait.read is not None
            return Answer(wait.read, folds=False, moot=wait.moot)
        try:
            self._wait(key, wait, patient=event.etag is not None)
            with self._lock:
                del self._open[key]
                events = tuple(wait.events)
            if self._answered_all(key, events):
                wait.moot = True
                wait.read = Read(None, None, events)
                return Answer(wait.read, folds=False, moot=True)
            read = self._read(key)
            wait.read = Read(read.version, read.error, events)
            with self._lock:
                self.reads += 1
                if read.error is None:
                    version = read.version
                    self._entry(key).in_progress = version is not None and version.document.lease is not None
        except BaseException as exc:
            why = exc if isinstance(exc, Exception) else RuntimeError(f"the read was interrupted: {exc!r}")
            wait.read = Read(None, why)
            raise
        finally:
            with self._lock:
                if self._open.get(key) is wait:
                    del self._open[key]
            wait.done.set()
        return Answer(wait.read, folds=True)

    def _wait(self, key: str, wait: _Wait, *, patient: bool) -> None:
        """One linger; then, for an event with an ETag, more while no other version's event came, up to
        ``max_lingers`` in all, while fewer than ``max_waiting`` waits are past their first linger."""
        if self.linger_seconds <= 0:
            return
        end = self._end_of_wait(key, wait, patient=patient)
        with self._lock:
            self.ended[end] += 1

    def _end_of_wait(self, key: str, wait: _Wait, *, patient: bool) -> str:
        newer = wait.newer
        if newer.wait(self.linger_seconds):
            return "next version"
        if not patient or self.max_lingers == 1 or self._expects_record(key):
            return "one linger"
        with self._lock:
            if self._waiting >= self.max_waiting:
                return "bound"
            self._waiting += 1
        try:
            for _ in range(self.max_lingers - 1):
                if newer.wait(self.linger_seconds):
                    return "next version"
                if self._expects_record(key):
                    return "one linger"
                with self._lock:
                    events = list(wait.events)
                if self._answered_all(key, events):
                    return "answered"
            return "waited out"
        finally:
            with self._lock:
                self._waiting -= 1
