"""How the commands fail: AWS errors become one line that says what to do, and exit 3."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from runtime.archive.documents import utcnow
from runtime.cli.exit_codes import EXIT_INTERRUPTED
from runtime.contract.keys import TriggerRef
from runtime.pipeline import Outcome
from tests.support.aws_platform import Platform
from tests.support.ops_platform import (
    ops_env,
    run,
)

MIN20 = 20 * 60


def test_aws_errors_say_what_to_do(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    result = run(monkeypatch, ops_env(platform, TTP_BUCKET_NAME="no-such-bucket-here"), "cleanup")
    assert result.exit_code == 3
    assert "NoSuchBucket" in result.stderr and "check TTP_BUCKET_NAME" in result.stderr


class _InterruptedMailer:
    """Three recipients; Ctrl-C (``KeyboardInterrupt``) lands before the third email."""

    addresses = ["a@hts.example.com", "b@hts.example.com", "c@hts.example.com"]

    def __init__(self, ledger: list[str], interrupt_before: int | None) -> None:
        self.ledger = ledger
        self.interrupt_before = interrupt_before

    def subscribers(self, topic: str) -> list[str]:
        return list(self.addresses)

    def send(self, recipients: list[str], message: object, topic: str, *, on_done: Any, cancelled: Any) -> list[str]:
        for address in recipients:
            if len(self.ledger) == self.interrupt_before:
                raise KeyboardInterrupt
            self.ledger.append(address)
            on_done(address, None)
        return recipients


def test_interrupted_process_releases_its_lease_and_says_so(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 item 11: Ctrl-C during `process` left a live lease for the whole lease time (the
    worker acked its own message as a duplicate meanwhile) and a traceback or "Aborted!"."""
    platform.submit()
    ledger: list[str] = []
    manual = platform.processor("hts", lease_seconds=300)
    manual.mailer = _InterruptedMailer(ledger, interrupt_before=2)
    monkeypatch.setattr("runtime.pipeline.build_processor", lambda _settings: manual)
    env = {
        "TTP_CUSTOMER_CODE": "hts",
        "TTP_BUCKET_NAME": platform.bucket,
        "TTP_SENDER_ROLE_ARN": "arn:aws:iam::333333333333:role/ttp-ses-sender-hts",
        "TTP_SENDER_EXTERNAL_ID": "ext-123",
        "TTP_FROM_ADDRESS": "changes@hts.example.com",
    }
    result = run(monkeypatch, env, "process", "--customer", "hts", "--change-id", "CHG-1")
    assert result.exit_code == EXIT_INTERRUPTED
    assert "interrupted" in result.stderr and "remaining recipients" in result.stderr
    lease = (platform.processing("hts") or {})["lease"]
    assert lease["owner"].startswith("manual:") and datetime.fromisoformat(lease["expires_at"]) <= utcnow()

    worker = platform.processor("hts", lease_seconds=300)
    worker.mailer = _InterruptedMailer(ledger, interrupt_before=None)
    resumed = worker.process(TriggerRef("hts", "CHG-1"), "sqs:m1:r1")  # the worker's message, right away
    assert resumed.outcome is Outcome.PROCESSED and resumed.emails_sent == 1
    assert sorted(ledger) == _InterruptedMailer.addresses  # none lost, none twice
