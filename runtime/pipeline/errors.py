"""The exceptions of ``runtime.pipeline``: lost, held and superseded processing leases."""

from __future__ import annotations

from runtime.contract.errors import PipelineError


class LeaseLost(PipelineError):
    """Another owner took over our lease (a newer revision, or ours expired); stop side effects."""


class LeaseHeld(Exception):
    """Another message holds a live lease on the change (step 5): this delivery is a duplicate."""


class Superseded(PipelineError):
    """A newer revision's claim took over our lease: send nothing more, record what was sent as superseded."""
