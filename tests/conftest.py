"""What every test process shares: botocore's data files parsed (and its data directories listed) once per
process, and the order of the run.

Each new botocore session parses its endpoint rules and every service model it builds a client for
again (``endpoints.json`` alone is ~0.1 s of JSON): the in-process fixtures build the hand-made layout
per test, with an assume-role session per customer, so hundreds of tests spent most of their set-up
re-reading the same files. botocore already shares one parsed document between all clients of a session
(its loader's instance cache), and the runtime shares them between sessions (``runtime.aws.session``):
the documents are read-only to it, so one parse per file serves the whole process. Subprocesses (the
services under test) are untouched.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore import loaders

_parsed: dict[str, Any] = {}
_lock = threading.Lock()
_load_file = loaders.JSONFileLoader.load_file


def _load_file_once(self: loaders.JSONFileLoader, file_path: str) -> Any:
    with _lock:
        if file_path not in _parsed:
            _parsed[file_path] = _load_file(self, file_path)
        return _parsed[file_path]


_services: dict[tuple[tuple[str, ...], str], list[str]] = {}
_list_services = loaders.Loader.list_available_services


def _list_services_once(self: loaders.Loader, type_name: str) -> list[str]:
    """The services found on these search paths (a walk of the data directories per session otherwise)."""
    key = (tuple(self.search_paths), type_name)
    with _lock:
        if key not in _services:
            _services[key] = _list_services(self, type_name)
        return list(_services[key])


loaders.JSONFileLoader.load_file = _load_file_once  # type: ignore[method-assign]
loaders.Loader.list_available_services = _list_services_once  # type: ignore[method-assign]


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
