"""Issue 17 item 5: the audit trail never runs backwards.

S3's ``Date`` header has whole seconds. Used as the clock of record it put a ``processed`` entry at
``…:22.026Z`` after a ``submitted`` entry at ``…:22.149Z``, and a processing object's ``started_at``
before the submission. Leases stay on the storage clock; the recorded times are never earlier than the
submission they follow, and finished ≥ started.
"""

from __future__ import annotations

import time
from datetime import datetime
from email.utils import formatdate
from typing import Any

from runtime.archive.documents import utcnow
from runtime.contract.keys import TriggerRef
from runtime.pipeline import Outcome
from tests.support.aws_platform import Platform

HTS = TriggerRef("hts", "CHG-1")


class WholeSecondDates:
    """Gives every S3 answer a ``Date`` header with whole seconds, as S3's own (moto sends none).

    :meth:`hold` keeps it at the current second, as a ``Date`` read within that second is, whatever
    the load on the test machine makes the steps after it take."""

    def __init__(self, s3: Any) -> None:
        self.held: int | None = None
        s3.meta.events.register_first("after-call.s3", self._add_date)

    def hold(self) -> None:
        self.held = int(time.time())

    def _add_date(self, parsed: Any = None, **_: Any) -> None:
        if isinstance(parsed, dict):
            headers = parsed.setdefault("ResponseMetadata", {}).setdefault("HTTPHeaders", {})
            second = self.held if self.held is not None else int(time.time())
            headers["date"] = formatdate(second, usegmt=True)


def at_fraction(low: float = 0.14, high: float = 0.16) -> None:
    """Wait until the wall clock is ``low`` to ``high`` s into a second (the issue's ``.149``)."""
    while not low <= time.time() % 1 < high:
        time.sleep(0.002)


def submitted_at(platform: Platform, revision: int) -> datetime:
    [entry] = [
        m
        for m in platform.archive()["modifications"]
        if m["modification_type"] == "submitted" and m["revision"] == revision
    ]
    return datetime.fromisoformat(entry["timestamp"])


def test_recorded_times_are_never_earlier_than_the_submission_on_a_whole_second_storage_clock(
    platform: Platform,
) -> None:
    dates = WholeSecondDates(platform.s3)
    platform.submit()
    assert platform.processor("hts").process(HTS, "sqs:m1:r1").outcome is Outcome.PROCESSED
    at_fraction()
    dates.hold()
    platform.submit(title="Change CHG-1, revision 2")  # its `submitted` entry is at .14x on the local clock
    submitted = submitted_at(platform, 2)
    assert submitted.microsecond >= 100_000
    assert platform.processor("hts").process(HTS, "sqs:m2:r1").outcome is Outcome.PROCESSED

    result = platform.result("hts", 2) or {}
    started, finished = datetime.fromisoformat(result["started_at"]), datetime.fromisoformat(result["finished_at"])
    assert submitted <= started <= finished, (submitted, started, finished)
    assert finished <= utcnow()  # not pushed into the future either
    platform.fold(customers=["hts"])
    [entry] = [e for e in platform.processed_entries() if e["revision"] == 2]
    assert datetime.fromisoformat(entry["timestamp"]) >= submitted


def test_lease_expiry_stays_on_the_storage_clock(platform: Platform) -> None:
    """The times of record moved off the storage clock; the lease did not: its expiry is the storage
    time of the claim plus the lease, whatever the processor's local clock says."""
    from datetime import timedelta

    WholeSecondDates(platform.s3)
    platform.submit()
    skewed = platform.processor("hts", lease_seconds=60, clock=lambda: utcnow() - timedelta(seconds=600))
    skewed.store.clock._local = lambda: utcnow() - timedelta(seconds=600)
    platform.s3.head_object(Bucket=platform.bucket, Key="archive/CHG-1.json")  # a Date for the storage clock
    skewed._claim("CHG-1", "sqs:m1:r1", 1)
    lease = (platform.processing("hts") or {})["lease"]
    expires = datetime.fromisoformat(lease["expires_at"])
    assert abs((expires - utcnow()).total_seconds() - 60) < 5  # the storage clock, not the local one
