"""Transient Trigger Pipeline runtime: the per-customer queue processor and the ops CLI."""
