"""The README is a contract: its first screen is what the project is, the two commands CI runs and a map
of the docs; the pages it maps document every setting and the change document."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.contract.settings import CoordinatorSettings, MeetingSettings, OpsSettings, WorkerSettings, env_var

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()  # the settings moved out of README
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()  # so did the change document


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
    missing = [env_var(name) for name in model.model_fields if f"`{env_var(name)}`" not in CONFIGURATION]
    assert missing == []


def test_the_change_document_example_is_a_valid_submission() -> None:
    """The example under "The change document" is what ``submit`` accepts, and the table lists its fields."""
    from runtime.archive.submit import validate_change

    section = ARCHITECTURE.split("## The change document", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"```json\n(.*?)```", section, re.S)
    assert example is not None
    document = validate_change(example.group(1))
    assert document.meeting is not None and document.model_extra == {"ticket": "INC-1234"}
    required = {"change_id", "title", "customers"}
    assert {f for f in required if f"| `{f}` | yes |" in section} == required


def test_the_first_screen_says_what_it_is_the_two_commands_and_where_to_go_next() -> None:
    """A newcomer's first 40 lines: a short description, ``make demo`` / ``make test``, and the map of
    docs, every page of which exists; the long material lives in those pages (README under 200 lines)."""
    first_screen = "\n".join(README.splitlines()[:40])
    description = first_screen.split("```bash", 1)[0].strip().splitlines()[1:]
    assert 2 <= len([line for line in description if line.strip()]) <= 6
    assert "Where to go next" in first_screen
    mapped = re.findall(r"^\* `(docs/[\w-]+\.md)`", first_screen, re.M)
    assert {"docs/design.md", "docs/infrastructure.md", "docs/runbook.md", "docs/onboarding.md"} <= set(mapped)
    assert [page for page in mapped if not (ROOT / page).is_file()] == []
    assert len(README.splitlines()) < 200
