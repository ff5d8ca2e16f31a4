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


# ---- the unsubscribe link and the tags (issue 13) -----------------------------------------------

PLACEHOLDER = "{{amazonSESUnsubscribeUrl}}"


def test_both_parts_end_with_a_visible_unsubscribe_link() -> None:
    email = render_email(ArchiveDocument.model_validate({"change_id": "C", "title": "t", "customers": ["a"]}), "a")
    assert email.text.rstrip().endswith(f"Unsubscribe: {PLACEHOLDER}")
    assert f'<a href="{PLACEHOLDER}">Unsubscribe</a>' in email.html  # braces survive the HTML escaping
    assert email.text.count(PLACEHOLDER) == 1 and email.html.count(PLACEHOLDER) == 1


def test_a_change_cannot_inject_an_ses_placeholder() -> None:
    """SES substitutes its placeholders anywhere in the body: a title, summary or description holding
    one would become a second live link (or another substitution). Only the footer's survives."""
    doc = ArchiveDocument.model_validate(
        {
            "change_id": "C",
            "title": f"Click {PLACEHOLDER}",
            "summary": "{{{amazonSESUnsubscribeUrl}}}",
            "description": "<a href='{{amazonSESUnsubscribeUrl}}'>x</a> {{ other }}",
            "customers": ["a"],
        }
    )
    email = render_email(doc, "a")
    for part in (email.subject, email.text, email.html):
        assert part.count("{{") == (0 if part is email.subject else 1), part
    assert email.text.count(PLACEHOLDER) == 1 and email.html.count(PLACEHOLDER) == 1
    assert "Click {\u200b{amazonSESUnsubscribeUrl}}" in email.text  # readers see the same characters


def test_the_email_is_tagged_with_change_customer_and_revision() -> None:
    doc = ArchiveDocument.model_validate({"change_id": "CHG.1", "title": "t", "customers": ["hts"], "revision": 4})
    assert render_email(doc, "hts").tags == (
        ("ttp-change-id", "_Q0hHLjE"),
        ("ttp-customer-code", "hts"),
        ("ttp-revision", "4"),
    )
