"""Telling people: SES email (rendering, recipients, sending) and meetings through Microsoft Graph.

Imports: ``runtime.contract``, ``runtime.telemetry``, ``runtime.aws``, ``runtime.archive``.
"""
