"""The dependency locks match their inputs (``make lock``), carry hashes, and the image installs only them.

Read from the files alone (no network, no lock tool): every requirement of an input ``*.in`` appears in
its lock at the same version, every lock entry has hashes, the CDK and image locks agree with the dev
lock the tests run on, and the image lock holds neither the CDK nor the ops CLI's rich/typer.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# input → lock, as the ``lock`` target of the Makefile writes them.
LOCKS = {
    ROOT / "requirements-dev.in": ROOT / "requirements-dev.txt",
    ROOT / "requirements.in": ROOT / "requirements.txt",
    ROOT / "runtime" / "requirements.in": ROOT / "runtime" / "requirements.txt",
}
DEV_LOCK = ROOT / "requirements-dev.txt"
IMAGE_LOCK = ROOT / "runtime" / "requirements.txt"
NOT_IN_IMAGE = {
    # the ops CLI (pyproject extra "ops"): the worker, coordinator and sweeper run without it
    "typer",
    "rich",
    "pygments",
    "markdown-it-py",
    "mdurl",
    "shellingham",
    # the CDK side
    "aws-cdk-lib",
    "constructs",
    "cdk-nag",
    "jsii",
}
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[0-9][0-9A-Za-z.+!-]*)\s*(?:;.*)?$"
)


def normalize(name: str) -> str:
    """PEP 503: ``Typing_Extensions`` and ``typing-extensions`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def input_pins(path: Path) -> dict[str, str]:
    """``name → version`` of an input file and the inputs it includes with ``-r``; each must be ``==``."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            pins.update(input_pins(path.parent / line[3:].strip()))
            continue
        match = PIN.match(line)
        assert match, f"{path.relative_to(ROOT)}: {line!r} is not pinned as name==version"
        pins[normalize(match["name"])] = match["version"]
    return pins


def lock_entries(path: Path) -> dict[str, tuple[str, list[str]]]:
    """``name → (version, hashes)`` of a lock written by ``uv pip compile --generate-hashes``."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current: str | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip().removesuffix("\\").strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash="):
            assert current is not None, f"{path.relative_to(ROOT)}: a hash before any requirement"
            entries[current][1].append(line.removeprefix("--hash="))
            continue
        match = PIN.match(line)
        assert match, f"{path.relative_to(ROOT)}: {line!r} is not an exact pin (name==version)"
        current = normalize(match["name"])
        entries[current] = (match["version"], [])
    return entries


@pytest.mark.parametrize("source", LOCKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_input_requirement_is_in_its_lock_at_the_same_version(source: Path) -> None:
    lock = lock_entries(LOCKS[source])
    wanted = input_pins(source)
    assert wanted, f"{source.name} pins nothing"
    mismatched = {
        name: (version, lock[name][0] if name in lock else "missing")
        for name, version in wanted.items()
        if name not in lock or lock[name][0] != version
    }
    assert mismatched == {}, f"run `make lock`: (input, lock) versions differ for {mismatched}"


@pytest.mark.parametrize("lock", LOCKS.values(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_lock_entry_has_sha256_hashes(lock: Path) -> None:
    entries = lock_entries(lock)
    assert len(entries) >= len(input_pins(next(s for s, out in LOCKS.items() if out == lock)))
    unhashed = [name for name, (_, hashes) in entries.items() if not hashes]
    assert unhashed == []
    malformed = [h for _, hashes in entries.values() for h in hashes if not re.fullmatch(r"sha256:[0-9a-f]{64}", h)]
    assert malformed == []


@pytest.mark.parametrize("lock", [ROOT / "requirements.txt", IMAGE_LOCK], ids=["cdk", "image"])
def test_cdk_and_image_locks_hold_only_versions_the_tests_run_with(lock: Path) -> None:
    dev = lock_entries(DEV_LOCK)
    differing = {
        name: (version, dev[name][0] if name in dev else "missing")
        for name, (version, _) in lock_entries(lock).items()
        if name not in dev or dev[name][0] != version
    }
    assert differing == {}, f"{lock.relative_to(ROOT)} vs requirements-dev.txt: run `make lock`"


def test_image_lock_holds_neither_the_cdk_nor_the_ops_cli() -> None:
    assert set(lock_entries(IMAGE_LOCK)) & NOT_IN_IMAGE == set()


def test_dockerfile_installs_only_the_hashed_image_lock_from_a_digest_pinned_base() -> None:
    dockerfile = (ROOT / "runtime" / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps --requirement /app/runtime/requirements.txt" in dockerfile
    assert "COPY requirements.txt /app/runtime/requirements.txt" in dockerfile
    from_lines = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(from_lines) == 1
    assert re.fullmatch(r"FROM python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", from_lines[0]), from_lines[0]
    tag = from_lines[0].removeprefix("FROM ").split("@")[0]
    assert f"# Base: {tag}," in dockerfile, "the comment names the tag the digest belongs to"


def test_make_setup_installs_the_dev_lock_with_hashes_and_without_the_lock_tool() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^\$\(VENV\)/\.installed:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None
    assert "pip install --quiet --require-hashes -r requirements-dev.txt" in recipe.group(1)
    assert "uv" not in recipe.group(1).split()
    assert re.search(r"^lock: \$\(UV\)$", makefile, re.M)
