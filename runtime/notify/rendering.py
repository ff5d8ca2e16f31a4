"""Rendering a change as an email: subject, text and HTML (DESIGN.md §4).

The HTML is escaped and the subject cannot carry a header break (it is one line, control characters
replaced, at most 250 characters).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from runtime.archive.documents import ArchiveDocument


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _one_line(value: str) -> str:
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())


def render_email(document: ArchiveDocument, customer_code: str) -> RenderedEmail:
    status = "CANCELLED" if document.status == "cancelled" else "Change notification"
    subject = _one_line(f"[{status}] {document.title} ({document.change_id})")[:250]
    window = ""
    if document.implementation_start:
        end = f" to {document.implementation_end.isoformat()}" if document.implementation_end else ""
        window = f"{document.implementation_start.isoformat()}{end}"
    rows = [
        ("Change", document.change_id),
        ("Revision", str(document.revision)),
        ("Status", document.status),
        ("Customer", customer_code),
    ]
    if window:
        rows.append(("Implementation window", window))
    text_lines = [document.title, "", *(f"{k}: {v}" for k, v in rows)]
    if document.summary:
        text_lines += ["", document.summary]
    if document.description:
        text_lines += ["", document.description]
    esc = html.escape
    table = "".join(f'<tr><th align="left">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in rows)
    paragraphs = "".join(
        f"<p>{esc(part).replace(chr(10), '<br>')}</p>" for part in (document.summary, document.description) if part
    )
    body_html = (
        f"<!DOCTYPE html><html><body><h2>{esc(document.title)}</h2><table>{table}</table>{paragraphs}</body></html>"
    )
    return RenderedEmail(subject, "\n".join(text_lines) + "\n", body_html)
