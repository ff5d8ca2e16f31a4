"""What an EventBridge target receives on the emulator: ``Input``, ``InputPath`` and input transformers,
as the ``Target`` reference describes them. Before, ``Input`` and ``InputPath`` were reported as not
emulated."""

from __future__ import annotations

import json

import pytest

from devtools.local_deploy.event_routing import _input

EVENT = {
    "id": "e-1",
    "source": "aws.s3",
    "detail-type": "Object Created",
    "detail": {"bucket": {"name": "b"}, "object": {"key": "triggers/hts/CHG-1.json", "etag": "abc"}},
}


def test_input_is_passed_as_it_is_and_nothing_of_the_event() -> None:
    target = {"Id": "t", "Arn": "arn:aws:sqs:us-east-1:111111111111:q", "Input": '{"fixed": true}'}
    assert _input(target, EVENT) == '{"fixed": true}'


@pytest.mark.parametrize(
    ("path", "expected"),
    [("$", EVENT), ("$.detail", EVENT["detail"]), ("$.detail.object.key", "triggers/hts/CHG-1.json")],
)
def test_input_path_selects_part_of_the_event(path: str, expected: object) -> None:
    target = {"Id": "t", "Arn": "arn:aws:sqs:us-east-1:111111111111:q", "InputPath": path}
    assert json.dumps(_input(target, EVENT)) == json.dumps(expected)


@pytest.mark.parametrize("path", ["$.detail[0]", "$..key", "$.detail.missing"])
def test_an_input_path_not_emulated_is_reported_naming_the_path(path: str) -> None:
    target = {"Id": "t", "Arn": "arn:aws:sqs:us-east-1:111111111111:q", "InputPath": path}
    with pytest.raises(NotImplementedError, match=path.replace("$", r"\$").replace("[", r"\[").replace(".", r"\.")):
        _input(target, EVENT)


def test_without_input_options_the_whole_event_is_sent() -> None:
    assert _input({"Id": "t", "Arn": "arn:aws:sqs:us-east-1:111111111111:q"}, EVENT) is EVENT
