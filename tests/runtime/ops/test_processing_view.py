"""Reading a customer's processing object for the ops procedures and the sweeper."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from runtime.ops.processing_view import read_processing


class OneObject:
    """An S3 client answering one GET, with the ``Date`` header as given."""

    def __init__(self, body: dict[str, Any], date: str) -> None:
        self.body, self.date = json.dumps(body).encode(), date

    def get_object(self, **_: Any) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.body), "ResponseMetadata": {"HTTPHeaders": {"date": self.date}}}


def test_a_repeated_date_header_is_read_as_gmt_and_the_lease_is_judged_on_it() -> None:
    """moto's server over HTTP sends ``Date`` twice ("d GMT, d GMT"), which parses to a naive time; the
    sweeper compared it with the lease's aware expiry and every pass failed for that trigger (TypeError)."""
    expires = datetime(2026, 11, 30, 12, 5, tzinfo=UTC)
    doc = {
        "customer_code": "hts",
        "change_id": "CHG-1",
        "lease": {"owner": "sqs:m:1", "revision": 1, "expires_at": expires.isoformat()},
    }
    stamp = "Mon, 30 Nov 2026 12:00:00 GMT"
    read = read_processing(OneObject(doc, f"{stamp}, {stamp}"), "b", "hts", "CHG-1")
    assert read.storage_now == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert read.lease_live(datetime.now(UTC) + timedelta(days=1))  # the storage clock decides, not the local one
