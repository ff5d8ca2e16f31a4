"""Issue 13: the SES message tags of every email and reading them back from a delivery event."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.contract.keys import CHANGE_ID_PATTERN
from runtime.contract.names import EMAIL_TAG_CHANGE_ID, EMAIL_TAG_CUSTOMER_CODE, EMAIL_TAG_REVISION
from runtime.notify.email_tags import (
    EmailTagError,
    decode_tag_value,
    email_tags,
    encode_tag_value,
    tags_from_event,
)

SES_TAG_VALUE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # SES v2 MessageTag: letters, digits, _ and -, ≤ 256


def test_plain_values_are_sent_as_they_are() -> None:
    assert encode_tag_value("CHG-2026-0001") == "CHG-2026-0001"
    assert decode_tag_value("CHG-2026-0001") == "CHG-2026-0001"


def test_characters_ses_refuses_are_encoded_and_come_back() -> None:
    assert encode_tag_value("CHG.1") == "_Q0hHLjE"  # "_" + base64url("CHG.1"), unpadded
    assert decode_tag_value("_Q0hHLjE") == "CHG.1"
    assert decode_tag_value(encode_tag_value("a_b")) == "a_b"
    assert decode_tag_value(encode_tag_value("é ✓")) == "é ✓"


@given(st.text(min_size=1, max_size=150))
def test_every_string_round_trips_through_a_value_ses_accepts(value: str) -> None:
    try:
        encoded = encode_tag_value(value)
    except EmailTagError:
        assert len(value.encode()) > 191  # only a value over 256 characters once encoded is refused
        return
    assert SES_TAG_VALUE.match(encoded), encoded
    assert decode_tag_value(encoded) == value


@given(st.from_regex(rf"\A{CHANGE_ID_PATTERN}\Z"))
def test_every_valid_change_id_fits_an_ses_tag(change_id: str) -> None:
    assert SES_TAG_VALUE.match(encode_tag_value(change_id))


def test_the_longest_change_id_of_dots_fits() -> None:
    longest = "A" + "." * 127
    assert len(encode_tag_value(longest)) <= 172 and decode_tag_value(encode_tag_value(longest)) == longest


def test_a_value_too_long_for_ses_is_refused_with_the_limit() -> None:
    with pytest.raises(EmailTagError, match="over SES's 256"):
        encode_tag_value("." * 200)  # 268 characters once encoded
    with pytest.raises(EmailTagError, match="empty"):
        encode_tag_value("")


@pytest.mark.parametrize("bad", ["", "a.b", "_", "_Q", "a b", "_YWJj", "_w4", "_Q0hHLjE="])
def test_a_value_the_encoder_cannot_produce_is_refused(bad: str) -> None:
    with pytest.raises(EmailTagError):
        decode_tag_value(bad)


def test_email_tags_name_change_customer_and_revision() -> None:
    assert email_tags("CHG.7", "hts", 3) == [
        {"Name": EMAIL_TAG_CHANGE_ID, "Value": "_Q0hHLjc"},
        {"Name": EMAIL_TAG_CUSTOMER_CODE, "Value": "hts"},
        {"Name": EMAIL_TAG_REVISION, "Value": "3"},
    ]


def test_tags_from_an_event_reverse_email_tags() -> None:
    mail_tags = {tag["Name"]: [tag["Value"]] for tag in email_tags("CHG.7_x", "customer-a", 12)}
    mail_tags["ses:configuration-set"] = ["ttp-customer-a"]  # SES's own tags are ignored
    assert tags_from_event(mail_tags) == ("CHG.7_x", "customer-a", 12)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({EMAIL_TAG_CHANGE_ID: None}, EMAIL_TAG_CHANGE_ID),
        ({EMAIL_TAG_CUSTOMER_CODE: ["a", "b"]}, EMAIL_TAG_CUSTOMER_CODE),
        ({EMAIL_TAG_REVISION: ["x"]}, "whole number"),
        ({EMAIL_TAG_CHANGE_ID: ["a.b"]}, "not an encoded tag value"),
        ({EMAIL_TAG_CHANGE_ID: ["_w4"]}, "UTF-8"),
    ],
)
def test_an_event_without_our_tags_is_refused_naming_the_tag(change: dict[str, list[str] | None], why: str) -> None:
    mail_tags: dict[str, list[str]] = {
        EMAIL_TAG_CHANGE_ID: ["C"],
        EMAIL_TAG_CUSTOMER_CODE: ["a"],
        EMAIL_TAG_REVISION: ["1"],
    }
    for name, values in change.items():
        if values is None:
            del mail_tags[name]
        else:
            mail_tags[name] = values
    with pytest.raises(EmailTagError, match=re.escape(why)):
        tags_from_event(mail_tags)
