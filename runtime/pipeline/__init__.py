"""Processing a queue message: envelopes, the state machine of DESIGN.md §2, the worker, wiring.

Imports: ``runtime.contract``, ``runtime.telemetry``, ``runtime.aws``, ``runtime.archive``,
``runtime.notify``. Never ``runtime.ops`` or ``runtime.cli``.
"""
