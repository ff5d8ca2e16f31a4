"""Limits of the change document itself (not settings: they keep a change mailable)."""

from __future__ import annotations

MAX_CHANGE_DOCUMENT_BYTES = 1024 * 1024
"""Largest change document ``submit`` accepts, in bytes of its JSON (UTF-8).

Every customer's email carries the summary and the description twice (text and HTML part). HTML
escaping makes a character up to 6 bytes (``'`` becomes ``&#x27;``) and the transfer encoding up
to 3 bytes per byte (quoted-printable; base64 adds a third), so a 1 MiB document renders at most
about 7 MiB of body and about 22 MB encoded: under SES v2's 40 MB per message, including encoding
(SES Developer Guide, "Service quotas in Amazon SES"), with room for headers. A change that needs
more should link to its details instead.
"""
