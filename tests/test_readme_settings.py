"""docs/configuration.md's settings tables (moved from README) state each variable's bounds, checked against
the pydantic models (issue 11): change a bound in ``runtime/contract/settings.py`` and this test names the row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.contract.settings import (
    CoordinatorSettings,
    MeetingSettings,
    OpsSettings,
    WorkerSettings,
    describe_bounds,
    env_var,
)

README = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()  # moved out of README.md
MODELS = [WorkerSettings, CoordinatorSettings, OpsSettings, MeetingSettings]


def table_cells(variable: str) -> list[str]:
    """The cells of every README table row whose first cell is ``variable``."""
    found = []
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and cells[0] == f"`{variable}`":
            found += cells[1:]
    assert found, f"README has no table row for `{variable}`"
    return found


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_bounded_setting_states_its_bounds_in_a_readme_table(model: type) -> None:
    wrong = []
    for name, field in model.model_fields.items():
        bounds = describe_bounds(field)
        if bounds and bounds not in table_cells(env_var(name)):
            wrong.append(f"{env_var(name)}: a cell {bounds!r} in its README row (now {table_cells(env_var(name))})")
    assert wrong == [], "\n".join(wrong)


def test_the_bounds_the_issue_names() -> None:
    """The wording, on the two bounds operators hit first."""
    assert describe_bounds(WorkerSettings.model_fields["visibility_timeout_seconds"]) == "≥ 30, ≤ 43200"
    assert describe_bounds(WorkerSettings.model_fields["send_rate_per_second"]) == "> 0, ≤ 500"
    external_id = describe_bounds(WorkerSettings.model_fields["sender_external_id"])
    assert external_id == "2 to 1224 characters of `[\\w+=,.@:/-]`"
    assert re.search(r"\| `TTP_VISIBILITY_TIMEOUT_SECONDS` \| `300` \| ≥ 30, ≤ 43200 \|", README)
