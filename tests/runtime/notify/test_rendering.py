"""Rendering a change as an email: escaped HTML, a single-line subject, cancellations."""

from __future__ import annotations

from runtime.archive.documents import ArchiveDocument
from runtime.notify.rendering import render_email

# ---- rendering ----------------------------------------------------------------------------------


def test_rendering_escapes_html_and_keeps_subject_single_line() -> None:
    doc = ArchiveDocument.model_validate(
        {
            "change_id": "CHG-1",
            "title": "Upgrade <script>alert(1)</script> & more",
            "customers": ["hts"],
            "description": "line1\n<img src=x onerror=alert(1)>",
            "implementation_start": "2026-12-01T10:00:00Z",
        }
    )
    email = render_email(doc, "hts")
    assert "\n" not in email.subject and "\r" not in email.subject
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert "<img" not in email.html and "&lt;img src=x onerror=alert(1)&gt;" in email.html
    assert "<script>alert(1)</script>" in email.text  # plain text is plain
    assert "2026-12-01T10:00:00+00:00" in email.text


def test_cancelled_change_says_so_in_the_subject() -> None:
    doc = ArchiveDocument.model_validate({"change_id": "C", "title": "t", "customers": ["a"], "status": "cancelled"})
    assert render_email(doc, "a").subject.startswith("[CANCELLED]")
