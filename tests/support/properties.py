"""Hypothesis settings shared by the property tests."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def bounded(max_examples: int) -> settings:
    """Per-test settings (not a global profile, which would change other tests' hypothesis runs): a bounded
    number of examples and no per-example deadline — moto calls vary in time on a busy 2-core CI machine."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
        print_blob=True,
    )
