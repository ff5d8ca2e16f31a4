"""The sweeper: the scheduled pass over ``customers/`` and ``archive/`` (``python -m runtime sweep``).

``sweep`` (the pass: trigger-age metrics, clean-up of recorded triggers, re-drives, fan-out repair; its
module docstring is the full account). It logs on the shared telemetry logger (``component: sweeper``)
and reads through the ops views (``runtime.ops``) the runbook commands use.

Imports: every layer below it up to ``runtime.ops``. Other packages import the names below from
``runtime.sweeper`` itself.
"""

from runtime.sweeper.sweep import (
    Log,
    SweepAction,
    Sweeper,
    SweepReport,
    run_sweep,
    s3_event_message,
    telemetry_log,
)

__all__ = ["Log", "SweepAction", "SweepReport", "Sweeper", "run_sweep", "s3_event_message", "telemetry_log"]
