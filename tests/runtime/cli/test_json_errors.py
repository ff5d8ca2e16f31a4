"""Issue 22: under ``--json`` every error of every command is exactly one JSON document on stdout, or
nothing there, with a non-zero documented exit code (docs/runbook.md "Exit codes") and no traceback.

The walk covers each command's own error paths (bad arguments and values, a missing archive, log group
or customer) and the ones every command shares (missing variables, an unknown option, a bucket that
does not exist, an unreachable endpoint). The commands are enumerated from the typer app: a new command
with ``--json`` fails :func:`test_every_json_command_has_its_error_paths_walked` until it is added here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from runtime.cli import app
from runtime.contract.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_USAGE
from tests.runtime.cli.test_cli_failures import SENDER_ENV, closed_port, command_line, quick_retries
from tests.runtime.cli.test_json_output import json_commands
from tests.support.aws_platform import Platform
from tests.support.ops_platform import ops_env

__all__ = ["quick_retries"]

DOCUMENTED_ERRORS = {EXIT_ATTENTION, EXIT_USAGE, EXIT_FAILED}
"""docs/runbook.md "Exit codes": 1 needs attention, 2 bad input, 3 failed (130, Ctrl-C, is not walked here)."""

BAD_DOCUMENT = "bad.json"
NOT_JSON = "not-json.json"

CASES: list[tuple[str, list[str], int]] = [
    # (command path, arguments after it (``--json`` is added), the exit code it must end with)
    ("process", ["--customer", "Bad_Code", "--change-id", "CHG-1"], EXIT_USAGE),
    ("process", ["--customer", "nobody", "--change-id", "CHG-1"], EXIT_USAGE),
    ("process", ["--customer", "hts", "--change-id", "../etc"], EXIT_USAGE),
    ("process", ["--customer", "hts", "--change-id", "CHG-ORPHAN"], EXIT_FAILED),  # a trigger, no archive
    ("submit", ["no-such-file.json"], EXIT_USAGE),
    ("submit", [NOT_JSON], EXIT_USAGE),
    ("submit", [BAD_DOCUMENT], EXIT_USAGE),
    ("submit", ["change.json", "--customers", "nobody"], EXIT_USAGE),
    ("health", ["--older-than", "soon"], EXIT_USAGE),
    ("health", ["--customer", "nobody"], EXIT_USAGE),
    ("verify", ["../etc"], EXIT_USAGE),
    ("verify", ["CHG-NONE"], EXIT_FAILED),
    ("stuck", ["--older-than", "-5m"], EXIT_USAGE),
    ("stuck", ["--customer", "nobody"], EXIT_USAGE),
    ("cleanup", ["--customer", "Bad_Code"], EXIT_USAGE),
    ("cleanup", ["--remove-invalid", "archive/CHG-1.json"], EXIT_USAGE),
    ("restore", ["CHG-1"], EXIT_USAGE),
    ("restore", ["CHG-1", "--before", "yesterday-ish"], EXIT_USAGE),
    ("restore", ["../etc", "--list"], EXIT_USAGE),
    ("restore", ["CHG-NONE", "--list"], EXIT_FAILED),
    ("dashboard-json", ["--all", "--customers", "Bad_Code"], EXIT_USAGE),
    ("dashboard-json", ["--customers", "hts"], EXIT_USAGE),  # --customers only means something with --all
    ("dashboard-json", ["--region", "not a region"], EXIT_USAGE),
    ("sweep", [], EXIT_USAGE),  # run with no TTP_* variables (below)
    ("restart", ["--customer", "hts"], EXIT_USAGE),  # no --yes: --json never prompts
    ("restart", ["--customer", "nobody", "--yes"], EXIT_USAGE),
    ("restart", ["--customer", "hts", "--yes"], EXIT_FAILED),  # no cluster here
    ("logs", ["--customer", "hts"], EXIT_FAILED),  # no log group here
    ("logs", ["--customer", "hts", "--since", "whenever"], EXIT_USAGE),
    ("logs", ["--customer", "hts", "--max", "0"], EXIT_USAGE),
    ("logs", ["--customer", "Bad_Code"], EXIT_USAGE),
    ("dlq list", ["--customer", "nobody"], EXIT_USAGE),
    ("dlq list", ["--customer", "hts", "--max", "0"], EXIT_USAGE),
    ("dlq redrive", ["--customer", "nobody"], EXIT_USAGE),
    ("dlq redrive", ["--customer", "coordinator"], EXIT_FAILED),  # its queue is not deployed here
]
NO_VARIABLES = {"sweep"}
"""Cases run with every ``TTP_*`` variable unset."""


def problem(result: Result, expected: int) -> str | None:
    """What is wrong with an erring ``--json`` run, or None."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"raised {type(result.exception).__name__}: {result.exception}"
    if "Traceback" in result.output:
        return "printed a traceback"
    if result.exit_code not in DOCUMENTED_ERRORS or result.exit_code != expected:
        return f"exit {result.exit_code}, not {expected}"
    if result.stdout.strip():
        try:
            json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            return f"stdout is neither empty nor one JSON document ({exc})"
    if not result.stderr.strip() and not result.stdout.strip():
        return "nothing says what went wrong"
    return None


