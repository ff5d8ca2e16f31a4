"""``docs/runbook.md`` is read in an operator's 100-column terminal, code blocks included.

Its wide tables (up to 700 characters a row) wrapped into unreadable fragments there; a line may pass
100 characters only for a URL, which must not be broken.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 100
_URL = re.compile(r"<?https?://\S+")


def too_wide(text: str) -> list[str]:
    """The lines of ``text`` wider than :data:`WIDTH` once their URLs are left out, numbered."""
    return [
        f"{n}: ({len(line)}) {line[:60]}…"
        for n, line in enumerate(text.splitlines(), 1)
        if len(line) > WIDTH and len(_URL.sub("", line)) > WIDTH
    ]


def test_the_runbook_reads_in_a_100_column_terminal() -> None:
    wide = too_wide((ROOT / "docs" / "runbook.md").read_text(encoding="utf-8"))
    assert not wide, (
        f"docs/runbook.md lines over {WIDTH} characters (turn tables into lists, wrap prose and "
        "commands):\n" + "\n".join(wide)
    )


def test_a_wide_table_row_is_too_wide_and_a_long_url_is_not() -> None:
    assert too_wide("| a | " + "b" * 120 + " |")
    assert not too_wide("see https://example.com/" + "x" * 120)
