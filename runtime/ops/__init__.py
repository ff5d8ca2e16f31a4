"""The runbook procedures, one module per procedure, plus the scheduled sweeper.

They return data (reports, dataclasses); rendering and exit codes belong to ``runtime.cli``.
Imports: everything below (``contract``, ``telemetry``, ``aws``, ``archive``, ``notify``,
``pipeline``), never ``runtime.cli``.

* procedures: ``health``, ``verify``, ``stuck``, ``cleanup``, ``dlq``, ``restore``, ``restart``,
  ``logs``, ``dashboards`` and ``sweep`` (the sweeper, also scheduled);
* what they share: ``clients`` (lazy boto3 clients), ``queues`` (SQS depth and peeking),
  ``triggers_view`` / ``archive_view`` / ``processing_view`` (the bucket as the procedures read it:
  triggers, archives, the customers' processing objects, read-only), ``durations``
  (parsing and formatting times), ``progress`` (the progress callback) and ``errors``.

Read-only except ``cleanup``, ``dlq redrive``, ``restore``, ``restart`` and the sweeper; only
``restore`` writes ``archive/``; nothing here writes ``processing/`` (the processors' own objects).
"""
