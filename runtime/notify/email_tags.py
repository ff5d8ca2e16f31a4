"""The SES message tags on every email, and reading them back from a delivery event (issue 13).

SES copies an email's ``EmailTags`` into every event it publishes for that email (``mail.tags``, each
name mapped to a list of values), so a delivery event names its change, customer and revision without a
lookup. SES v2 accepts a tag value made of "ASCII letters (a-z, A-Z), numbers (0-9), underscores (_),
or dashes (-)", at most 256 characters (MessageTag, SES API v2 reference:
https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_MessageTag.html). A change id may also hold
``.`` and ``_`` (``runtime.contract.keys.CHANGE_ID_PATTERN``), so values are encoded reversibly:

* a value of only letters, digits and ``-`` is sent as it is (``CHG-2026-0001``: readable in the SES
  console and in every event);
* any other value becomes ``_`` followed by the unpadded URL-safe base64 of its UTF-8 bytes
  (``CHG.1`` → ``_Q0hHLjE``): base64url's alphabet is exactly SES's 64 characters, and 4 characters per
  3 bytes keep every valid change id (at most 128 ASCII characters) within 256 (at most 172).

A plain value never holds ``_``, so the leading ``_`` tells the two apart and ``decode(encode(v)) == v``
for every string. This module is the one encode/decode pair: the sender (:mod:`runtime.notify.ses`) and
the delivery-event consumer both use it.
"""

from __future__ import annotations

import base64
import binascii
import re

from runtime.contract.names import EMAIL_TAG_CHANGE_ID, EMAIL_TAG_CUSTOMER_CODE, EMAIL_TAG_REVISION

MAX_TAG_VALUE_LENGTH = 256
_PLAIN = re.compile(r"^[A-Za-z0-9-]+$")
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_ENCODED_MARK = "_"


class EmailTagError(ValueError):
    """A tag value that cannot be encoded within SES's limit, or an event tag that is not one of ours."""


def encode_tag_value(value: str) -> str:
    """``value`` as an SES tag value (see the module docstring); raises when it would exceed 256 characters."""
    if not value:
        raise EmailTagError("an SES tag value cannot be empty")
    if _PLAIN.match(value):
        encoded = value
    else:
        encoded = _ENCODED_MARK + base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
    if len(encoded) > MAX_TAG_VALUE_LENGTH:
        raise EmailTagError(
            f"{value[:40]!r}… encodes to {len(encoded)} characters, over SES's {MAX_TAG_VALUE_LENGTH} for a tag value"
        )
    return encoded


def decode_tag_value(encoded: str) -> str:
    """The value :func:`encode_tag_value` encoded; raises :class:`EmailTagError` for anything it cannot produce."""
    if _PLAIN.match(encoded):
        return encoded
    body = encoded[len(_ENCODED_MARK) :]
    if not encoded.startswith(_ENCODED_MARK) or not _BASE64URL.match(body) or len(body) % 4 == 1:
        raise EmailTagError(
            f"{encoded[:80]!r} is not an encoded tag value (letters, digits and '-', or '_' + base64url)"
        )
    try:
        value = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise EmailTagError(f"{encoded[:80]!r} does not decode to UTF-8 text") from None
    if not value or _PLAIN.match(value) or encode_tag_value(value) != encoded:
        raise EmailTagError(f"{encoded[:80]!r} is not how this value is encoded")  # one encoding per value
    return value


def email_tags(change_id: str, customer_code: str, revision: int) -> list[dict[str, str]]:
    """The ``EmailTags`` of one email: change id, customer code and revision, each encoded."""
    return [
        {"Name": EMAIL_TAG_CHANGE_ID, "Value": encode_tag_value(change_id)},
        {"Name": EMAIL_TAG_CUSTOMER_CODE, "Value": encode_tag_value(customer_code)},
        {"Name": EMAIL_TAG_REVISION, "Value": encode_tag_value(str(revision))},
    ]


def tags_from_event(mail_tags: dict[str, list[str]]) -> tuple[str, str, int]:
    """``(change_id, customer_code, revision)`` from an SES event's ``mail.tags``.

    Raises :class:`EmailTagError` naming the tag when one is missing, repeated or malformed: such an
    event was not sent by this platform's worker (or was altered), and the consumer dead-letters it.
    """
    values: list[str] = []
    for name in (EMAIL_TAG_CHANGE_ID, EMAIL_TAG_CUSTOMER_CODE, EMAIL_TAG_REVISION):
        found = mail_tags.get(name)
        if not isinstance(found, list) or len(found) != 1 or not isinstance(found[0], str):
            raise EmailTagError(f"mail.tags[{name!r}] must hold exactly one value, found {found!r}")
        values.append(decode_tag_value(found[0]))
    change_id, customer_code, revision = values
    if not revision.isdigit() or not revision.isascii():
        raise EmailTagError(f"mail.tags[{EMAIL_TAG_REVISION!r}] must be a whole number, found {revision!r}")
    return change_id, customer_code, int(revision)
