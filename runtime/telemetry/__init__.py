"""Structured logs (Powertools Logger) and EMF metrics (Powertools metrics).

Imports: ``runtime.contract`` only.

Other packages import the names below from ``runtime.telemetry`` itself (``tests/test_layout.py``).
"""

from runtime.telemetry.log import log_context, logger, logs_to_stderr, restore_log_stream
from runtime.telemetry.metrics import MetricBatch, MetricsFactory, drop_metrics, metrics_to_stderr

__all__ = [
    "MetricBatch",
    "MetricsFactory",
    "drop_metrics",
    "log_context",
    "logger",
    "logs_to_stderr",
    "metrics_to_stderr",
    "restore_log_stream",
]
