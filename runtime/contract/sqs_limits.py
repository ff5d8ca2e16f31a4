"""Amazon SQS service limits the pipeline relies on (documented quotas, not settings)."""

from __future__ import annotations

MAX_BATCH_SIZE = 10
"""Messages per ``ReceiveMessage`` and entries per ``ChangeMessageVisibilityBatch`` / ``DeleteMessageBatch``."""

MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 60 * 60
"""A message's visibility timeout (and any ``ChangeMessageVisibility``) is capped at 12 hours."""
