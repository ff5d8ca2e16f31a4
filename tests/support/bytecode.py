"""Compile the project once, before the xdist workers start, instead of once in every process.

Each worker collects every test module, and pytest rewrites each one's asserts and compiles it (about 5 of
the 10 CPU s a collection takes); the services, the demo and the CLI the tests start (hundreds of
processes) import ``runtime/`` and ``devtools/`` from source. Python caches both in ``__pycache__``, but
not when it may not write there (``PYTHONDONTWRITEBYTECODE``, set in some images: every process compiles
everything again), nor in a fresh clone, where the workers would all compile the same files at once.

So the run's main process writes them first: :mod:`compileall` for the packages (what the subprocesses
import), and pytest's own rewritten form of every test module and conftest (its ``__pycache__`` entry,
written and validated by pytest's functions, so a worker reads it exactly as one it wrote itself). A
file already compiled is checked and skipped; nothing here changes what a test runs.
"""

from __future__ import annotations

import compileall
import re
from pathlib import Path

import pytest

PACKAGES = ("runtime", "devtools", "stacks", "cdk_constructs", "cdk_support", "benchmarks", "tests")
TEST_MODULE = re.compile(r"(^|[/\\])(test_[^/\\]*|conftest)\.py$")
"""Modules pytest imports through its assertion rewriter: their cache is pytest's own (below)."""


def is_test_module(path: Path) -> bool:
    return TEST_MODULE.search(str(path)) is not None


def precompile(root: Path, config: pytest.Config) -> int:
    """Compile the packages under ``root`` and rewrite its test modules into their caches; the number
    of test modules that had no valid cache."""
    for package in PACKAGES:
        if (root / package).is_dir():
            compileall.compile_dir(root / package, quiet=1, rx=TEST_MODULE)
    from _pytest.assertion import rewrite

    state = config.stash.get(rewrite.assertstate_key, None)
    written = 0
    if state is None:  # --assert=plain: nothing is rewritten
        return written
    for path in sorted((root / "tests").rglob("*.py")):
        if not is_test_module(path.relative_to(root)):
            continue
        cache = rewrite.get_cache_dir(path)
        cache.mkdir(exist_ok=True)
        pyc = cache / (path.name[:-3] + rewrite.PYC_TAIL)
        if rewrite._read_pyc(path, pyc, state.trace) is None:
            try:
                source_hash, code = rewrite._rewrite_test(path, config)
            except SyntaxError:
                continue  # the worker that collects it reports the error, as without this step
            rewrite._write_pyc(state, code, source_hash, pyc)
            written += 1
    return written
