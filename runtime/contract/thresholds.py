"""The alarm thresholds of docs/design.md §6 ("Alert Thresholds" of the architecture diagrams), defined once.

| severity | trigger age | archive update failure | queue depth | ECS |
|---|---|---|---|---|
| critical | > 15 min | > 5 % | > 50 | all tasks down (while work is waiting) |
| warning | > 10 min | > 2 % | > 20 | CPU > 80 % |
| info | trigger delete failure > 10 % | processing duration > 5 min | > 10 | memory > 70 % |

The alarms (and their descriptions), ``health``, ``stuck`` and the sweeper all read these numbers;
nothing else writes them down. docs/design.md §6 adds the change coordinator's own: the age of its queue's
oldest event, any message in its DLQ and meetings that cannot be reconciled.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AlarmThresholds:
    """Every alarm threshold; a platform may pass its own to ``CustomerAlarmsProps``."""

    trigger_age_critical_seconds: float = 900
    """A trigger older than this is stuck (critical). Default: 15 minutes."""
    trigger_age_warning_seconds: float = 600
    """A trigger older than this is late (warning). Default: 10 minutes."""
    archive_failure_critical_percent: float = 5
    """Share of failed archive updates that is critical. Default: 5 %."""
    archive_failure_warning_percent: float = 2
    """Share of failed archive updates that is a warning. Default: 2 %."""
    queue_depth_critical: float = 50
    """Messages waiting in a customer's queue: critical above this. Default: 50."""
    queue_depth_warning: float = 20
    """Messages waiting: warning above this. Default: 20."""
    queue_depth_info: float = 10
    """Messages waiting: info above this. Default: 10."""
    cpu_warning_percent: float = 80
    """Processor CPU, averaged over ``sustained_periods`` 5-minute periods. Default: 80 %."""
    memory_info_percent: float = 70
    """Processor memory, averaged over ``sustained_periods`` 5-minute periods. Default: 70 %."""
    trigger_delete_failure_info_percent: float = 10
    """Share of failed trigger deletions (the sweeper cleans them up). Default: 10 %."""
    processing_duration_info_seconds: float = 300
    """Processing one trigger took longer than this. Default: 5 minutes."""
    dlq_messages_critical: float = 0
    """Messages in a dead-letter queue above this are critical. Default: 0 (any message)."""
    tasks_down_minutes: int = 5
    """Minutes with no processor task running while messages wait. Default: 5."""
    sustained_periods: int = 3
    """5-minute periods a CPU or memory level must last before it alarms. Default: 3 (15 minutes)."""
    coordinator_queue_age_critical_seconds: float = 900
    """The change coordinator's oldest waiting event is older than this (critical): results are not folded
    into the archive, meetings not reconciled. Default: 15 minutes."""
    coordinator_queue_age_warning_seconds: float = 600
    """The coordinator's oldest waiting event is older than this (warning). Default: 10 minutes."""
    meeting_failure_warning: float = 0
    """``MeetingFailure`` count per 5-minute period above which a meeting cannot be reconciled, when it
    lasts ``meeting_failure_periods`` periods (warning: emails are never held back). Default: 0 (any)."""
    meeting_failure_periods: int = 3
    """Consecutive 5-minute periods with meeting failures before the alarm (retries that recover in
    between do not alarm). Default: 3 (15 minutes)."""

    delivery_events_refused_warning: float = 0
    """``DeliveryEventsRefused`` per 5-minute period above which the warning fires: a delivery event that is
    not an SES event of this platform's emails, or that named a change, revision or customer that was not
    sent to (a customer account tagging emails it was not asked to send, a late event of a withdrawn
    change). Default: 0 (any)."""
    results_refused_critical: float = 0
    """``ResultsRefused`` count per 5-minute period above which the coordinator's security alarm fires: a
    result it refused to fold (for a customer its revision did not target, or a revision newer than the
    archive's) is never a retry that recovers. Default: 0 (any)."""

    bounce_rate_warning_percent: float = 2
    """Share of a customer's delivery outcomes that bounced (``EmailsBounced`` / (``EmailsDelivered`` +
    ``EmailsBounced``)) above which the warning fires. Default: 2 (%)."""
    bounce_rate_critical_percent: float = 5
    """Bounce rate above which the critical alarm fires; SES puts an account under review at 5 %.
    Default: 5 (%)."""
    complaint_rate_warning_percent: float = 0.05
    """Share of delivered emails marked as spam (``EmailsComplained`` / ``EmailsDelivered``) above which the
    warning fires. Default: 0.05 (%)."""
    complaint_rate_critical_percent: float = 0.1
    """Complaint rate above which the critical alarm fires; SES puts an account under review at 0.1 %.
    Default: 0.1 (%)."""

    def queue_depth_levels(self) -> tuple[tuple[float, str], ...]:
        """(threshold, severity), most severe first: how ``health`` grades a queue's depth."""
        return (
            (self.queue_depth_critical, "critical"),
            (self.queue_depth_warning, "warning"),
            (self.queue_depth_info, "info"),
        )


DEFAULT_THRESHOLDS = AlarmThresholds()

STUCK_AFTER_SECONDS = int(DEFAULT_THRESHOLDS.trigger_age_critical_seconds)
"""Default age at which ``stuck``, ``health`` and the sweeper call a trigger stuck (the critical alarm)."""

MISSING_TRIGGER_GRACE_SECONDS = 300
"""How old a change's archive must be before the sweeper re-creates a trigger its submission did not
write (a trigger PUT that failed after the archive write): long enough for the submitter to finish
writing one trigger per customer (seconds for hundreds of customers), short enough that the work
starts well before the trigger-age alarms (``trigger_age_warning_seconds``)."""
MISSING_TRIGGER_WINDOW_SECONDS = 24 * 3600
"""Only archives modified within this window are checked for missing triggers: it bounds the sweeper's
reads per pass (each archive is read about window / sweep interval times), and still lets a sweeper
that was down for up to a day catch up."""

LIVENESS_MARGIN_SECONDS = 60.0
"""How long past one long poll (``receive_wait_seconds``) the receive loop may go without an iteration
before the container health check calls it stuck: room for a receive's botocore retries and a slow
network, far below the 15-minute trigger-age alarm that noticed a hung worker before."""

LIVENESS_REFRESH_SECONDS = 1.0
"""The receive loop rewrites its liveness record at most this often (and at most every quarter of the
margin): once per iteration cost ~5 % of the worker's CPU under load (issue 21), and a record this much
older is still far inside its staleness limit."""

TASK_PROTECTION_EXPIRES_MINUTES = 60
"""Scale-in protection's expiry backstop (``ExpiresInMinutes``): longer than the longest expected
processing of one message (a long send), renewed while the worker stays busy, so a worker that dies
without unprotecting frees its task within this."""
TASK_PROTECTION_IDLE_SECONDS = 60.0
"""The worker releases scale-in protection only once it has had nothing in flight this long, so a
trickle of messages does not flap the protection (one agent call per change of state)."""
