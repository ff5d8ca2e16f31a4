"""Exit codes are the CLI's: each kind of ``runtime.ops`` exception maps to one, and the commands that
raise them exit with it."""

from __future__ import annotations

import pytest

from runtime.cli.errors import exit_code_of
from runtime.cli.exit_codes import EXIT_ATTENTION, EXIT_FAILED, EXIT_USAGE
from runtime.contract import dashboards
from runtime.ops.dashboards import check_sizes
from runtime.ops.errors import NothingToDo, OpsError, OpsUsageError


@pytest.mark.parametrize(
    ("error", "code"),
    [(OpsError("x"), EXIT_FAILED), (OpsUsageError("x"), EXIT_USAGE), (NothingToDo("x"), EXIT_ATTENTION)],
)
def test_each_ops_error_maps_to_one_exit_code(error: OpsError, code: int) -> None:
    assert exit_code_of(error) == code


def test_an_oversized_dashboard_body_is_refused() -> None:
    with pytest.raises(OpsError, match="too large for CloudWatch"):
        check_sizes([{"widgets": [{}] * (dashboards.MAX_WIDGETS + 1)}])
