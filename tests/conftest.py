"""What every test process shares: botocore's data files parsed (and its data directories listed) once per
process (``devtools.botocore_data``: the in-process fixtures build the hand-made layout per test, with an
assume-role session per customer, so hundreds of tests spent most of their set-up re-reading the same
files), and the order of the run. Subprocesses (the services under test) are untouched.
"""

from __future__ import annotations

import pytest

from devtools.botocore_data import share_parsed_data

share_parsed_data()


def _rank(item: pytest.Item) -> int:
    """Where a test module runs in the order: the end-to-end tests first, then the deploy and process
    tests at the top level, the templates, and the unit-level tests last."""
    parts = item.nodeid.split("::", 1)[0].split("/")
    if parts[1] == "e2e":
        return 0
    if len(parts) == 2:
        return 1
    return 2 if parts[1] == "infra" else 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first. xdist (``--dist loadscope``, pyproject.toml) hands each worker one whole module at a
    time in this order, so a module's fixtures are built on one worker only, and the run ends on small
    unit-level modules instead of one worker finishing a long end-to-end module alone. A stable sort:
    the order inside each module, which some modules rely on, is kept."""
    items.sort(key=_rank)
