"""Fixtures of the sweeper tests (``platform`` and ``aws_credentials`` come from ``tests/runtime/conftest.py``)."""

from __future__ import annotations

from tests.support.ops_platform import light

__all__ = ["light"]
