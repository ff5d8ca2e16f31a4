"""Helpers shared by tests (not tests themselves): emulated platforms, synth helpers, worker processes."""
