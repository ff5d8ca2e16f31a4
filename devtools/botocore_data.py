"""botocore's data files parsed (and its data directories listed) once per process, for every session.

Each new botocore session parses its endpoint rules and every service model it builds a client for again
(``endpoints.json`` alone is ~0.1 s of JSON). A process that hosts the emulator builds many: moto asks a
new session for each backend's regions, the local deployer and the sandbox one per account and role, the
demo's reports one per reader. botocore already shares one parsed document between all clients of a
session (its loader's instance cache), and the runtime shares them between sessions (``runtime.aws``):
the documents are read-only to it, so one parse per file serves the whole process. The test processes
install it too (``tests/conftest.py``); measured on the demo (issue 21), ~2-4 CPU s less per run.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore import loaders

_parsed: dict[str, Any] = {}
_services: dict[tuple[tuple[str, ...], str], list[str]] = {}
_lock = threading.Lock()
_load_file = loaders.JSONFileLoader.load_file
_list_services = loaders.Loader.list_available_services


def _load_file_once(self: loaders.JSONFileLoader, file_path: str) -> Any:
    with _lock:
        if file_path not in _parsed:
            _parsed[file_path] = _load_file(self, file_path)
        return _parsed[file_path]


def _list_services_once(self: loaders.Loader, type_name: str) -> list[str]:
    """The services found on these search paths (a walk of the data directories per session otherwise)."""
    key = (tuple(self.search_paths), type_name)
    with _lock:
        if key not in _services:
            _services[key] = _list_services(self, type_name)
        return list(_services[key])


def share_parsed_data() -> None:
    """Install the process-wide cache (idempotent)."""
    loaders.JSONFileLoader.load_file = _load_file_once
    loaders.Loader.list_available_services = _list_services_once
