"""The exceptions of ``runtime.archive``: archive store failures and refused submissions."""

from __future__ import annotations

from runtime.contract.errors import PipelineError


class ArchiveError(PipelineError):
    """Base of archive problems; ``retryable`` is False for the ones that will not heal by retrying."""


class ArchiveMissing(ArchiveError):
    """``archive/{change_id}.json`` does not exist."""

    retryable = False


class ArchiveInvalid(ArchiveError):
    """``archive/{change_id}.json`` is not a valid change document (or holds another change)."""

    retryable = False


class ArchiveConflict(ArchiveError):
    """Compare-and-swap lost too many times in a row; the caller may try again later."""


class InvalidSubmission(ValueError):
    """The change document or customer list is invalid; nothing was written."""
