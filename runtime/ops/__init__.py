"""The runbook procedures, one module per procedure.

They return data (reports, dataclasses); rendering and exit codes belong to ``runtime.cli``.
Imports: everything below (``contract``, ``telemetry``, ``aws``, ``archive``, ``notify``,
``worker``, ``pipeline``, ``coordinator``), never ``runtime.sweeper`` or ``runtime.cli``.

* procedures: ``health``, ``verify``, ``stuck``, ``cleanup``, ``dlq``, ``restore``, ``restart``,
  ``logs`` and ``dashboards`` (the scheduled sweeper, ``runtime.sweeper``, reads through the views below);
* what they share: ``clients`` (lazy boto3 clients), ``queues`` (SQS depth and peeking),
  ``triggers_view`` / ``archive_view`` / ``processing_view`` (the bucket as the procedures read it:
  triggers, archives, the customers' processing objects, read-only), ``durations``
  (parsing and formatting times), ``progress`` (the progress callback) and ``errors``.

Read-only except ``cleanup``, ``dlq redrive``, ``restore`` and ``restart``; only
``restore`` writes ``archive/``; nothing here writes ``processing/`` (the processors' own objects).
"""
