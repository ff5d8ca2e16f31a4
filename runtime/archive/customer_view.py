"""A customer's view of a change document: the part its processor reads (issue 21).

The change document lists every customer twice (``customers`` and the ``submitted`` entry's list) and,
in documents of the older formats, one ``processed`` entry, lease and delivery count per customer.
A processor renders and records its own customer's part only, so validating everyone's part made each
of N processors pay O(N) (30.7 kB, 1,000 customer codes validated at N = 1,000). The view keeps the stored
format and reads it whole (``json.loads``, in C), then validates only what concerns its customer: the
document's own fields, its customer in ``customers``, the entries that name no customer or this one
(a ``submitted`` entry's list trimmed to this customer), and this customer's lease and delivery counts.

A document the view cannot trim faithfully (its ``customers`` is no list of distinct strings naming
the customer) is read whole, so its errors and refusals are the whole document's. A view is for
reading: :meth:`CustomerView.to_json_bytes` refuses, so it can never be written back over the
other customers' parts.
"""

from __future__ import annotations

from typing import Any

from runtime.archive.documents import ArchiveDocument, check_nesting, parse_json

PER_CUSTOMER_MAPS = ("leases", "processingLeases", "processing_leases", "delivery")
"""The document's fields keyed by customer code (every spelling the model reads)."""


class CustomerView(ArchiveDocument):
    """One customer's part of a change document (:func:`customer_view`): read-only."""

    def to_json_bytes(self) -> bytes:
        raise ValueError(
            f"a customer's view of {self.change_id} is read-only (it lacks the other customers' parts): "
            "load the whole document (ArchiveStore.load) to write it"
        )


def _names_another(entry: Any, customer_code: str) -> bool:
    if not isinstance(entry, dict):
        return False  # invalid: validation names it
    named = entry.get("customer_code", entry.get("customerCode"))
    return named is not None and named != customer_code


def _entry(entry: Any, customer_code: str) -> Any:
    if isinstance(entry, dict) and isinstance(entry.get("customers"), list):
        return {**entry, "customers": [customer_code] if customer_code in entry["customers"] else []}
    return entry


def _trimmed(data: Any, customer_code: str) -> dict[str, Any] | None:
    """``data`` with only ``customer_code``'s part, or None when trimming could hide an error."""
    if not isinstance(data, dict):
        return None
    customers = data.get("customers")
    if not isinstance(customers, list) or customer_code not in customers:
        return None
    if set(map(type, customers)) != {str} or len(set(customers)) != len(customers):  # C-speed passes
        return None
    view = {**data, "customers": [customer_code]}
    entries = data.get("modifications")
    if isinstance(entries, list):
        view["modifications"] = [_entry(e, customer_code) for e in entries if not _names_another(e, customer_code)]
    for name in PER_CUSTOMER_MAPS:
        mapping = data.get(name)
        if isinstance(mapping, dict):
            view[name] = {customer_code: mapping[customer_code]} if customer_code in mapping else {}
    return view


def customer_view(body: bytes, customer_code: str) -> ArchiveDocument:
    """``customer_code``'s view of the change document ``body``; the whole document when it cannot be
    trimmed (:func:`_trimmed`). Raises ``ValidationError`` as :meth:`ArchiveDocument.from_json_bytes`."""
    try:
        view = _trimmed(parse_json(body, check=False), customer_code)
        if view is not None:
            check_nesting(view)
    except ValueError:  # not JSON, nested too deep: the whole document's reader names the error
        view = None
    if view is None:
        return ArchiveDocument.from_json_bytes(body)
    return CustomerView.model_validate(view)
