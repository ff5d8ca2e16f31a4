"""CloudWatch metrics as Embedded Metric Format log lines (Powertools ``EphemeralMetrics``).

No API call per metric: CloudWatch Logs extracts the metrics from the JSON lines the process prints.
Names are the runbook's (its ``get-metric-statistics`` commands keep working), from
:class:`runtime.contract.metric_names.MetricName`; every metric has a
``CustomerCode`` dimension so alarms can be per customer.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import IO

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from runtime.contract.metric_names import CUSTOMER_DIMENSION, MetricName

_write_lock = threading.Lock()
_to_stderr = threading.Event()
_dropped = threading.Event()


def metrics_to_stderr(enabled: bool = True) -> None:
    """Send the EMF lines of batches without a stream of their own to stderr (``enabled``) or stdout.

    The CLI's one-shot commands turn it on so that their stdout is only their output (one JSON
    document with ``--json``); the services (worker, coordinator) leave it off: in ECS their stdout
    goes to CloudWatch Logs, which extracts the metrics from those lines."""
    if enabled:
        _to_stderr.set()
    else:
        _to_stderr.clear()


def drop_metrics(enabled: bool = True) -> None:
    """Write no EMF line of batches without a stream of their own (``enabled``), or write them again.

    For the CLI's interactive ``submit`` and ``process``: run by a person, their metric lines reach no
    CloudWatch Logs and only bury the result; ``--debug`` keeps them (on stderr)."""
    if enabled:
        _dropped.set()
    else:
        _dropped.clear()


class MetricBatch:
    """Metrics of one unit of work (one message, one sweep of one customer), written as one EMF line."""

    def __init__(self, namespace: str, customer_code: str, stream: IO[str] | None = None) -> None:
        # No ``service``: Powertools would add it as a second dimension and the alarms, which
        # select on CustomerCode alone, would never see the metric.
        self._metrics = EphemeralMetrics(namespace=namespace)
        self._metrics.add_dimension(name=CUSTOMER_DIMENSION, value=customer_code)
        self._stream = stream
        self._empty = True

    def add(self, name: MetricName, value: float = 1.0) -> None:
        unit = MetricUnit.Seconds if name.in_seconds else MetricUnit.Count
        self._metrics.add_metric(name=name.value, unit=unit, value=value)
        self._empty = False

    def flush(self) -> None:
        if self._empty:
            return
        line = json.dumps(self._metrics.serialize_metric_set(), separators=(",", ":"))
        self._metrics.clear_metrics()
        self._empty = True
        if self._stream is None and _dropped.is_set():
            return
        stream = self._stream or (sys.stderr if _to_stderr.is_set() else sys.stdout)
        with _write_lock:
            stream.write(line + "\n")
            stream.flush()

    def __enter__(self) -> MetricBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


class MetricsFactory:
    """Hands out batches for a namespace; tests pass a stream to read the EMF lines back."""

    def __init__(self, namespace: str, stream: IO[str] | None = None) -> None:
        self.namespace = namespace
        self.stream = stream

    def batch(self, customer_code: str) -> MetricBatch:
        return MetricBatch(self.namespace, customer_code, self.stream)
