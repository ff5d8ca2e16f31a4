"""dlq list (never consumes) and dlq redrive (bounded; send, then delete; reports what moved)."""

from __future__ import annotations

from collections import Counter

import pytest

from runtime.ops.dlq import redrive_dlq
from runtime.pipeline import Outcome, decide
from tests.support.aws_platform import Faulty, Platform, client_error
from tests.support.ops_platform import as_json, depth, drain, ops_env, run, s3_event


def fill_dlq(platform: Platform, code: str, bodies: list[str]) -> None:
    for body in bodies:
        platform.sqs.send_message(QueueUrl=platform.box.customers[code].dlq_url, MessageBody=body)


def test_list_shows_messages_without_consuming_them(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    dlq = platform.box.customers["hts"].dlq_url
    fill_dlq(
        platform,
        "hts",
        [
            s3_event(platform.bucket, "customers/hts/CHG-1.json"),
            s3_event(platform.bucket, "customers%2Fhts%2FCHG-2.json"),
            "not json",
        ],
    )
    result = run(monkeypatch, ops_env(platform), "dlq", "list", "--customer", "hts", "--json")
    listing = as_json(result)
    assert result.exit_code == 1  # not empty: needs attention
    assert listing["approximate_visible"] == 3 and len(listing["messages"]) == 3
    assert sorted(t for m in listing["messages"] for t in m["triggers"]) == [
        "customers/hts/CHG-1.json",
        "customers/hts/CHG-2.json",
    ]
    assert [m["parse_error"] for m in listing["messages"] if m["parse_error"]] == [
        "body is not JSON: Expecting value: line 1 column 1 (char 0)"
    ]
    assert depth(platform, dlq) == (3, 0)  # all visible again, nothing deleted

    human = run(monkeypatch, ops_env(platform), "dlq", "list", "--customer", "hts")
    assert "customers/hts/CHG-1.json" in human.stdout and "dlq redrive --customer hts" in human.stdout
    empty = run(monkeypatch, ops_env(platform), "dlq", "list", "--customer", "htsnonprod")
    assert empty.exit_code == 0


def test_redrive_is_bounded_and_moves_bodies_unchanged(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    res = platform.box.customers["hts"]
    bodies = [s3_event(platform.bucket, f"customers/hts/CHG-{i}.json") for i in range(12)]
    fill_dlq(platform, "hts", bodies)

    first = run(monkeypatch, ops_env(platform), "dlq", "redrive", "--customer", "hts", "--max", "5", "--json")
    report = as_json(first)
    assert first.exit_code == 0
    assert report["moved"] == 5 and report["failed"] == 0 and report["remaining"] == 7
    assert all(m["outcome"] == "moved" and m["new_message_id"] for m in report["messages"])
    assert depth(platform, res.queue_url) == (5, 0) and depth(platform, res.dlq_url) == (7, 0)

    rest = as_json(run(monkeypatch, ops_env(platform), "dlq", "redrive", "--customer", "hts", "--json"))
    assert rest["moved"] == 7 and rest["remaining"] == 0
    moved = drain(platform, res.queue_url)
    assert Counter(m["Body"] for m in moved) == Counter(bodies)


def test_a_failed_send_leaves_the_message_in_the_dlq(light: Platform) -> None:
    platform = light
    res = platform.box.customers["hts"]
    fill_dlq(platform, "hts", [s3_event(platform.bucket, f"customers/hts/CHG-{i}.json") for i in range(3)])
    sqs = Faulty(platform.sqs).fail("send_message", client_error("KMS.AccessDeniedException", 400))

    report = redrive_dlq(sqs, "hts", res.queue_url, limit=10)
    assert Counter(m.outcome for m in report.messages) == Counter({"moved": 2, "send_failed": 1})
    assert sqs.calls["delete_message"] == 2  # never deleted what was not sent
    assert report.remaining == 1 and depth(platform, res.dlq_url) == (1, 0)
    assert depth(platform, res.queue_url) == (2, 0)


def test_unknown_customer_and_missing_dlq_say_what_to_do(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    unknown = run(monkeypatch, ops_env(platform), "dlq", "redrive", "--customer", "zzz")
    assert unknown.exit_code == 2 and "not in TTP_CUSTOMER_QUEUES" in unknown.stderr
    plain = platform.sqs.create_queue(QueueName="customer-plain-changes")["QueueUrl"]
    env = ops_env(platform, TTP_CUSTOMER_QUEUES=f'{{"plain": "{plain}"}}')
    missing = run(monkeypatch, env, "dlq", "list", "--customer", "plain")
    assert missing.exit_code == 3 and "has no redrive policy" in missing.stderr


def test_redriven_message_is_processed(platform: Platform) -> None:
    platform.submit("CHG-1", ["hts"])
    res = platform.box.customers["hts"]
    fill_dlq(platform, "hts", [s3_event(platform.bucket, "customers/hts/CHG-1.json")])
    report = redrive_dlq(platform.sqs, "hts", res.queue_url)
    assert report.moved == 1
    [message] = drain(platform, res.queue_url)
    [result] = decide(message["Body"], platform.bucket, platform.processor("hts"), "sqs:redriven")
    assert result.outcome is Outcome.PROCESSED and not platform.trigger_exists("hts")


def test_redrive_refuses_poison_without_force_and_moves_the_others(
    light: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: `dlq list` flags a poison message (its body names no valid trigger); `dlq redrive`
    moved it anyway, back into the queue that already dead-lettered it. Without --force it is refused
    (exit 1, one line naming the message id and why), the others move; --force moves it too."""
    platform = light
    res = platform.box.customers["hts"]
    good = [s3_event(platform.bucket, f"customers/hts/CHG-{i}.json") for i in range(2)]
    poison = ["not json", s3_event(platform.bucket, "archive/CHG-9.json")]
    fill_dlq(platform, "hts", [*good, *poison])
    listed = as_json(run(monkeypatch, ops_env(platform), "dlq", "list", "--customer", "hts", "--json"))
    flagged = {m["message_id"]: m["parse_error"] for m in listed["messages"] if m["parse_error"]}
    assert len(flagged) == 2

    result = run(monkeypatch, ops_env(platform), "dlq", "redrive", "--customer", "hts", "--json")
    report = as_json(result)
    assert result.exit_code == 1
    assert report["moved"] == 2 and report["refused"] == 2 and report["remaining"] == 2
    assert {m["message_id"] for m in report["messages"] if m["outcome"] == "refused_poison"} == set(flagged)
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "--force" in line
    assert all(message_id in line and reason in line for message_id, reason in flagged.items())
    assert Counter(m["Body"] for m in drain(platform, res.queue_url)) == Counter(good)
    assert depth(platform, res.dlq_url) == (2, 0)  # visible again, for `dlq list`

    forced = run(monkeypatch, ops_env(platform), "dlq", "redrive", "--customer", "hts", "--force", "--json")
    assert forced.exit_code == 0 and as_json(forced)["moved"] == 2
    assert Counter(m["Body"] for m in drain(platform, res.queue_url)) == Counter(poison)
