"""Trigger and archive keys: parsing after URL decoding, unsafe keys refused, builders validate."""

from __future__ import annotations

import pytest

from runtime.contract import keys

# ---- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, code, change_id",
    [
        ("customers/hts/CHG-1.json", "hts", "CHG-1"),
        ("customers%2Fcustomer-a%2FCHG.2026_1.json", "customer-a", "CHG.2026_1"),
        ("customers/a/x.json", "a", "x"),
    ],
)
def test_trigger_keys_parse_after_url_decoding(raw: str, code: str, change_id: str) -> None:
    ref = keys.parse_trigger_key(raw)
    assert (ref.customer_code, ref.change_id) == (code, change_id)
    assert ref.key == f"customers/{code}/{change_id}.json"
    assert ref.archive_key == f"archive/{change_id}.json"


@pytest.mark.parametrize(
    "raw",
    [
        "customers/hts/../CHG-1.json",
        "customers/hts/..%2FCHG-1.json",
        "customers/hts/sub/CHG-1.json",
        "customers//CHG-1.json",
        "customers/hts/.json",
        "customers/hts/CHG..1.json",
        "customers/hts/CHG-1.json.bak",
        "customers/Hts/CHG-1.json",
        "customers/-hts/CHG-1.json",
        "customers/hts/CHG+1.json",  # '+' decodes to a space
        "customers/hts/%00.json",
        "customers/hts/CHG%E2%80%AE1.json",  # unicode right-to-left override
        "drafts/CHG-1.json",
        "customers/" + "a" * 40 + "/x.json",
        "customers/hts/" + "x" * 2000 + ".json",
        "",
    ],
)
def test_unsafe_or_malformed_keys_are_refused(raw: str) -> None:
    with pytest.raises(keys.InvalidKeyError):
        keys.parse_trigger_key(raw)


def test_eventbridge_keys_are_not_decoded_twice() -> None:
    with pytest.raises(keys.InvalidKeyError):
        keys.parse_trigger_key("customers/hts/CHG%2D1.json", encoded=False)
    assert keys.parse_trigger_key("customers/hts/CHG-1.json", encoded=False).change_id == "CHG-1"


def test_key_builders_validate() -> None:
    assert keys.archive_key("CHG-1") == "archive/CHG-1.json"
    assert keys.draft_key("CHG-1") == "drafts/CHG-1.json"
    with pytest.raises(keys.InvalidKeyError, match="invalid change id"):
        keys.archive_key("../etc/passwd")
    with pytest.raises(keys.InvalidKeyError, match="invalid customer code"):
        keys.trigger_key("HTS", "CHG-1")
