"""Every field of every props dataclass in cdk_constructs/ is documented with its default (or as required)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from stacks.app_builder import REPO_ROOT

MODULES = sorted((Path(REPO_ROOT) / "cdk_constructs").glob("*.py"))


def _undocumented(path: Path) -> list[str]:
    missing: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ClassDef):
            continue
        if not any("dataclass" in ast.unparse(decorator) for decorator in node.decorator_list):
            continue
        body = node.body
        for index, statement in enumerate(body):
            if not isinstance(statement, ast.AnnAssign) or not isinstance(statement.target, ast.Name):
                continue
            following = body[index + 1] if index + 1 < len(body) else None
            doc = (
                following.value.value
                if isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
                else ""
            )
            if "Default:" not in doc and "Required" not in doc:
                missing.append(f"{node.name}.{statement.target.id}")
    return missing


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_every_props_field_states_its_default(path: Path) -> None:
    assert _undocumented(path) == []
