"""Rendering a change as an email: subject, text and HTML (docs/design.md §4).

The HTML is escaped and the subject cannot carry a header break (it is one line, control characters
replaced, at most 250 characters).

Both parts end with a visible unsubscribe link: SES's placeholder :data:`UNSUBSCRIBE_PLACEHOLDER`, which
SES replaces with the recipient's own unsubscribe URL when the email is sent with
``ListManagementOptions`` (every email is: :mod:`runtime.notify.ses`), matching the one-click
``List-Unsubscribe`` headers SES adds (SES Developer Guide, "Using subscription management":
https://docs.aws.amazon.com/ses/latest/dg/sending-email-subscription-management.html). SES substitutes
the placeholder wherever it appears, so a change's own text could smuggle one in (a title holding
``{{amazonSESUnsubscribeUrl}}`` would become a live link): content is neutralised first
(:func:`neutralise_placeholders`), so our footer is the only placeholder an email carries.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from runtime.archive import ArchiveDocument
from runtime.notify.email_tags import email_tags

UNSUBSCRIBE_PLACEHOLDER = "{{amazonSESUnsubscribeUrl}}"
_ZERO_WIDTH_SPACE = "\u200b"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    tags: tuple[tuple[str, str], ...] = ()
    """``(name, value)`` of the SES message tags (already encoded, :mod:`runtime.notify.email_tags`)."""


def neutralise_placeholders(value: str) -> str:
    """``value`` with every ``{{`` broken by a zero-width space, so SES substitutes nothing in it.

    Readers see the same text; SES's placeholders all start with ``{{``, and none survives. Applied
    to content before HTML escaping (``html.escape`` leaves braces alone)."""
    while "{{" in value:
        value = value.replace("{{", "{" + _ZERO_WIDTH_SPACE + "{")
    return value


def _one_line(value: str) -> str:
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())


def render_email(document: ArchiveDocument, customer_code: str) -> RenderedEmail:
    status = "CANCELLED" if document.status == "cancelled" else "Change notification"
    clean = neutralise_placeholders
    title, summary, description = clean(document.title), clean(document.summary), clean(document.description)
    subject = _one_line(f"[{status}] {title} ({document.change_id})")[:250]
    window = ""
    if document.implementation_start:
        end = f" to {document.implementation_end.isoformat()}" if document.implementation_end else ""
        window = f"{document.implementation_start.isoformat()}{end}"
    rows = [
        ("Change", clean(document.change_id)),
        ("Revision", str(document.revision)),
        ("Status", document.status),
        ("Customer", clean(customer_code)),
    ]
    if window:
        rows.append(("Implementation window", window))
    text_lines = [title, "", *(f"{k}: {v}" for k, v in rows)]
    if summary:
        text_lines += ["", summary]
    if description:
        text_lines += ["", description]
    text_lines += ["", f"Unsubscribe: {UNSUBSCRIBE_PLACEHOLDER}"]
    esc = html.escape
    table = "".join(f'<tr><th align="left">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in rows)
    paragraphs = "".join(f"<p>{esc(part).replace(chr(10), '<br>')}</p>" for part in (summary, description) if part)
    footer = f'<p><a href="{UNSUBSCRIBE_PLACEHOLDER}">Unsubscribe</a></p>'
    body_html = (
        f"<!DOCTYPE html><html><body><h2>{esc(title)}</h2><table>{table}</table>{paragraphs}{footer}</body></html>"
    )
    tags = tuple(
        (tag["Name"], tag["Value"]) for tag in email_tags(document.change_id, customer_code, document.revision)
    )
    return RenderedEmail(subject, "\n".join(text_lines) + "\n", body_html, tags)
