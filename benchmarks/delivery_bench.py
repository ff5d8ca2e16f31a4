"""What one delivery-status write costs as a change's recipient list grows (``delivery/{code}/{id}.json``).

The delivery-event consumer rewrites the whole delivery object per batch of events: it parses the
object, applies the events and serialises it again (then S3 GET + conditional PUT, not measured here).
This prints, for a document of N recipients of one revision, its size and the CPU time of that
parse + apply + serialise cycle for one batch of events. No AWS, no emulator.

    python -m benchmarks.delivery_bench [--recipients 100,1000,10000,50000]
    python -m benchmarks.delivery_bench --smallest    # 100 recipients only: what tests/test_benchmarks.py runs
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

from runtime.archive.delivery import DeliveryDocument, RecipientEvent, RecipientStatus

T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _status(kind: str, seconds: int) -> RecipientStatus:
    return RecipientStatus.model_validate(
        {"status": kind, "event_time": T0 + timedelta(seconds=seconds), "message_id": "0100-" + "a" * 55, "revision": 1}
    )


def _document(recipients: int) -> bytes:
    doc = DeliveryDocument.model_validate({"customer_code": "hts", "change_id": "CHG-BENCH"})
    doc, _ = doc.apply(
        [RecipientEvent(f"person{i}@customer.example.com", _status("sent", 0)) for i in range(recipients)]
    )
    return json.dumps(doc.to_json_dict(), separators=(",", ":")).encode()


def cycle(body: bytes, batch: int, seconds: int) -> float:
    started = time.perf_counter()
    doc = DeliveryDocument.model_validate_json(body)
    events = [RecipientEvent(f"person{i}@customer.example.com", _status("delivered", seconds)) for i in range(batch)]
    doc, _ = doc.apply(events)
    json.dumps(doc.to_json_dict(), separators=(",", ":")).encode()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", default="100,1000,10000,50000", help="comma-separated document sizes")
    parser.add_argument(
        "--smallest", action="store_true", help="only the smallest size, 100 recipients (the test suite's run)"
    )
    args = parser.parse_args()
    if args.smallest:
        args.recipients = "100"
    print(f"{'recipients':>10} {'object bytes':>13} {'bytes/recipient':>16} {'batch':>6} {'ms per write':>13}")
    for recipients in [int(n) for n in args.recipients.split(",") if n]:
        body = _document(recipients)
        for batch in (1, 32):
            runs = [cycle(body, batch, seconds) for seconds in range(1, 6)]
            print(
                f"{recipients:>10} {len(body):>13,} {len(body) / recipients:>16.0f} {batch:>6} "
                f"{min(runs) * 1000:>13.1f}"
            )


if __name__ == "__main__":
    main()
