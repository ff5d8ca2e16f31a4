"""The change documents and the bucket that holds them.

Document models (archive, processing lease, modifications), the compare-and-swap archive store,
transient triggers and archive-first submission. Imports: ``runtime.contract``, ``runtime.telemetry``,
``runtime.aws``.
"""
