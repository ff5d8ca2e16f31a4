"""``submit`` on the command line: bad documents end in one ``error:`` line naming the field, exit 2,
and nothing written (issue 11, items 2, 4 and 10); ``verify``, ``stuck`` and ``cleanup`` read a stored
document with a naive and an aware time without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.archive.triggers import TriggerStore
from runtime.contract.document_limits import MAX_CHANGE_DOCUMENT_BYTES
from runtime.contract.keys import TriggerRef
from tests.support.aws_platform import Platform
from tests.support.ops_platform import backdate, ops_env, put_raw, run


def write(tmp_path: Path, document: dict[str, object] | str) -> str:
    path = tmp_path / "change.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def nothing_written(platform: Platform) -> bool:
    return platform.s3.list_objects_v2(Bucket=platform.bucket, Prefix="archive/").get("KeyCount", 0) == 0


BASE = {"change_id": "CHG-1", "title": "Patch", "customers": ["hts"]}


@pytest.mark.parametrize(
    "document, expected",
    [
        (
            {**BASE, "meeting": {"start_time": "2026-03-01T10:00:00", "end_time": "2026-03-01T11:00:00Z"}},
            "meeting.start_time:",
        ),
        ('{"change_id": "CHG-1", "title": "t", "customers": ["hts"], "score": NaN}', "score: NaN"),
        ({**BASE, "description": "x" * MAX_CHANGE_DOCUMENT_BYTES}, f"limit is {MAX_CHANGE_DOCUMENT_BYTES:,} bytes"),
        (
            {**BASE, "implementation_start": "2026-03-01T23:00:00Z", "implementation_end": "2026-03-01T22:00:00Z"},
            "implementation_end (2026-03-01 22:00:00+00:00) is before implementation_start",
        ),
    ],
    ids=["naive-time", "nan", "too-large", "window-ends-before-it-starts"],
)
def test_submit_refuses_with_one_error_line(
    light: Platform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, document: dict[str, object] | str, expected: str
) -> None:
    result = run(monkeypatch, ops_env(light), "submit", write(tmp_path, document))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and expected in result.stderr and "nothing was written" in result.stderr
    assert nothing_written(light)


@pytest.mark.parametrize(
    "command", [["verify", "CHG-1"], ["stuck", "--older-than", "1s"], ["cleanup", "--dry-run"]], ids=lambda c: c[0]
)
def test_ops_commands_read_a_naive_and_an_aware_time_without_a_traceback(
    light: Platform, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """A document another writer stored with a naive and an aware time: the naive one is read as UTC."""
    meeting = {"start_time": "2026-03-01T10:00:00", "end_time": "2026-03-01T11:00:00Z"}
    put_raw(light, "archive/CHG-1.json", json.dumps({**BASE, "revision": 1, "meeting": meeting}))
    TriggerStore(light.s3, light.bucket).put(TriggerRef("hts", "CHG-1"), 1)
    backdate(light, "customers/hts/CHG-1.json", 60)
    result = run(monkeypatch, ops_env(light), *command)
    assert result.exit_code in (0, 1), result.output  # healthy or needs attention, not a failure
    assert "invalid" not in result.output.lower(), result.output


def test_a_stored_window_that_ends_before_it_starts_still_reads(
    light: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: the refusal is `submit`'s, not the model's: a stored change with such a window (written
    before the rule) is read by `verify`, and so by the processors, rather than dead-lettered."""
    window = {"implementation_start": "2026-03-01T23:00:00Z", "implementation_end": "2026-03-01T22:00:00Z"}
    put_raw(light, "archive/CHG-1.json", json.dumps({**BASE, "revision": 1, **window}))
    result = run(monkeypatch, ops_env(light), "verify", "CHG-1", "--json")
    assert result.exit_code in (0, 1), result.output
    assert json.loads(result.stdout)["change_id"] == "CHG-1"


def one_error_line(stderr: str) -> str:
    [line] = stderr.splitlines()
    assert line.startswith("error: ")
    return line


def test_submit_refuses_a_customer_that_is_not_deployed(
    light: Platform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 17: `hst` for `hts` was accepted: an archive and a trigger no queue will ever read."""
    document = write(tmp_path, {**BASE, "customers": ["hts", "hst"]})
    result = run(monkeypatch, ops_env(light), "submit", document)
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stderr)
    assert "hst not deployed" in line and "customer-a, hts, htsnonprod" in line and "nothing was written" in line
    assert nothing_written(light)
    assert light.s3.list_objects_v2(Bucket=light.bucket).get("KeyCount", 0) == 0


def test_submit_with_no_customer_registered_fails_naming_the_registry(
    light: Platform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A platform whose customer stacks predate the registry (or the wrong account or region): exit 3,
    what to deploy or check, nothing written."""
    import boto3

    ssm = boto3.client("ssm", region_name=light.box.region)
    for code in light.box.customers:
        ssm.delete_parameter(Name=f"/ttp/customers/{code}")
    result = run(monkeypatch, ops_env(light), "submit", write(tmp_path, BASE))
    assert result.exit_code == 3, result.output
    line = one_error_line(result.stderr)
    assert "no customer is registered under /ttp/customers" in line and "deploy the customer stacks" in line
    assert nothing_written(light)


def test_the_registry_is_read_10_names_per_call(light: Platform) -> None:
    """SSM's GetParameters takes at most 10 names: 23 codes are 3 calls, and one unknown among them is named."""
    import boto3

    from devtools.hand_layout import register_customers
    from runtime.ops.customers import registered, unregistered

    codes = [f"c{i:02d}" for i in range(22)]
    register_customers(codes, light.box.region)
    ssm = boto3.client("ssm", region_name=light.box.region)
    calls: list[int] = []
    ssm.meta.events.register(
        "provide-client-params.ssm.GetParameters", lambda params, **_: calls.append(len(params["Names"]))
    )
    assert unregistered(ssm, [*codes, "hts", "zzz"]) == ["zzz"]
    assert calls == [10, 10, 4]
    assert registered(ssm) == sorted([*codes, "customer-a", "hts", "htsnonprod"])


def test_an_unreadable_registry_names_the_permissions(light: Platform) -> None:
    import boto3

    from runtime.ops.customers import require_registered
    from runtime.ops.errors import OpsError
    from tests.support.aws_platform import Faulty, client_error

    ssm = Faulty(boto3.client("ssm", region_name=light.box.region))
    ssm.fail("get_parameters", client_error("AccessDeniedException", 400))
    with pytest.raises(
        OpsError, match=r"needs ssm:GetParameters and ssm:GetParametersByPath on parameter/ttp/customers/\*"
    ):
        require_registered(ssm, ["hts"])
