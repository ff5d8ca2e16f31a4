"""The main process of an xdist run compiles the packages and rewrites the test modules once, into the
caches the workers and subprocesses read (``tests/support/bytecode.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from _pytest.assertion import rewrite

from tests.support.bytecode import precompile


def test_packages_are_compiled_and_test_modules_rewritten_once(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    if rewrite.assertstate_key not in pytestconfig.stash:
        pytest.skip("--assert=plain: pytest rewrites no test module, so there is no rewritten cache to write")
    for name, text in {
        "runtime/m.py": "X = 1\n",
        "tests/support/helper.py": "Y = 2\n",
        "tests/test_m.py": "def test_one():\n    assert 1 + 1 == 2\n",
        "tests/e2e/conftest.py": "Z = 3\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    assert precompile(tmp_path, pytestconfig) == 2  # the test module and the conftest
    assert Path(importlib.util.cache_from_source(str(tmp_path / "runtime/m.py"))).is_file()
    assert Path(importlib.util.cache_from_source(str(tmp_path / "tests/support/helper.py"))).is_file()
    # a test module's cache is pytest's rewritten one, which a worker validates and reads as its own
    assert not Path(importlib.util.cache_from_source(str(tmp_path / "tests/test_m.py"))).exists()
    state = pytestconfig.stash[rewrite.assertstate_key]
    for module in ("tests/test_m.py", "tests/e2e/conftest.py"):
        source = tmp_path / module
        pyc = source.parent / "__pycache__" / (source.name[:-3] + rewrite.PYC_TAIL)
        assert rewrite._read_pyc(source, pyc, state.trace) is not None, module

    assert precompile(tmp_path, pytestconfig) == 0  # up to date: nothing rewritten again
    (tmp_path / "tests/test_m.py").write_text("def test_one():\n    assert 2 + 2 == 4\n")
    assert precompile(tmp_path, pytestconfig) == 1  # a changed module is rewritten
    (tmp_path / "tests/test_broken.py").write_text("def test_(:\n")
    assert precompile(tmp_path, pytestconfig) == 0  # left to the worker, which reports it as collection does
