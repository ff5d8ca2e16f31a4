"""Dashboard bodies: re-exported from :mod:`runtime.dashboard` (the single source).

The bodies live in the runtime package because the ops CLI in the runtime image prints them
(``python -m runtime dashboard-json``); the constructs deploy the very same dicts. No aws_cdk import.
"""

from __future__ import annotations

from runtime.dashboard import (
    MAX_BODY_BYTES,
    MAX_SEARCHES_PER_WIDGET,
    MAX_WIDGETS,
    SEARCH_BUDGET,
    customer_dashboard_body,
    overview_dashboard_body,
    runbook_widgets,
    searches_in_widget,
)

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_SEARCHES_PER_WIDGET",
    "MAX_WIDGETS",
    "SEARCH_BUDGET",
    "customer_dashboard_body",
    "overview_dashboard_body",
    "runbook_widgets",
    "searches_in_widget",
]
