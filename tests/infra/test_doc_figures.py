"""Every figure the docs quote about the templates is the one ``devtools/doc_figures.py`` computes.

The docs quoted 22 alarm metrics ($2.20) a customer after the bounce and complaint alarms had made it
30, and resource counts one issue old: hand-typed figures go stale. Reuses the session's sample synth.
"""

from __future__ import annotations

from pathlib import Path

from devtools import doc_figures
from tests.support.synth import Synth


def test_every_doc_figure_agrees_with_the_sample_templates(sample: Synth) -> None:
    wrong = doc_figures.disagreements(doc_figures.figures(sample.templates))
    assert not wrong, "run `make doc-figures`:\n" + "\n".join(wrong)


def test_the_docs_quote_the_figures_the_issue_names() -> None:
    quoted = {m["name"] for doc in doc_figures.DOCS for m in doc_figures.SPAN.finditer(doc.read_text())}
    assert {
        "resources-ttpstorage",
        "resources-ttpplatform",
        "resources-ttpcustomer",
        "resources-ttpcustomeraccount",
        "customer-alarms",
        "customer-alarm-metrics",
        "customer-alarm-cost",
        "coordinator-alarms",
        "processing-schema",
    } <= quoted


def test_a_stale_or_unknown_figure_is_named_and_rewritten(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- figure:customer-alarms -->16<!-- /figure --> and <!-- figure:nope -->1<!-- /figure -->")
    values = {"customer-alarms": "17"}
    wrong = [w.split(": ", 1)[1] for w in _relative(doc_figures.disagreements, values, doc)]
    assert wrong == [
        "figure customer-alarms says '16', the templates '17'",
        "unknown figure 'nope' (known: customer-alarms)",
    ]
    doc_figures.rewrite(values, (doc,))
    assert doc.read_text().startswith("<!-- figure:customer-alarms -->17<!-- /figure -->")


def _relative(check, values, doc: Path) -> list[str]:  # type: ignore[no-untyped-def]
    root = doc_figures.ROOT
    doc_figures.ROOT = doc.parent
    try:
        return check(values, (doc,))  # type: ignore[no-any-return]
    finally:
        doc_figures.ROOT = root
