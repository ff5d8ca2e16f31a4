"""Every design reference points at ``docs/design.md``, and every cited section exists there.

README, docs, code and tests once cited a ``DESIGN.md`` and ``shared/seeds/…`` that were never in the
repository: a newcomer followed the reference and found nothing.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_DEAD = re.compile(r"DESIGN(?:\.md| §| v2)|(?<![\w.-])/?(?:work/)?shared/(?:seeds|notes|DESIGN)")
_CITED = re.compile(r"docs/design\.md,? (§\d+(?:, §\d+)*)")
_THIS = Path(__file__).resolve()


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True).stdout
    paths = [ROOT / p for p in out.split("\0") if p]
    return [p for p in paths if p.is_file() and p.resolve() != _THIS and "__snapshots__" not in p.parts]


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ""


def test_no_tracked_file_references_a_missing_design_document() -> None:
    hits = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in _tracked()
        for n, line in enumerate(_text(p).splitlines(), 1)
        if _DEAD.search(line)
    ]
    assert not hits, "cite docs/design.md (its numbered sections) instead:\n" + "\n".join(hits)


def test_every_cited_design_section_exists() -> None:
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^### (\d+)\. ", design, re.MULTILINE))
    missing = []
    for p in _tracked():
        for n, line in enumerate(_text(p).splitlines(), 1):
            for group in _CITED.findall(line):
                for number in re.findall(r"§(\d+)", group):
                    if number not in sections:
                        missing.append(f"{p.relative_to(ROOT)}:{n}: §{number}")
    assert sections, "docs/design.md has no numbered overview sections (### N. Title)"
    assert not missing, "docs/design.md has no such section:\n" + "\n".join(missing)


_TEST_PATH = re.compile(r"(?<![\w/.-])tests/[\w/]+\.py")


def test_every_test_module_the_docs_name_exists() -> None:
    """Decisions cite their tests by path; a moved test module leaves the citation pointing nowhere."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "benchmarks").glob("*.md"))]
    missing = [
        f"{doc.relative_to(ROOT)}: {path}"
        for doc in docs
        for path in sorted(set(_TEST_PATH.findall(_text(doc))))
        if not (ROOT / path).is_file()
    ]
    assert not missing, "name the test module's current path:\n" + "\n".join(missing)
