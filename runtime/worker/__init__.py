"""The SQS worker, free of the domain: it knows queues and messages, never changes or customers.

``loop`` (the receive loop: bounded concurrency, message fate, drain on stop), ``in_flight`` (the
in-flight registry, visibility heartbeat, return to queue), ``liveness`` (the record the container
health check reads), ``task_protection`` (ECS scale-in protection), ``integration`` (both, for a
service task), ``envelopes`` (S3 and EventBridge object-created message bodies → records),
``outcome`` (the generic outcome type: :class:`Fate`, :class:`Handled`, :func:`overall_fate`),
``errors``. The customer processor (``runtime.pipeline``) and the change coordinator
(``runtime.coordinator``) each give the worker a :data:`MessageHandler`.

Imports: ``runtime.contract``, ``runtime.telemetry``. Other packages import the names below from
``runtime.worker`` itself. They load on first use (PEP 562), so the container health check, which
imports :func:`check_liveness` only, stays on the standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime.worker.envelopes import MAX_MESSAGE_BYTES, ObjectCreated, parse_message_body
    from runtime.worker.errors import UnparseableMessage
    from runtime.worker.in_flight import InFlight
    from runtime.worker.integration import task_integration
    from runtime.worker.liveness import Liveness, check_liveness, stale_after_seconds, write_liveness
    from runtime.worker.loop import SIGNAL_CHECK_SECONDS, MessageHandler, Worker, install_stop_signals
    from runtime.worker.outcome import Fate, Handled, HandlerFailed, overall_fate
    from runtime.worker.task_protection import ScaleInProtection, TaskProtectionClient

_HOMES = {
    "MAX_MESSAGE_BYTES": "envelopes",
    "ObjectCreated": "envelopes",
    "parse_message_body": "envelopes",
    "UnparseableMessage": "errors",
    "InFlight": "in_flight",
    "task_integration": "integration",
    "Liveness": "liveness",
    "check_liveness": "liveness",
    "stale_after_seconds": "liveness",
    "write_liveness": "liveness",
    "MessageHandler": "loop",
    "SIGNAL_CHECK_SECONDS": "loop",
    "Worker": "loop",
    "install_stop_signals": "loop",
    "Fate": "outcome",
    "Handled": "outcome",
    "HandlerFailed": "outcome",
    "overall_fate": "outcome",
    "ScaleInProtection": "task_protection",
    "TaskProtectionClient": "task_protection",
}

__all__ = [
    "MAX_MESSAGE_BYTES",
    "SIGNAL_CHECK_SECONDS",
    "Fate",
    "Handled",
    "HandlerFailed",
    "InFlight",
    "Liveness",
    "MessageHandler",
    "ObjectCreated",
    "ScaleInProtection",
    "TaskProtectionClient",
    "UnparseableMessage",
    "Worker",
    "check_liveness",
    "install_stop_signals",
    "overall_fate",
    "parse_message_body",
    "stale_after_seconds",
    "task_integration",
    "write_liveness",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'runtime.worker' has no attribute {name!r}")
    return getattr(importlib.import_module(f"runtime.worker.{home}"), name)
