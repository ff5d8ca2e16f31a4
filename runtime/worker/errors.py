"""The exceptions of ``runtime.worker``: a queue message that is none of the envelopes it reads."""

from __future__ import annotations


class UnparseableMessage(ValueError):
    """A queue message that is none of the envelopes this worker accepts (a poison message)."""
