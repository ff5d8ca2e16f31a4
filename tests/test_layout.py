"""The layout's import rules (runtime/__init__.py): each part imports only the parts below it.

Read from the source with ``ast`` (imports inside functions count too), so a forbidden import fails
here before it can become a cycle or pull ``aws_cdk`` into the runtime image.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Layers of ``runtime``, lowest first: a module may import its own layer and the ones before it.
RUNTIME_LAYERS: list[set[str]] = [
    {"runtime.contract"},
    {"runtime.telemetry", "runtime.aws"},
    {"runtime.worker"},
    {"runtime.archive"},
    {"runtime.notify"},
    {"runtime.pipeline"},
    {"runtime.coordinator"},
    {"runtime.ops"},
    {"runtime.sweeper"},
    {"runtime.services"},
    {"runtime.web"},
    {"runtime.cli"},
]
THIRD_PARTY_OF_CONTRACT = {"pydantic", "pydantic_settings", "pydantic_core"}

# Packages whose ``__init__`` is their public face: another package imports ``from runtime.<package> import
# name`` with ``name`` in its ``__all__``, never one of its modules. Not in the list: ``runtime.contract``
# (each module is one table of definitions, imported module by module, the CDK side included) and
# ``runtime.ops`` (one module per runbook procedure, named like its procedure; only the CLI and the
# sweeper import it).
PUBLIC_FACES = {
    "runtime.telemetry",
    "runtime.worker",
    "runtime.archive",
    "runtime.notify",
    "runtime.pipeline",
    "runtime.coordinator",
    "runtime.sweeper",
}


def _part(module: str) -> str:
    """``runtime.archive.store`` → ``runtime.archive``; ``runtime.aws`` → ``runtime.aws``."""
    return ".".join(module.split(".")[:2])


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def modules_under(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _rank(part: str) -> int | None:
    for rank, layer in enumerate(RUNTIME_LAYERS):
        if part in layer:
            return rank
    return None


def layer_violations(own: str, imported: set[str]) -> list[str]:
    """What module ``own`` must not import of ``imported``, each with the reason."""
    own_rank = _rank(_part(own))
    if own_rank is None:  # runtime/__init__.py and __main__.py sit above every layer
        return []
    problems = []
    for name in sorted(imported):
        if name.split(".")[0] in {"aws_cdk", "constructs", "cdk_nag", "cdk_constructs", "cdk_support", "stacks"}:
            problems.append(f"{own} imports {name}: the runtime never imports the CDK side")
        elif name.startswith("runtime."):
            rank = _rank(_part(name))
            if rank is None:
                problems.append(f"{own} imports {name}, which is in no layer of runtime/__init__.py")
            elif rank > own_rank:
                problems.append(f"{own} imports {name}: {_part(own)} may not import {_part(name)} (a higher layer)")
    return problems


@pytest.mark.parametrize("path", modules_under("runtime"), ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_imports_only_lower_layers(path: Path) -> None:
    own = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    assert layer_violations(own, imports_of(path)) == []


def test_the_rules_catch_forbidden_imports() -> None:
    """The checker itself: ops importing the CLI, or any runtime module importing aws_cdk, is reported."""
    assert layer_violations("runtime.ops.health", {"runtime.cli.app", "runtime.pipeline.worker"}) == [
        "runtime.ops.health imports runtime.cli.app: runtime.ops may not import runtime.cli (a higher layer)"
    ]
    assert len(layer_violations("runtime.contract.names", {"runtime.archive.store", "aws_cdk.aws_sqs"})) == 2
    assert layer_violations("runtime.cli.app", {"runtime.ops.health", "runtime.contract.keys"}) == []


def public_names(package: str) -> set[str]:
    """The ``__all__`` of ``package``'s ``__init__``, read with ``ast`` (a literal list of strings)."""
    init = ROOT.joinpath(*package.split("."), "__init__.py")
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return {elt.value for elt in node.value.elts if isinstance(elt, ast.Constant)}  # type: ignore[attr-defined]
    return set()


def private_imports(own: str, path: Path) -> list[str]:
    """What module ``own`` imports from another package's insides instead of from its public face."""
    problems = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            pairs = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            pairs = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        for module, name in pairs:
            package = _part(module)
            if package not in PUBLIC_FACES or package == _part(own):
                continue
            if module != package:
                problems.append(f"{own} imports {module}: import from {package} itself")
            elif name is not None and name not in public_names(package):
                problems.append(f"{own} imports {name} from {package}, which does not export it (__all__)")
    return problems


