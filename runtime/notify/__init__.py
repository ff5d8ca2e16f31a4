"""Telling people: SES email (rendering, recipients, sending) and meetings through Microsoft Graph.

``rendering`` (the email's subject, text and HTML), ``email_tags`` (the SES message tags of every email
and reading them back from a delivery event), ``ses`` (recipients, rate, sending), ``graph``
(tokens and calendar calls), ``attendees`` (calendar subscribers, merged and capped), ``meetings`` (the
change's one meeting: ``meeting_plan`` says what must happen, ``meeting_events`` builds the Graph event
bodies), ``errors``.

Imports: ``runtime.contract``, ``runtime.telemetry``, ``runtime.aws``, ``runtime.archive``.

Other packages import the names below from ``runtime.notify`` itself (``tests/test_layout.py``).
"""

from runtime.notify.email_tags import tags_from_event
from runtime.notify.errors import MeetingBusy, SendInterrupted
from runtime.notify.meeting_plan import Action, plan
from runtime.notify.meetings import build_meeting_coordinator
from runtime.notify.rendering import RenderedEmail, render_email
from runtime.notify.ses import CustomerSes, RateLimiter, SesMailer, StopSignal

__all__ = [
    "Action",
    "CustomerSes",
    "MeetingBusy",
    "RateLimiter",
    "RenderedEmail",
    "SendInterrupted",
    "SesMailer",
    "StopSignal",
    "build_meeting_coordinator",
    "plan",
    "render_email",
    "tags_from_event",
]
