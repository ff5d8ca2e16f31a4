"""Transient Trigger Pipeline runtime: the per-customer queue processor, the change coordinator, the
sweeper and the ops CLI.

Subpackages, each importing only those listed before it (``tests/test_layout.py`` enforces this):

* ``contract``  — pure definitions shared with the CDK side (keys, names, settings, metric names,
  thresholds, dashboard bodies);
* ``telemetry`` — logs and EMF metrics; ``aws`` — boto3 clients with one retry policy;
* ``archive``   — change documents, the compare-and-swap store, triggers, submission;
* ``notify``    — SES email and Graph meetings;
* ``pipeline``  — message envelopes, the state machine, the worker, the composition root;
* ``coordinator`` — the change coordinator: folds customers' results into the archive, owns meetings;
* ``ops``       — one module per runbook procedure, and the sweeper;
* ``services``  — the image's commands (worker, coordinator, sweep) without typer or rich;
* ``web``       — the submission site's API (Lambda) and its edge authentication check;
* ``cli``       — the typer app (``python -m runtime``, ``ttp``).
"""