def report(failures: dict[str, tuple[str, Result]]) -> str:
    return "\n\n".join(
        f"{line}: {why}\n--- stdout\n{r.stdout[-1500:]}--- stderr\n{r.stderr[-1500:]}"
        for line, (why, r) in failures.items()
    )


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(app, args)


@pytest.fixture
def documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "change.json").write_text(json.dumps({"change_id": "CHG-2", "title": "T", "customers": ["hts"]}))
    (tmp_path / BAD_DOCUMENT).write_text(json.dumps({"change_id": "CHG-3", "customers": ["hts"], "title": ""}))
    (tmp_path / NOT_JSON).write_text("{ not json")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_json_command_has_its_error_paths_walked() -> None:
    walked = {path for path, _, _ in CASES}
    missing = {" ".join(path) for path, _ in json_commands()} - walked
    assert not missing, f"add their error paths to CASES: {sorted(missing)}"


def test_every_commands_own_errors_under_json_are_one_document_or_nothing(
    light: Platform, monkeypatch: pytest.MonkeyPatch, documents: Path
) -> None:
    light.submit("CHG-1", ["hts"])
    light.s3.put_object(Bucket=light.bucket, Key="customers/hts/CHG-ORPHAN.json", Body=b"")
    env = {**ops_env(light, COLUMNS="160"), **SENDER_ENV}
    failures = {}
    for path, args, expected in CASES:
        for name, value in env.items():
            if path in NO_VARIABLES:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        line = " ".join([path, *args, "--json"])
        result = invoke([*path.split(), *args, "--json"])
        why = problem(result, expected)
        if why:
            failures[line] = (why, result)
    assert not failures, report(failures)


def shared_error_runs(documents: Path) -> list[tuple[str, list[str]]]:
    """Every ``--json`` command's valid command line, and the same with an option it does not know."""
    runs = []
    for path, command in json_commands():
        args = [*command_line(path, command, documents / "change.json"), "--json"]
        runs.append((" ".join(path), args))
    return runs


def test_unknown_options_and_missing_variables_under_json(
    aws_credentials: None, monkeypatch: pytest.MonkeyPatch, documents: Path
) -> None:
    for name in ("TTP_BUCKET_NAME", "TTP_CUSTOMER_QUEUES", "TTP_CUSTOMER_CODES"):
        monkeypatch.delenv(name, raising=False)
    failures = {}
    for name, args in shared_error_runs(documents):
        unknown = invoke([*args, "--no-such-option"])
        why = problem(unknown, EXIT_USAGE)
        if why:
            failures[f"{' '.join(args)} --no-such-option"] = (why, unknown)
        if name in ("dashboard-json", "logs"):  # read no TTP_* variable
            continue
        unset = invoke(args)
        why = problem(unset, EXIT_USAGE)
        if why:
            failures[f"{' '.join(args)} (no TTP_* variables)"] = (why, unset)
    assert not failures, report(failures)


def test_a_missing_bucket_under_json(light: Platform, monkeypatch: pytest.MonkeyPatch, documents: Path) -> None:
    light.submit("CHG-1", ["hts"])
    for name, value in {**ops_env(light, TTP_BUCKET_NAME="no-such-bucket-here"), **SENDER_ENV}.items():
        monkeypatch.setenv(name, value)
    reads_the_bucket = {"process", "submit", "health", "verify", "stuck", "cleanup", "restore", "sweep"}
    failures = {}
    walked = set()
    for name, args in shared_error_runs(documents):
        if name not in reads_the_bucket:
            continue
        walked.add(name)
        result = invoke(args)
        why = problem(result, EXIT_FAILED)
        if why:
            failures[" ".join(args)] = (why, result)
    assert walked == reads_the_bucket
    assert not failures, report(failures)


def test_an_unreachable_endpoint_under_json(
    aws_credentials: None, monkeypatch: pytest.MonkeyPatch, documents: Path, quick_retries: Any
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "TTP_BUCKET_NAME": "ttp-metadata-local",
        "TTP_CUSTOMER_QUEUES": json.dumps({"hts": f"{endpoint}/123456789012/customer-hts-changes"}),
        **SENDER_ENV,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    failures = {}
    for name, args in shared_error_runs(documents):
        if name == "dashboard-json":  # calls no AWS without --all
            continue
        result = invoke(args)
        why = problem(result, EXIT_FAILED)
        if why:
            failures[" ".join(args)] = (why, result)
    assert not failures, report(failures)
