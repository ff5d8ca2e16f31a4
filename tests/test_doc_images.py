"""Every image a Markdown page shows exists where the page points (relative to the page, as GitHub and
every renderer resolve it), and the README shows the change page (issue 23)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def _pages() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", "*.md"], cwd=ROOT, capture_output=True, check=True, text=True)
    return [ROOT / p for p in out.stdout.split("\0") if p and "node_modules" not in p]


def test_every_image_a_page_shows_exists() -> None:
    missing = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in _pages()
        for target in _IMAGE.findall(page.read_text(encoding="utf-8"))
        if "://" not in target and not (page.parent / target).is_file()
    ]
    assert missing == []


def test_the_readme_shows_the_change_page() -> None:
    assert "docs/change-page.png" in _IMAGE.findall((ROOT / "README.md").read_text(encoding="utf-8"))