@pytest.mark.parametrize("path", modules_under("runtime"), ids=lambda p: str(p.relative_to(ROOT)))
def test_other_packages_import_only_a_packages_public_names(path: Path) -> None:
    own = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    assert private_imports(own, path) == []


def test_the_public_face_rule_catches_imports_of_insides(tmp_path: Path) -> None:
    """The checker itself: a module path or an unexported name is reported, the package's own modules not."""
    module = tmp_path / "m.py"
    lines = [
        "from runtime.worker.loop import Worker",
        "from runtime.pipeline import _Sent",
        "from runtime.archive import ArchiveStore",
    ]
    module.write_text("\n".join(lines) + "\n")
    assert private_imports("runtime.coordinator.handler", module) == [
        "runtime.coordinator.handler imports runtime.worker.loop: import from runtime.worker itself",
        "runtime.coordinator.handler imports _Sent from runtime.pipeline, which does not export it (__all__)",
    ]
    assert private_imports("runtime.worker.other", module) == [
        "runtime.worker.other imports _Sent from runtime.pipeline, which does not export it (__all__)"
    ]


@pytest.mark.parametrize("path", [ROOT / "runtime" / p.split(".")[1] / "__init__.py" for p in sorted(PUBLIC_FACES)])
def test_every_public_name_is_importable(path: Path) -> None:
    """A name in ``__all__`` that the package does not define would fail only where it is imported."""
    import importlib

    package = importlib.import_module(".".join(path.relative_to(ROOT).parts[:-1]))
    assert [name for name in sorted(public_names(package.__name__)) if not hasattr(package, name)] == []


@pytest.mark.parametrize("path", modules_under("runtime/contract"), ids=lambda p: str(p.relative_to(ROOT)))
def test_contract_is_pure(path: Path) -> None:
    """The contract is what the CDK side imports: the standard library and pydantic only, no I/O clients."""
    import sys

    for name in imports_of(path):
        top = name.split(".")[0]
        if top == "runtime":
            assert name.startswith("runtime.contract"), f"{path.name} imports {name}"
        elif top not in sys.stdlib_module_names and top != "__future__":
            assert top in THIRD_PARTY_OF_CONTRACT, f"{path.name} imports {name}: the contract must stay pure"


