"""The runbook procedures, one module per procedure, plus the scheduled sweeper.

They return data (reports, dataclasses); rendering and exit codes belong to ``runtime.cli``.
Imports: everything below (``contract``, ``telemetry``, ``aws``, ``archive``, ``notify``,
``pipeline``), never ``runtime.cli``.
"""
