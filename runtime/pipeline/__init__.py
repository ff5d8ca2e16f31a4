"""The customer processor: the state machine of docs/design.md §2 run on one customer's queue.

``routing`` (steps 0-1: envelope records → triggers of this customer), ``state_machine`` (steps 2-9),
``lease`` (step 6's lease keeper, on a narrow store interface), ``result`` (:class:`Outcome` and
:class:`Result`, what the processor and the change coordinator return to the worker for each record),
``composition`` (building the processor and its worker from settings), ``errors``. The generic SQS
worker it runs on is ``runtime.worker``.

Imports: ``runtime.contract``, ``runtime.telemetry``, ``runtime.aws``, ``runtime.archive``,
``runtime.notify``, ``runtime.worker``. Never ``runtime.coordinator``, ``runtime.ops`` or ``runtime.cli``.
Other packages import the names below from ``runtime.pipeline`` itself.
"""

from runtime.pipeline.composition import build_processor, build_worker
from runtime.pipeline.errors import LeaseHeld, LeaseLost, Superseded
from runtime.pipeline.lease import MAX_UNRECORDED_EMAILS, LeaseKeeper, lease_problem
from runtime.pipeline.result import Outcome, Result, failure_outcome
from runtime.pipeline.routing import ProcessorHandler, decide, handle_records
from runtime.pipeline.sending import Mailer, RecipientDone, submitted_at
from runtime.pipeline.state_machine import Processor

__all__ = [
    "MAX_UNRECORDED_EMAILS",
    "LeaseHeld",
    "LeaseKeeper",
    "LeaseLost",
    "Mailer",
    "Outcome",
    "Processor",
    "ProcessorHandler",
    "RecipientDone",
    "Result",
    "Superseded",
    "build_processor",
    "build_worker",
    "decide",
    "failure_outcome",
    "handle_records",
    "lease_problem",
    "submitted_at",
]
