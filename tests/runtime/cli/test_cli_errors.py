"""How the commands fail: AWS errors become one line that says what to do, and exit 3."""

from __future__ import annotations

import pytest

from tests.support.aws_platform import Platform
from tests.support.ops_platform import (
    ops_env,
    run,
)

MIN20 = 20 * 60


def test_aws_errors_say_what_to_do(light: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = light
    result = run(monkeypatch, ops_env(platform, TTP_BUCKET_NAME="no-such-bucket-here"), "cleanup")
    assert result.exit_code == 3
    assert "NoSuchBucket" in result.stderr and "check TTP_BUCKET_NAME" in result.stderr
