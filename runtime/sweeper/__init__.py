"""The sweeper: the scheduled pass over ``customers/`` and ``archive/`` (``python -m runtime sweep``).

``sweep`` (the pass: trigger-age metrics, clean-up of recorded triggers, re-drives; its module docstring
is the full account), ``fanout`` (step 4, the fan-out repair), ``report`` (the pass's report and log).
It logs on the shared telemetry logger (``component: sweeper``) and reads through the ops views
(``runtime.ops``) the runbook commands use.

Imports: every layer below it up to ``runtime.ops``. Other packages import the names below from
``runtime.sweeper`` itself.
"""

from runtime.sweeper.report import Log, SweepAction, SweepReport, telemetry_log
from runtime.sweeper.sweep import Sweeper, run_sweep, s3_event_message

__all__ = ["Log", "SweepAction", "SweepReport", "Sweeper", "run_sweep", "s3_event_message", "telemetry_log"]
