"""Processing a queue message: envelopes, the state machine of DESIGN.md §2, the worker, wiring.

``envelopes`` (message bodies → records), ``routing`` (steps 0-1), ``state_machine`` (steps 2-9 and the
message's fate), ``in_flight`` (visibility heartbeat, return to queue), ``worker`` (the receive loop),
``composition`` (building them from settings), ``errors``.

Imports: ``runtime.contract``, ``runtime.telemetry``, ``runtime.aws``, ``runtime.archive``,
``runtime.notify``. Never ``runtime.ops`` or ``runtime.cli``.
"""
