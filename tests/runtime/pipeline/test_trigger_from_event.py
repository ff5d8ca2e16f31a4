"""Issue 21: the trigger's ETag and time come from its S3 event, so a processed trigger costs no HEAD.

The worker's message is the trigger's own ``ObjectCreated`` event, which carries the ETag and time a
HEAD would return. Every guarantee the HEAD gave still holds: the DELETE is ``IfMatch`` the ETag of the
trigger that fired the event (a newer trigger stays), and a duplicate event of a trigger whose work
was recorded and deleted is acknowledged without sending anything.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.archive.triggers import DeleteOutcome
from runtime.contract.keys import TriggerRef
from runtime.pipeline import Outcome, decide
from runtime.worker import Fate
from tests.support.aws_platform import Faulty, Platform

HTS = TriggerRef("hts", "CHG-1")


def trigger_event(platform: Platform, ref: TriggerRef = HTS) -> str:
    """The S3 event the trigger's PUT sent: its key, its ETag unquoted (as S3 writes it) and a time."""
    etag = platform.s3.head_object(Bucket=platform.bucket, Key=ref.key)["ETag"].strip('"')
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-12-07T10:00:00.000Z",
        "s3": {"bucket": {"name": platform.bucket}, "object": {"key": ref.key, "eTag": etag}},
    }
    return json.dumps({"Records": [record]})


def counting(platform: Platform) -> tuple[Faulty, list[str]]:
    s3 = Faulty(platform.s3)
    heads: list[str] = []

    def head(**kwargs: Any) -> None:
        heads.append(str(kwargs["Key"]))

    s3.fail("head_object", head, times=1000)
    return s3, heads


def test_a_trigger_whose_event_carries_its_etag_is_processed_without_a_head(platform: Platform) -> None:
    platform.submit()
    body = trigger_event(platform)
    s3, heads = counting(platform)
    [result] = decide(body, platform.bucket, platform.processor("hts", s3=s3), "sqs:m1:r1")
    assert result.outcome is Outcome.PROCESSED and result.trigger_delete is DeleteOutcome.DELETED
    assert heads == []
    assert not platform.trigger_exists("hts")
    assert len(platform.emails("hts")) == 2


def test_a_duplicate_event_after_the_work_was_recorded_is_acked_and_sends_nothing(platform: Platform) -> None:
    platform.submit()
    body = trigger_event(platform)
    processor = platform.processor("hts")
    assert decide(body, platform.bucket, processor, "sqs:m1:r1")[0].outcome is Outcome.PROCESSED
    [again] = decide(body, platform.bucket, processor, "sqs:m2:r1")
    assert again.outcome is Outcome.TRIGGER_GONE and again.fate is Fate.ACK
    assert len(platform.emails("hts")) == 2
    assert platform.metric_total("DuplicateEvents", "hts") == 1


def test_the_event_of_a_replaced_trigger_processes_the_newest_revision_and_leaves_the_new_trigger(
    platform: Platform,
) -> None:
    platform.submit()
    body = trigger_event(platform)
    platform.submit(title="Change CHG-1, second revision")  # a new trigger (another ETag) with its own event
    newer = trigger_event(platform)
    [result] = decide(body, platform.bucket, platform.processor("hts"), "sqs:m1:r1")
    assert result.outcome is Outcome.PROCESSED and result.revision == 2
    assert result.trigger_delete is DeleteOutcome.REPLACED and platform.trigger_exists("hts")
    [follow_up] = decide(newer, platform.bucket, platform.processor("hts"), "sqs:m2:r1")
    assert follow_up.outcome is Outcome.ALREADY_RECORDED and not platform.trigger_exists("hts")
    assert len(platform.emails("hts")) == 2  # revision 2 once, nothing for the superseded event


def test_a_duplicate_event_of_a_change_whose_archive_is_gone_is_acked_not_dead_lettered(platform: Platform) -> None:
    platform.submit()
    body = trigger_event(platform)
    assert decide(body, platform.bucket, platform.processor("hts"), "sqs:m1:r1")[0].outcome is Outcome.PROCESSED
    platform.s3.delete_object(Bucket=platform.bucket, Key="archive/CHG-1.json")
    [again] = decide(body, platform.bucket, platform.processor("hts"), "sqs:m2:r1")
    assert again.outcome is Outcome.TRIGGER_GONE and again.fate is Fate.ACK


def test_an_event_without_an_etag_still_heads_the_trigger(platform: Platform) -> None:
    platform.submit()
    record = json.loads(trigger_event(platform))
    del record["Records"][0]["s3"]["object"]["eTag"]
    s3, heads = counting(platform)
    [result] = decide(json.dumps(record), platform.bucket, platform.processor("hts", s3=s3), "sqs:m1:r1")
    assert result.outcome is Outcome.PROCESSED and heads == [HTS.key]
