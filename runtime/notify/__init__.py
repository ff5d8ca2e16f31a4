"""Telling people: SES email (rendering, recipients, sending) and meetings through Microsoft Graph.

``rendering`` (the email's subject, text and HTML), ``email_tags`` (the SES message tags of every email
and reading them back from a delivery event), ``ses`` (recipients, rate, sending), ``graph``
(tokens and calendar calls), ``attendees`` (calendar subscribers, merged and capped), ``meetings`` (the
change's one meeting), ``errors``.

Imports: ``runtime.contract``, ``runtime.telemetry``, ``runtime.aws``, ``runtime.archive``.
"""
