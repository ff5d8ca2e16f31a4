"""What every test process shares: botocore's data files parsed (and its data directories listed) once per
process (``devtools.botocore_data``: the in-process fixtures build the hand-made layout per test, with an
assume-role session per customer, so hundreds of tests spent most of their set-up re-reading the same
files); with xdist, the project compiled and the test modules rewritten once before the workers start
(``tests/support/bytecode.py``); and the order of the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devtools.botocore_data import share_parsed_data
from tests.support.bytecode import precompile

share_parsed_data()


def pytest_configure(config: pytest.Config) -> None:
    """With xdist, the main process compiles the project and rewrites the test modules once, before the
    workers start (``tests/support/bytecode.py``); a run without workers compiles as it imports."""
    if os.environ.get("PYTEST_XDIST_WORKER") or not getattr(config.option, "numprocesses", None):
        return
    precompile(Path(__file__).resolve().parents[1], config)


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
