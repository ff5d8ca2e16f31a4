"""Transient Trigger Pipeline runtime: the per-customer queue processor, the change coordinator, the
sweeper and the ops CLI.

Subpackages, each importing only those listed before it, and of most only the names their ``__init__``
exports (``tests/test_layout.py`` enforces both):

* ``contract``  — pure definitions shared with the CDK side (keys, names, settings, metric names,
  thresholds, dashboard bodies);
* ``telemetry`` — logs and EMF metrics; ``aws`` — boto3 clients with one retry policy;
* ``worker``    — the SQS worker, free of the domain: loop, in-flight, liveness, envelopes, outcome type;
* ``archive``   — change documents, the one versioned-JSON (compare-and-swap) store, triggers, submission;
* ``notify``    — SES email and Graph meetings;
* ``pipeline``  — the customer processor: routing, the state machine, lease keeper, composition root;
* ``coordinator`` — the change coordinator: folds customers' results into the archive, owns meetings;
* ``ops``       — one module per runbook procedure;
* ``sweeper``   — the scheduled sweeper pass;
* ``services``  — the image's commands (worker, coordinator, sweep) without typer or rich;
* ``web``       — the submission site's API (Lambda) and its edge authentication check;
* ``cli``       — the typer app (``python -m runtime``, ``ttp``).
"""
