"""The direction of imports between ``runtime.ops`` and ``runtime.cli``: procedures return data and never
render, so ``runtime.ops`` imports neither the CLI nor its rendering libraries; ``runtime.cli.app`` imports
no command module (``runtime.cli`` registers them), so there is no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import runtime.cli
import runtime.ops

OPS = sorted(Path(runtime.ops.__file__).parent.glob("*.py"))
CLI = Path(runtime.cli.__file__).parent


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", OPS, ids=lambda p: p.name)
def test_ops_never_imports_the_cli_or_rendering(path: Path) -> None:
    forbidden = {
        name for name in imported(path) if name.split(".")[0] in ("typer", "rich") or name.startswith("runtime.cli")
    }
    assert forbidden == set(), f"{path.name} imports {sorted(forbidden)}"


def test_the_app_module_imports_no_command_module() -> None:
    assert not any(name.startswith("runtime.cli") for name in imported(CLI / "app.py"))
    for path in CLI.glob("*_commands.py"):
        assert not any(name.startswith("runtime.cli.app") for name in imported(path)), path.name
