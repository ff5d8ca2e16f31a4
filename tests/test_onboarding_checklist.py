"""``docs/onboarding.md`` names every step the code requires of a new customer, in a form that works.

An onboarding checklist that names a policy file that moved, a ``cdk.json`` key that was renamed or a
CLI option that does not exist sends the operator into an error halfway through a customer's setup.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from stacks.config import Customer

ROOT = Path(__file__).resolve().parent.parent
CHECKLIST = (ROOT / "docs" / "onboarding.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", CHECKLIST, re.S)


def _cli_lines() -> list[list[str]]:
    return [
        shlex.split(line.split("#", 1)[0])[3:]
        for block in _blocks("bash")
        for line in block.splitlines()
        if line.startswith("python -m runtime ")
    ]


def test_every_policy_file_it_names_exists() -> None:
    named = set(re.findall(r"docs/policies/[\w.-]+\.json", CHECKLIST))
    assert "docs/policies/cdk-execution-customer-account.json" in named
    assert [p for p in sorted(named) if not (ROOT / p).is_file()] == []


def test_the_cdk_json_entry_is_valid_and_names_every_required_field() -> None:
    (entry,) = _blocks("json")
    customer = Customer.model_validate_json(entry)
    required = {name for name, field in Customer.model_fields.items() if field.is_required()}
    assert required <= set(re.findall(r'"(\w+)":', entry)), "a required ttp.customers key is missing"
    assert customer.contact_list_name in CHECKLIST


def test_it_names_the_steps_the_code_requires() -> None:
    from runtime.contract.names import CALENDAR_TOPIC

    for step in (
        "Easy DKIM",
        CALENDAR_TOPIC,
        "create-contact-list",
        "create-contact",
        "TtpStorage",
        "TtpCustomerAccount-",
        "TTP_CUSTOMER_QUEUES",
        "verify",
        "cdk bootstrap",
    ):
        assert step in CHECKLIST, f"docs/onboarding.md does not mention {step!r}"
    order = [
        CHECKLIST.index(s) for s in ("--exclusively TtpPlatform", "'TtpCustomerAccount-", "--exclusively TtpStorage")
    ]
    assert order == sorted(order), "deploy order must be platform -> customer account -> storage"


@pytest.mark.parametrize("argv", _cli_lines(), ids=" ".join)
def test_every_command_it_shows_takes_its_options(argv: list[str]) -> None:
    words = [w for w in argv if not w.startswith("-")]
    command = words[:1] if words[0] != "dlq" else words[:2]
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for option in (w.split("=", 1)[0] for w in argv if w.startswith("--")):
        assert option in result.output, f"`{' '.join(command)}` has no option {option}"


# --- The newcomer's walk: "Rehearse it on the emulator first", with a third customer -----------------------------

WALK_SETTINGS = {"TTP_RECEIVE_WAIT_SECONDS": "1", "TTP_RETRY_BASE_SECONDS": "0", "TTP_DRAIN_SECONDS": "5"}
"""Demo-sized waits, as ``make emulator`` sets them (the only values the walk changes)."""


def _section(title: str) -> str:
    return CHECKLIST.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _bash_lines(text: str) -> list[str]:
    return [line for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()]


def _local_run_argv() -> list[str]:
    """The ``python -m devtools.local_run …`` line of the rehearsal, as words."""
    [line] = [x for x in _bash_lines(_section("Rehearse it on the emulator first")) if "devtools.local_run" in x]
    return shlex.split(line.split("#", 1)[0])


def _onboarded_cdk_json(directory: Path) -> Path:
    """The rehearsal's first line: a copy of cdk.json with step 3's entry added to ``ttp.customers``."""
    import json

    [copy_line] = [x for x in _bash_lines(_section("Rehearse it on the emulator first")) if x.startswith("cp ")]
    source, target = shlex.split(copy_line.split("#", 1)[0])[1:3]
    assert source == "cdk.json" and target == _local_run_argv()[_local_run_argv().index("--cdk-json") + 1]
    data = json.loads((ROOT / source).read_text())
    (entry,) = _blocks("json")
    data["context"]["ttp"]["customers"].append(json.loads(entry))
    copy = directory / Path(target).name
    copy.write_text(json.dumps(data, indent=2))
    return copy


def test_the_rehearsal_command_takes_its_options() -> None:
    import subprocess
    import sys

    argv = _local_run_argv()
    assert argv[:3] == ["python", "-m", "devtools.local_run"]
    shown = subprocess.run(
        [sys.executable, "-m", "devtools.local_run", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    for option in (w for w in argv if w.startswith("--")):
        assert option in shown.stdout, f"python -m devtools.local_run has no option {option}"


@pytest.mark.slow
def test_a_newcomer_onboards_a_third_customer_on_the_local_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rehearsal section, done as ``python -m devtools.local_run --cdk-json`` does it (the same calls:
    synthesize the copy's app, deploy it with the local deployer, create what the stacks do not own, run
    the new customer's processor and the coordinator from their task definitions), on the emulator of
    ``tests/support/deployed.py``; then step 6's commands as the docs print them, as the operator."""
    import json
    import subprocess
    import sys

    from devtools import demo
    from devtools import sandbox as sb
    from devtools.emulator import LocalAws
    from tests.support import deployed as dp
    from tests.support.fault_injection import wait_for

    copy = _onboarded_cdk_json(tmp_path)
    config = demo.load_platform_config(copy)
    new = config.customers[-1].code
    assert [c.code for c in config.customers] == ["hts", "htsnonprod", new] and new not in dp.sample_config().customers
    assembly = tmp_path / Path(_local_run_argv()[_local_run_argv().index("--assembly") + 1]).name
    dp.synthesize(assembly, demo.demo_context(copy))  # as `cdk synth --no-validation`
    server = LocalAws().start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        box = dp.use_operator(dp.deploy_sample(server, assembly, sb.specs_from_config(config.customers)), monkeypatch)
        operator = demo.operator_settings(box.plans)  # what the rehearsal prints as export lines
        assert new in json.loads(operator["TTP_CUSTOMER_CODES"]), operator  # step 5: the variable gains it
        assert "`TTP_CUSTOMER_CODES` gains" in _section("5. What the operators' environment gains")
        for name, value in operator.items():
            monkeypatch.setenv(name, value)
        coordinator = box.service_env(None, **WALK_SETTINGS)
        coordinator = {k: v for k, v in coordinator.items() if not k.startswith(("TTP_GRAPH_", "TTP_MEETING_"))}
        for env in (box.service_env(new, **WALK_SETTINGS), coordinator):
            command = ["worker"] if env is not coordinator else ["coordinator"]
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "runtime", *command],
                    env=env,
                    cwd=ROOT,
                    stdout=(tmp_path / f"{command[0]}.log").open("w"),
                    stderr=subprocess.STDOUT,
                )
            )
        monkeypatch.chdir(tmp_path)
        step6 = _bash_lines(_section("6. Check it worked"))
        heredoc = step6.index("cat > test-change-acme.json <<'EOF'")
        Path("test-change-acme.json").write_text(step6[heredoc + 1] + "\n")
        commands = [
            shlex.split(line)[3:]
            for line in _bash_lines(_section("Rehearse it on the emulator first"))
            if line.startswith("python -m runtime ")
        ]
        assert [c[0] for c in commands] == ["health", "submit", "verify"]
        health, submit, verify = commands
        result = CliRunner().invoke(app, health)
        assert result.exit_code == 0, result.output
        assert new in result.stdout
        result = CliRunner().invoke(app, submit)
        assert result.exit_code == 0, result.output

        def verified() -> bool:
            return CliRunner().invoke(app, verify).exit_code == 0

        wait_for(verified, 90, f"`{' '.join(verify)}` to exit 0")
        report = json.loads(CliRunner().invoke(app, verify).stdout)
        [customer] = report["customers"]
        assert customer["customer"] == new and customer["state"] == "processed", customer
        assert customer["sent"] and customer["sent"] > 0
        # the deployed coordinator folded it: health shows that fold beside the coordinator's queue
        result = CliRunner().invoke(app, [*health, "--json"])
        assert json.loads(result.stdout)["coordinator_last_fold"]["change_id"] == report["change_id"], result.stdout
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        server.stop()
