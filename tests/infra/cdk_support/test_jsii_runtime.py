"""The jsii kernel without its relay process (cdk_support/jsii_runtime.py, jsii_direct.js; synth time, issue 19).

Each test starts its own Python process: the choice of runtime is made before the kernel starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from cdk_support.jsii_runtime import (
    CHANNEL_MARKER,
    DIRECT_RUNTIME,
    PROGRAM_ENV,
    embedded_program,
    skip_argument_type_checks,
    use_direct_runtime,
)

REPO = Path(__file__).resolve().parents[3]

# The processes under this one: (pid, parent pid, command name) from /proc.
_NODE_TREE = textwrap.dedent(
    """
    import json, os
    from pathlib import Path
    rows = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        rows.append((int(entry.name), int(stat[stat.rindex(")") + 2 :].split()[1]), name))
    mine, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        children = [row for row in rows if row[1] == pid]
        mine.extend(children)
        todo.extend(row[0] for row in children)
    print(json.dumps([row[2] for row in mine]))
    """
)


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("JSII_RUNTIME", PROGRAM_ENV)}
    environ.update({"PYTHONPATH": str(REPO), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", **env})
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=environ, capture_output=True, text=True, timeout=120, check=True
    )


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts processes from /proc")
def test_app_py_runs_the_jsii_kernel_in_one_node_process() -> None:
    """app.py's kernel is one node process (jsii's default entry point adds a second one that relays every
    request and response)."""
    # Importing app.py runs its module-level set-up and imports aws_cdk, which starts the kernel.
    result = _python("import app\nimport aws_cdk\naws_cdk.App()\n" + _NODE_TREE)
    assert json.loads(result.stdout.splitlines()[-1]) == ["node"]


def test_the_direct_kernel_synthesizes_and_relays_javascript_s_console_output(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        from cdk_support.jsii_runtime import use_direct_runtime
        assert use_direct_runtime()
        from aws_cdk import App, Stack, aws_events as events
        app = App(outdir={str(tmp_path)!r})
        stack = Stack(app, "Small")
        # A deprecated property: jsii's warning is printed by JavaScript (console.error)
        events.CfnEventBusPolicy(stack, "Policy", statement_id="s", principal="123456789012", action="events:PutEvents")
        app.synth()
        print("synthesized")
        """
    )
    result = _python(code, CDK_VALIDATION="false")
    assert result.stdout.splitlines()[-1] == "synthesized"
    assert "aws-cdk-lib.aws_events.CfnEventBusPolicyProps#action is deprecated" in result.stderr
    assert "b'" not in result.stderr  # decoded by the Python client, not printed raw
    template = json.loads((tmp_path / "Small.template.json").read_text())
    assert template["Resources"]["Policy"]["Properties"]["Principal"] == "123456789012"


def test_the_direct_runtime_is_chosen_only_for_a_known_kernel_and_never_over_the_user_s(tmp_path: Path) -> None:
    program = embedded_program()
    assert program is not None and CHANNEL_MARKER in program.read_text()
    environ: dict[str, str] = {}
    assert use_direct_runtime(environ)
    assert environ == {"JSII_RUNTIME": str(DIRECT_RUNTIME), PROGRAM_ENV: str(program)}
    users = {"JSII_RUNTIME": "/opt/my-runtime.js"}
    assert not use_direct_runtime(users)
    assert users == {"JSII_RUNTIME": "/opt/my-runtime.js"}
    other = tmp_path / "program.js"
    other.write_text("new SyncStdio({readFD:0,writeFD:1})")
    untouched: dict[str, str] = {}
    assert not use_direct_runtime(untouched, other)
    assert untouched == {}


_WRONG_ARGUMENT = (
    "import app\n"
    "from jsii._type_checking import check_type\n"
    "check_type(argname='argument id', value=1, expected_type=str)\n"
    "print('unchecked')\n"
)


def test_app_py_skips_jsii_s_run_time_argument_checks() -> None:
    """app.py's calls into aws_cdk are not type-checked again at run time (mypy --strict checks them)."""
    result = _python(_WRONG_ARGUMENT)
    assert result.stdout.splitlines()[-1] == "unchecked"


def test_cdk_debug_keeps_the_run_time_argument_checks() -> None:
    """``cdk synth --debug-app`` (CDK_DEBUG) checks every argument, as jsii does by default."""
    with pytest.raises(subprocess.CalledProcessError) as failed:
        _python(_WRONG_ARGUMENT, CDK_DEBUG="true")
    assert "argument id" in failed.value.stderr and "TypeError" in failed.value.stderr


def test_the_checks_are_skipped_only_in_a_jsii_whose_check_reads_the_resolved_one() -> None:
    def check_type(argname: str, value: object, expected_type: object) -> object:
        return _resolved_check  # noqa: F821 - read from the module's globals, as jsii's does

    known = types.ModuleType("known")
    known._resolved_check = None  # type: ignore[attr-defined]
    known.check_type = types.FunctionType(check_type.__code__, vars(known))  # type: ignore[attr-defined]
    assert skip_argument_type_checks({}, known)
    assert known._resolved_check is not None  # type: ignore[attr-defined]
    other = types.ModuleType("other")
    other.check_type = lambda argname, value, expected_type: None  # type: ignore[attr-defined]
    assert not skip_argument_type_checks({}, other)
    assert not hasattr(other, "_resolved_check")
    debugging = types.ModuleType("debugging")
    debugging._resolved_check = None  # type: ignore[attr-defined]
    debugging.check_type = types.FunctionType(check_type.__code__, vars(debugging))  # type: ignore[attr-defined]
    assert not skip_argument_type_checks({"CDK_DEBUG": "on"}, debugging)
    assert debugging._resolved_check is None  # type: ignore[attr-defined]