@pytest.mark.parametrize(
    "path", modules_under("cdk_constructs", "cdk_support", "stacks"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_cdk_side_imports_only_the_contract(path: Path) -> None:
    for name in imports_of(path):
        if name == "runtime" or name.startswith("runtime."):
            assert name.startswith("runtime.contract"), f"{path.relative_to(ROOT)} imports {name}"


@pytest.mark.parametrize("path", modules_under("cdk_constructs", "cdk_support"), ids=lambda p: str(p.relative_to(ROOT)))
def test_constructs_never_import_stacks(path: Path) -> None:
    """Every construct is usable alone in another CDK app: none depends on this project's stacks."""
    assert not any(n.split(".")[0] == "stacks" for n in imports_of(path)), path.relative_to(ROOT)


# The one reader of v1 documents (issue 20): everything else in ``runtime/`` handles only the v2 model.
V1_READER = ROOT / "runtime" / "archive" / "v1.py"
# ``v1`` as the document format: not a URL segment (``/v1/``, ``v1.0``), ``PKCS1-v1_5`` nor the reader's
# module name (``runtime.archive.v1``).
V1_MENTION = re.compile(r"(?<![./])\bv1\b(?![._/])", re.IGNORECASE)


def v1_mentions(path: Path) -> list[str]:
    """``path:line: text`` for each line of ``path`` that mentions the v1 format."""
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return [
        f"{name}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if V1_MENTION.search(line)
    ]


@pytest.mark.parametrize(
    "path", [p for p in modules_under("runtime") if p != V1_READER], ids=lambda p: str(p.relative_to(ROOT))
)
def test_only_the_reader_mentions_the_v1_format(path: Path) -> None:
    """A v1 document is read by ``runtime/archive/v1.py`` into the v2 model; no other module knows v1."""
    assert v1_mentions(path) == []


def test_the_v1_rule_catches_mentions_but_not_urls(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "lease = doc.leases.get(code)  # a v1 processor's lease\n"
        'GRAPH = "https://graph.microsoft.com/v1.0"\n'
        'PATH = "/task-protection/v1/state"\n'
        '"""RSASSA-PKCS1-v1_5"""\n'
        "from runtime.archive.v1 import archive_lease\n"
        "(V1, or written by hand)\n"
    )
    found = [line.split(":", 1)[1] for line in v1_mentions(module)]
    assert found == ["1: lease = doc.leases.get(code)  # a v1 processor's lease", "6: (V1, or written by hand)"]
    assert v1_mentions(V1_READER) != []


# Size (issue 20): a module over MAX_MODULE_LINES lines or a function over MAX_FUNCTION_LINES (decorators
# included) is split by job, in every package that is not tests.
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
SIZED_PACKAGES = ("runtime", "cdk_constructs", "stacks", "cdk_support", "devtools", "benchmarks")

# Allowed over a limit, each with its reason. A key is a module's path (every function in it, and the module
# itself), ``path::Qualified.name`` (one function) or a folder ending in ``/``.
#
# Pure data and declarative lists (a table is read row by row; splitting it would only scatter it):
PURE_DATA: dict[str, str] = {}
# Being split this round by the engineer who owns the file; the lead deletes each entry when that branch has
# landed (test_every_size_exception_is_still_needed then names the entries that no longer exceed):
BEING_SPLIT: dict[str, str] = {}
SIZE_EXCEPTIONS = {**PURE_DATA, **BEING_SPLIT}


def _excepted(key: str) -> bool:
    path = key.partition("::")[0]
    return any(key == e or path == e or (e.endswith("/") and path.startswith(e)) for e in SIZE_EXCEPTIONS)


def function_lengths(path: Path) -> dict[str, int]:
    """Every function's and method's qualified name (``Class.method``, ``outer.inner``) and its lines."""
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                start = child.decorator_list[0].lineno if child.decorator_list else child.lineno
                found[prefix + child.name] = (child.end_lineno or child.lineno) - start + 1
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(), filename=str(path)), "")
    return found


def oversized(path: Path, name: str) -> list[str]:
    """What in ``path`` (shown as ``name``) is over a size limit and not excepted."""
    problems = []
    lines = len(path.read_text().splitlines())
    if lines > MAX_MODULE_LINES and not _excepted(name):
        problems.append(f"{name}: {lines} lines (at most {MAX_MODULE_LINES}): split it by job")
    for function, length in function_lengths(path).items():
        if length > MAX_FUNCTION_LINES and not _excepted(f"{name}::{function}"):
            problems.append(f"{name}::{function}: {length} lines (at most {MAX_FUNCTION_LINES})")
    return problems


@pytest.mark.parametrize("path", modules_under(*SIZED_PACKAGES), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_or_function_is_over_its_size(path: Path) -> None:
    assert oversized(path, str(path.relative_to(ROOT))) == []


def test_the_size_rule_catches_a_long_module_and_a_long_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "m.py"
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    module.write_text(f"class C:\n    @staticmethod\n    def long():\n{body}\n\ndef short():\n    pass\n")
    assert function_lengths(module) == {"C.long": MAX_FUNCTION_LINES + 2, "short": 2}
    assert oversized(module, "devtools/m.py") == ["devtools/m.py::C.long: 82 lines (at most 80)"]
    module.write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    assert oversized(module, "devtools/m.py") == ["devtools/m.py: 501 lines (at most 500): split it by job"]
    monkeypatch.setitem(SIZE_EXCEPTIONS, "stacks/config.py", "a module being split")
    assert oversized(module, "stacks/config.py") == []  # an excepted module


def test_every_size_exception_is_still_needed() -> None:
    """An exception outlives its reason once nothing it covers is over a limit: delete it then."""
    over = set()
    for path in modules_under(*SIZED_PACKAGES):
        name = str(path.relative_to(ROOT))
        if len(path.read_text().splitlines()) > MAX_MODULE_LINES:
            over.add(name)
        over.update(f"{name}::{f}" for f, n in function_lengths(path).items() if n > MAX_FUNCTION_LINES)
    unneeded = [
        e
        for e in SIZE_EXCEPTIONS
        if not any(k == e or k.partition("::")[0] == e or (e.endswith("/") and k.startswith(e)) for k in over)
    ]
    assert unneeded == []
