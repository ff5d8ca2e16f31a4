"""The exceptions of ``runtime.notify``: email (SES), Microsoft Graph and meetings.

All derive from :class:`~runtime.contract.errors.PipelineError`; ``retryable`` says whether the message
may succeed later. The only non-retryable email failure is a wrong SES setup of the customer.
"""

from __future__ import annotations

from typing import Any

from runtime.contract.errors import PipelineError

# ---- email -------------------------------------------------------------------------------------


class EmailError(PipelineError):
    """Sending failed; the message returns to the queue (trigger and lease stay)."""


class EmailConfigurationError(EmailError):
    """The customer's SES setup is wrong (missing list or topic): retrying will not help soon."""

    retryable = False


class MessageRejected(EmailError):
    """SES refused the whole message (content, size, sender, configuration), not one recipient.

    Nothing is recorded as sent or rejected for the addresses not yet mailed; the message retries (an
    operator may fix the sender or configuration meanwhile) and the queue's redrive policy moves it to
    the DLQ after ``maxReceiveCount`` receives, with the trigger kept for a redrive (docs/design.md §4)."""


class SendInterrupted(EmailError):
    """The worker is shutting down; what was sent is checkpointed, the rest is retried later."""


# ---- Microsoft Graph ---------------------------------------------------------------------------


class GraphError(PipelineError):
    """A Graph request failed; ``code`` and ``graph_message`` are Graph's own error fields.

    ``retryable`` is decided per response: throttling, 5xx and network failures are, other 4xx not.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        graph_message: str = "",
        request_id: str = "",
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.graph_message = graph_message
        self.request_id = request_id
        self.retryable = retryable


class GraphAuthError(GraphError):
    """No usable token: the token request failed, or Graph rejected a freshly acquired token."""


class GraphThrottled(GraphError):
    """Graph kept answering 429/503 (or asked for a longer wait than we block for); retry later."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, retryable=True, **kwargs)
        self.retry_after = retry_after


# ---- meetings ----------------------------------------------------------------------------------


class MeetingError(PipelineError):
    """The meeting could not be reconciled now; the processor retries the message later."""


class MeetingBusy(MeetingError):
    """Another coordinator attempt holds the meeting lease and has not recorded its result yet.

    ``retry_after`` is how long that lease still runs: retrying sooner only spends the message's
    receives (a holder that was killed never records, so every early retry finds the lease again and
    the message reaches the DLQ although the next retry after the expiry would have succeeded).
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class MeetingConfigurationError(MeetingError):
    """Settings do not allow reading a customer's calendar subscribers (names the variable to fix)."""
