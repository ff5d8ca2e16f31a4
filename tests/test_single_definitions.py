"""One definition per fact: metric names and physical-name prefixes are written down in one module each.

A copy elsewhere (a quoted ``"TriggerAge"`` in an alarm, a hand-built ``"ttp-processor-..."``) would
drift the day one side is renamed; these tests find such copies in the source.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.contract import names
from runtime.contract.metric_names import MetricName

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("runtime", "cdk_constructs", "cdk_support", "stacks") for p in (ROOT / d).rglob("*.py"))
CODE_ONLY = re.compile(r'"""(.*?)"""', re.S)


def _code(path: Path) -> str:
    """The module without its docstrings, which may name things for the reader."""
    return CODE_ONLY.sub("", path.read_text())


def copies_of(literal: str, allowed: Path, *, whole: bool = False) -> list[str]:
    """Modules other than ``allowed`` whose code quotes ``literal`` (as a prefix, or ``whole``)."""
    quoted = re.compile(rf"""(["']){re.escape(literal)}""" + (r"\1" if whole else ""))
    return [str(p.relative_to(ROOT)) for p in SOURCES if p != allowed and quoted.search(_code(p))]


@pytest.mark.parametrize("metric", list(MetricName), ids=str)
def test_metric_names_are_quoted_only_in_the_enum(metric: MetricName) -> None:
    assert copies_of(metric.value, ROOT / "runtime" / "contract" / "metric_names.py") == []


@pytest.mark.parametrize(
    "prefix",
    [
        names.PROCESSOR_ROLE_PREFIX,
        names.SENDER_ROLE_PREFIX,
        names.CONTACT_READER_ROLE_PREFIX,
        names.EVENT_RULE_PREFIX,
        names.LOG_GROUP_PREFIX,
        names.CUSTOMER_DASHBOARD_PREFIX,
        "ttp-alarms-",
        "ttp-metadata-",
    ],
)
def test_physical_names_are_built_only_in_the_names_module(prefix: str) -> None:
    assert copies_of(prefix, ROOT / "runtime" / "contract" / "names.py") == []


@pytest.mark.parametrize(
    "name",
    [names.SWEEPER_ROLE_NAME, names.EVENTBRIDGE_ROUTER_ROLE_NAME, names.OVERVIEW_DASHBOARD_NAME, names.CLUSTER_NAME],
)
def test_fixed_names_are_written_only_in_the_names_module(name: str) -> None:
    assert copies_of(name, ROOT / "runtime" / "contract" / "names.py", whole=True) == []


def test_the_scan_finds_a_copy(tmp_path: Path) -> None:
    """The scanner itself: a quoted copy in code is found, one in a docstring is not."""
    probe = tmp_path / "probe.py"
    probe.write_text('"""Mentions "TriggerAge" for the reader."""\nNAME = "TriggerAge"\n')
    assert re.search(r"""(["'])TriggerAge""", _code(probe))
    probe.write_text('"""Mentions "TriggerAge" for the reader."""\n')
    assert not re.search(r"""(["'])TriggerAge""", _code(probe))
