"""Fixtures of the CLI tests (the ``platform`` and ``aws_credentials`` ones come from ``tests/runtime/conftest.py``)."""

from __future__ import annotations

from tests.support.ops_platform import light

__all__ = ["light"]
