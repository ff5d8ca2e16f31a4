"""The README is a contract: its first commands are the ones CI runs, and it documents every setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.contract.settings import CoordinatorSettings, MeetingSettings, OpsSettings, WorkerSettings, env_var

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_first_two_commands_are_demo_and_test_and_ci_runs_the_test_command() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: setup$", makefile, re.M) and re.search(r"^test: setup$", makefile, re.M)


@pytest.mark.parametrize("model", [WorkerSettings, MeetingSettings, OpsSettings, CoordinatorSettings])
def test_every_setting_is_documented(model: type) -> None:
    missing = [env_var(name) for name in model.model_fields if f"`{env_var(name)}`" not in README]
    assert missing == []


def test_the_change_document_example_is_a_valid_submission() -> None:
    """The example under "The change document" is what ``submit`` accepts, and the table lists its fields."""
    from runtime.archive.submit import validate_change

    section = README.split("## The change document", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"```json\n(.*?)```", section, re.S)
    assert example is not None
    document = validate_change(example.group(1))
    assert document.meeting is not None and document.model_extra == {"ticket": "INC-1234"}
    required = {"change_id", "title", "customers"}
    assert {f for f in required if f"| `{f}` | yes |" in section} == required
