"""The receive loop's liveness record, and the check the container health check runs on it.

The worker (:class:`~runtime.worker.loop.Worker`) writes the record from its receive loop, also when
a long poll returns nothing (at most once per
:data:`~runtime.contract.thresholds.LIVENESS_REFRESH_SECONDS`); the heartbeat thread does not, so a receive loop
that is wedged (a hung call, a deadlock) stops refreshing it while the process stays up. The record
holds its own staleness limit (``receive_wait_seconds`` plus
:data:`~runtime.contract.thresholds.LIVENESS_MARGIN_SECONDS`, computed once by the worker), so the
check needs no settings: ``python -m runtime healthcheck`` reads one small file, with the standard
library only, and answers in milliseconds.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path


def stale_after_seconds(receive_wait_seconds: float, margin_seconds: float) -> float:
    """How old the record may get before the loop counts as stuck: one long poll plus the margin."""
    return float(receive_wait_seconds) + float(margin_seconds)


def write_liveness(path: Path, stale_after: float, *, now: float | None = None) -> None:
    """Record that the loop iterated at ``now`` (wall clock): written beside and renamed, so the check
    never reads half a record."""
    record = {"at": time.time() if now is None else now, "stale_after": stale_after, "pid": os.getpid()}
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(record))
    os.replace(partial, path)


@dataclass(frozen=True)
class Liveness:
    healthy: bool
    reason: str
    """One line: why healthy or not (the health check prints it)."""


def check_liveness(path: Path, *, now: float | None = None) -> Liveness:
    """Healthy when the record exists, is readable and is at most its ``stale_after`` old."""
    try:
        record = json.loads(path.read_text())
        at, stale_after = float(record["at"]), float(record["stale_after"])
    except FileNotFoundError:
        return Liveness(False, f"no liveness record at {path}: the receive loop has not started")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Liveness(False, f"unreadable liveness record at {path}: {type(exc).__name__}: {exc}")
    age = (time.time() if now is None else now) - at
    if age > stale_after:
        return Liveness(False, f"receive loop stuck: last iteration {age:.0f}s ago (limit {stale_after:.0f}s)")
    return Liveness(True, f"receive loop alive: last iteration {max(age, 0.0):.0f}s ago (limit {stale_after:.0f}s)")
