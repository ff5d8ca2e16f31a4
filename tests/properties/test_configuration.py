"""Bad configuration (issue 6, "Bad input"): every ``TTP_*`` value either loads or is refused with a
:class:`ConfigurationError` naming the variable — never another exception — and a process started
with it stops with that message (exit 2), not a traceback.

The property starts from a valid environment for each settings model and replaces (or unsets) one or
two variables with random values: text of any kind, numbers, JSON that is valid or nearly so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.contract.settings import ConfigurationError, MeetingSettings, OpsSettings, WorkerSettings, env_var, load
from tests.support.properties import bounded

ROOT = Path(__file__).resolve().parents[2]

VALID: dict[type, dict[str, str]] = {
    WorkerSettings: {
        "TTP_CUSTOMER_CODE": "hts",
        "TTP_BUCKET_NAME": "ttp-metadata",
        "TTP_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/ttp-hts",
        "TTP_SENDER_ROLE_ARN": "arn:aws:iam::333333333333:role/ttp-sender-hts",
        "TTP_SENDER_EXTERNAL_ID": "ttp-hts-external-id",
        "TTP_FROM_ADDRESS": "changes@hts.example.com",
    },
    OpsSettings: {
        "TTP_BUCKET_NAME": "ttp-metadata",
        "TTP_CUSTOMER_QUEUES": json.dumps({"hts": "https://sqs.us-east-1.amazonaws.com/123456789012/ttp-hts"}),
    },
    MeetingSettings: {},
}
MEETING_ON = {
    "TTP_GRAPH_TENANT_ID": "tenant",
    "TTP_GRAPH_CLIENT_ID": "client",
    "TTP_GRAPH_CLIENT_SECRET": "secret",
    "TTP_MEETING_ORGANIZER": "meetings@contoso.example",
    "TTP_CALENDAR_CONTACT_ROLES": json.dumps({"hts": "arn:aws:iam::333333333333:role/ttp-contacts-hts"}),
    "TTP_CONTACT_READER_EXTERNAL_ID": "reader",
}


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Exactly ``values`` as the TTP_* environment for the block (os.environ is restored afterwards)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("TTP_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("TTP_")]:
            del os.environ[key]
        os.environ.update(saved)


env_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
numbers = st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True)).map(str)
json_like = st.one_of(
    st.sampled_from(["{", "[]", "null", '{"hts": 1}', '{"BAD": "x"}', '{"hts": "not-an-arn"}', "{}", '""', "1e999"]),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3).map(json.dumps),
)
values = st.one_of(env_text, numbers, json_like, st.sampled_from(["", " ", "true", "DEBUG", "debug", "0", "-1"]))
UNSET = None


def _variables(model: type) -> list[str]:
    return sorted(env_var(name) for name in model.model_fields)


@st.composite
def environments(draw: st.DrawFn, model: type) -> tuple[dict[str, str], list[str]]:
    env = dict(VALID[model])
    if model is MeetingSettings and draw(st.booleans()):
        env.update(MEETING_ON)
    changed = draw(st.lists(st.sampled_from(_variables(model)), min_size=1, max_size=2, unique=True))
    for name in changed:
        value = draw(st.none() | values)
        if value is UNSET:
            env.pop(name, None)
        else:
            env[name] = value
    return env, changed


def _check(model: type, env: dict[str, str], changed: list[str]) -> None:
    with environment(env):
        try:
            load(model)
        except ConfigurationError as exc:
            assert any(name in str(exc) for name in changed), f"{exc!s} does not name {changed}"


@bounded(150)
@given(case=environments(WorkerSettings))
def test_worker_settings(case: tuple[dict[str, str], list[str]]) -> None:
    _check(WorkerSettings, *case)


@bounded(100)
@given(case=environments(OpsSettings))
def test_ops_settings(case: tuple[dict[str, str], list[str]]) -> None:
    _check(OpsSettings, *case)


@bounded(120)
@given(case=environments(MeetingSettings))
def test_meeting_settings(case: tuple[dict[str, str], list[str]]) -> None:
    _check(MeetingSettings, *case)


# ---- the processes: the message, not a traceback ----------------------------------------------------

PROCESS_CASES = [
    (["worker"], WorkerSettings, "TTP_LOG_LEVEL", "verbose"),
    (["worker"], WorkerSettings, "TTP_MAX_CONCURRENCY", "many"),
    # Graph / calendar settings are the change coordinator's now: the processor neither needs nor reads them
    (["worker"], WorkerSettings, "TTP_CONTACT_CACHE_SECONDS", "-1"),
    (["process", "--customer", "hts", "--change-id", "CHG-1"], WorkerSettings, "TTP_CONTACT_CACHE_SECONDS", "soon"),
    (["sweep"], OpsSettings, "TTP_CUSTOMER_QUEUES", "hts=https://sqs/queue"),
    (["sweep"], OpsSettings, "TTP_LOG_LEVEL", "loud"),
]


@pytest.mark.parametrize(("argv", "model", "variable", "value"), PROCESS_CASES)
def test_process_refuses_bad_configuration_by_name(argv: list[str], model: type, variable: str, value: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTP_")}
    env.update(
        {
            **VALID[model],
            variable: value,
            "PYTHONPATH": str(ROOT),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens: the process must stop before any call
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "runtime", *argv], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert variable in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout and "╭" not in done.stderr, done.stderr[-2000:]
