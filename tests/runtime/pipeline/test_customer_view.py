"""A processor reads only its own customer's part of the change document (issue 21): what it validates
does not grow with the customers the change lists, and what it reads can never be written back."""

from __future__ import annotations

import json
from typing import Any

import pytest

import runtime.archive.documents as documents
from runtime.archive import ArchiveDocument, ArchiveStore
from runtime.archive.customer_view import CustomerView, customer_view
from runtime.contract.keys import TriggerRef
from runtime.pipeline import Outcome
from tests.support.aws_platform import Platform

HTS = TriggerRef("hts", "CHG-1")


class CountedCodes:
    """Counts the customer codes the document model validates (``validate_customer_code`` calls)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = documents.validate_customer_code

        def counted(value: str) -> str:
            self.calls += 1
            return original(value)

        monkeypatch.setattr(documents, "validate_customer_code", counted)


def many(n: int) -> list[str]:
    return ["hts", *(f"c{i:04d}" for i in range(n - 1))]


def test_a_processor_of_a_change_to_1000_customers_validates_its_own_part_only(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.submit(customers=many(1000))
    codes = CountedCodes(monkeypatch)
    result = platform.processor("hts").process(HTS, "sqs:m1")
    assert result.outcome is Outcome.PROCESSED and len(platform.emails("hts")) == 2
    assert codes.calls < 10  # the whole document validated 1,000 customer codes (and 1,000 more per re-read)


def stored(customers: list[str], **fields: Any) -> dict[str, Any]:
    return {
        "change_id": "CHG-1",
        "title": "t",
        "customers": customers,
        "revision": 2,
        "modifications": [
            {"user_id": "u", "modification_type": "submitted", "revision": 1, "customers": customers},
            {"user_id": "processor:hts", "modification_type": "processed", "customer_code": "hts", "revision": 1},
            {"user_id": "processor:c0001", "modificationType": "processed", "customerCode": "c0001", "revision": 1},
            {"user_id": "u", "modification_type": "submitted", "revision": 2},
        ],
        "leases": {
            code: {"owner": f"sqs:{code}", "revision": 1, "expires_at": "2026-01-01T00:00:00Z"}
            for code in ("hts", "c0002")
        },
        "delivery": {"hts": {"1": {"sent": 2}}, "c0003": {"1": {"sent": 1}}},
        "custom": {"kept": 1.50},
        **fields,
    }


def test_the_view_answers_what_the_processor_asks_as_the_whole_document_does() -> None:
    body = json.dumps(stored(many(50))).encode()
    whole, view = ArchiveDocument.from_json_bytes(body), customer_view(body, "hts")
    assert isinstance(view, CustomerView) and view.customers == ["hts"]
    for doc in (whole, view):
        assert doc.revision == 2 and doc.is_processed("hts", 1) and not doc.is_processed("hts", 2)
        assert doc.first_submitted_revision() == 1 and doc.targets("hts", 2)
    assert view.modifications[0].customers == ["hts"] and len(view.modifications) == 3
    assert list(view.leases) == ["hts"] and list(view.delivery) == ["hts"]
    assert view.model_extra == whole.model_extra


@pytest.mark.parametrize(
    "customers, needle",
    [
        (["c0001", "c0002"], None),  # not listed: the whole document answers (the processor refuses it)
        (["hts", "hts"], "duplicates"),
        (["hts", 7], "customers"),
    ],
)
def test_a_document_the_view_cannot_trim_is_read_whole_with_its_errors(
    customers: list[str], needle: str | None
) -> None:
    body = json.dumps(stored(customers)).encode()
    if needle is None:
        view = customer_view(body, "hts")
        assert view.customers == customers and not isinstance(view, CustomerView)
        return
    with pytest.raises(ValueError, match=needle):
        customer_view(body, "hts")


def test_a_view_is_never_written_back(platform: Platform) -> None:
    platform.submit(customers=many(5))
    archive = ArchiveStore(platform.s3, platform.bucket)
    before = platform.s3.get_object(Bucket=platform.bucket, Key="archive/CHG-1.json")["Body"].read()
    view = archive.load_customer_view("CHG-1", "hts")
    with pytest.raises(ValueError, match="read-only"):
        archive.update("CHG-1", lambda doc: doc, current=view)
    after = platform.s3.get_object(Bucket=platform.bucket, Key="archive/CHG-1.json")["Body"].read()
    assert after == before
