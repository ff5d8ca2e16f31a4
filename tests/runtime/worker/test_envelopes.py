"""Queue message envelopes: S3 notifications, EventBridge events, s3:TestEvent, poison bodies."""

from __future__ import annotations

import json

import pytest

from runtime.worker import UnparseableMessage, parse_message_body

# ---- envelopes ----------------------------------------------------------------------------------


def test_envelopes() -> None:
    s3 = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "customers%2Fhts%2FX.json", "eTag": "e"}},
            }
        ]
    }
    [record] = parse_message_body(json.dumps(s3))
    assert record.key_is_url_encoded and record.bucket == "b" and record.etag == "e"
    eventbridge = {
        "version": "0",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "customers/hts/X.json", "etag": "e"}},
    }
    [record] = parse_message_body(json.dumps(eventbridge))
    assert not record.key_is_url_encoded and record.key == "customers/hts/X.json"
    assert parse_message_body(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})) == []


@pytest.mark.parametrize(
    "body",
    [
        "",
        "null",
        "[]",
        "42",
        '{"Records": []}',
        '{"Records": [{}]}',
        json.dumps(
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectRemoved:Delete",
                        "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}},
                    }
                ]
            }
        ),
        json.dumps({"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}}),
        json.dumps({"Event": "s3:TestEvent"}),
        "[" * 100000,
        "x" * (300 * 1024),
    ],
)
def test_unparseable_bodies_raise_a_clear_error(body: str) -> None:
    with pytest.raises(UnparseableMessage):
        parse_message_body(body)
