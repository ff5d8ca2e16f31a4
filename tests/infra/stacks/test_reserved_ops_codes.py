"""Issue 22: the ops CLI names the platform's own queues ``coordinator`` and ``delivery-events``
(``dlq --customer …``, ``health``); a customer of either code could never be told apart from them, so
the config refuses both, naming the field and the fix."""

from __future__ import annotations

import pytest

from runtime.contract import names
from stacks.config import RESERVED_CUSTOMER_CODES
from tests.infra.stacks.test_config import error_of, raw


@pytest.mark.parametrize("code", sorted(names.PLATFORM_QUEUE_LABELS))
def test_a_customer_code_the_ops_cli_uses_for_a_platform_queue_is_refused(code: str) -> None:
    data = raw()
    data["customers"][1]["code"] = code
    error = error_of(data)
    assert "ttp.customers[1].code" in error, error
    assert f"customer codes {code!r}" in error and "choose another code" in error
    assert f"--customer {code}" in error and names.PLATFORM_QUEUE_LABELS[code] in error


def test_every_platform_queue_label_is_reserved() -> None:
    assert set(names.PLATFORM_QUEUE_LABELS) <= RESERVED_CUSTOMER_CODES
