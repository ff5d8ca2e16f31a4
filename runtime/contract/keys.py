"""Object key layout of the metadata bucket, and strict parsing of keys that arrive in events.

The bucket has four prefixes: ``archive/{change_id}.json`` (the single source of truth for the change),
``customers/{customer_code}/{change_id}.json`` (transient triggers), ``processing/{customer_code}/{change_id}.json``
(one customer's processing of one change, written only by that customer's processor) and
``drafts/{change_id}.json``.
Keys arriving in S3 event notifications are URL-encoded (``/`` too); every key is decoded with
``unquote_plus`` before it is validated. Customer codes and change ids are restricted to characters
that URL-encoding leaves alone, so a valid key reads the same whether or not an envelope encoded it,
and no traversal (``..``, ``/``, ``%2F``) can survive validation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

ARCHIVE_PREFIX = "archive/"
CUSTOMERS_PREFIX = "customers/"
PROCESSING_PREFIX = "processing/"
DRAFTS_PREFIX = "drafts/"
DELIVERY_PREFIX = "delivery/"
"""``delivery/{code}/{id}.json``: per-recipient delivery status of a customer's emails for a change,
written only by the delivery-event consumer (docs/design.md §1: one kind of writer per object)."""
SUFFIX = ".json"

# Lower-case, used verbatim in queue, service and IAM role names (role names are capped at 64).
CUSTOMER_CODE_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?"
CHANGE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_CUSTOMER_CODE_RE = re.compile(rf"^{CUSTOMER_CODE_PATTERN}$")
_CHANGE_ID_RE = re.compile(rf"^{CHANGE_ID_PATTERN}$")
MAX_KEY_LENGTH = 1024


class InvalidKeyError(ValueError):
    """A key, customer code or change id that the pipeline refuses to act on."""


def validate_customer_code(code: str) -> str:
    if not isinstance(code, str) or not _CUSTOMER_CODE_RE.fullmatch(code):
        raise InvalidKeyError(
            f"invalid customer code {code!r}: use 1-32 lower-case letters, digits or '-', "
            "starting and ending with a letter or digit (e.g. 'hts', 'customer-a')"
        )
    return code


def validate_change_id(change_id: str) -> str:
    if (
        not isinstance(change_id, str)
        or not _CHANGE_ID_RE.fullmatch(change_id)
        or ".." in change_id
        or change_id.endswith(".")
    ):
        raise InvalidKeyError(
            f"invalid change id {change_id!r}: use 1-128 letters, digits, '-', '_' or single '.', "
            "starting with a letter or digit (e.g. 'CHG-2026-0001')"
        )
    return change_id


def archive_key(change_id: str) -> str:
    return f"{ARCHIVE_PREFIX}{validate_change_id(change_id)}{SUFFIX}"


def fold_segment_prefix(change_id: str) -> str:
    """``archive/{change_id}/folds/``: the change's fold segments (the coordinator's folded results).

    Their keys end without ``.json`` on purpose: the routes (``archive/*.json``) send no event for them and
    the listings that parse ``archive/{id}.json`` skip them."""
    return f"{ARCHIVE_PREFIX}{validate_change_id(change_id)}/folds/"


def fold_segment_key(change_id: str, seq: int) -> str:
    """``archive/{change_id}/folds/{seq}``, ``seq`` zero-padded so a listing returns them in order."""
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= 99_999_999:
        raise InvalidKeyError(f"invalid fold segment number {seq!r}: use 1-99999999")
    return f"{fold_segment_prefix(change_id)}{seq:08d}"


def fold_head_key(change_id: str) -> str:
    """``archive/{change_id}/folds/head``: which segments count (written by the coordinator by compare-and-swap)."""
    return f"{fold_segment_prefix(change_id)}head"


def parse_fold_head_key(key: str) -> str:
    """The change id of ``archive/{change_id}/folds/head``."""
    tail = "/folds/head"
    if not key.startswith(ARCHIVE_PREFIX) or not key.endswith(tail):
        raise InvalidKeyError(f"key {key!r} is not of the form archive/{{change_id}}/folds/head")
    return validate_change_id(key[len(ARCHIVE_PREFIX) : -len(tail)])


def draft_key(change_id: str) -> str:
    return f"{DRAFTS_PREFIX}{validate_change_id(change_id)}{SUFFIX}"


def trigger_prefix(customer_code: str) -> str:
    return f"{CUSTOMERS_PREFIX}{validate_customer_code(customer_code)}/"


def trigger_key(customer_code: str, change_id: str) -> str:
    return f"{trigger_prefix(customer_code)}{validate_change_id(change_id)}{SUFFIX}"


def processing_prefix(customer_code: str) -> str:
    return f"{PROCESSING_PREFIX}{validate_customer_code(customer_code)}/"


def processing_key(customer_code: str, change_id: str) -> str:
    return f"{processing_prefix(customer_code)}{validate_change_id(change_id)}{SUFFIX}"


def delivery_prefix(customer_code: str) -> str:
    return f"{DELIVERY_PREFIX}{validate_customer_code(customer_code)}/"


def delivery_key(customer_code: str, change_id: str) -> str:
    return f"{delivery_prefix(customer_code)}{validate_change_id(change_id)}{SUFFIX}"


@dataclass(frozen=True)
class TriggerRef:
    """A validated trigger location: which customer, which change."""

    customer_code: str
    change_id: str

    @property
    def key(self) -> str:
        return trigger_key(self.customer_code, self.change_id)

    @property
    def archive_key(self) -> str:
        return archive_key(self.change_id)

    @property
    def processing_key(self) -> str:
        return processing_key(self.customer_code, self.change_id)

    @property
    def delivery_key(self) -> str:
        return delivery_key(self.customer_code, self.change_id)


def decode_event_key(raw_key: str) -> str:
    """Decode a key as S3 event notifications encode it (``+`` for space, ``%2F`` for ``/``)."""
    return unquote_plus(raw_key)


def parse_trigger_key(key: str, *, encoded: bool = True) -> TriggerRef:
    """Parse ``customers/{code}/{change_id}.json``; anything else raises :class:`InvalidKeyError`."""
    return _parse_customer_key(key, CUSTOMERS_PREFIX, encoded=encoded)


def parse_processing_key(key: str, *, encoded: bool = True) -> TriggerRef:
    """Parse ``processing/{code}/{change_id}.json``; anything else raises :class:`InvalidKeyError`."""
    return _parse_customer_key(key, PROCESSING_PREFIX, encoded=encoded)


def parse_delivery_key(key: str, *, encoded: bool = True) -> TriggerRef:
    """Parse ``delivery/{code}/{change_id}.json``; anything else raises :class:`InvalidKeyError`."""
    return _parse_customer_key(key, DELIVERY_PREFIX, encoded=encoded)


def _parse_customer_key(key: str, prefix: str, *, encoded: bool) -> TriggerRef:
    if not isinstance(key, str) or not key:
        raise InvalidKeyError("empty object key")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"object key longer than {MAX_KEY_LENGTH} characters")
    decoded = decode_event_key(key) if encoded else key
    if not decoded.startswith(prefix):
        raise InvalidKeyError(f"key {decoded!r} is not under {prefix!r}")
    rest = decoded[len(prefix) :]
    parts = rest.split("/")
    if len(parts) != 2:
        raise InvalidKeyError(f"key {decoded!r} is not of the form {prefix}{{customer}}/{{change_id}}.json")
    code, filename = parts
    if not filename.endswith(SUFFIX):
        raise InvalidKeyError(f"key {decoded!r} does not end in {SUFFIX}")
    return TriggerRef(validate_customer_code(code), validate_change_id(filename[: -len(SUFFIX)]))


def parse_archive_key(key: str) -> str:
    """Return the change id of ``archive/{change_id}.json``."""
    if not key.startswith(ARCHIVE_PREFIX) or not key.endswith(SUFFIX):
        raise InvalidKeyError(f"key {key!r} is not of the form archive/{{change_id}}.json")
    return validate_change_id(key[len(ARCHIVE_PREFIX) : -len(SUFFIX)])
