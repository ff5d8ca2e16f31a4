"""The figures the docs quote about the synthesized templates, computed from one synthesis of the sample app.

    python -m devtools.doc_figures            # make doc-figures: rewrite every marked span in the docs
    python -m devtools.doc_figures --check    # exit 1 naming each span that disagrees

A figure in a doc is a marked span, ``<!-- figure:NAME -->VALUE<!-- /figure -->``; this module is the one
place that computes each ``NAME`` (resource counts per stack, alarms and their metrics, the alarms'
monthly cost, the processing object's fields). Before it, such numbers were typed by hand and went stale
as the templates grew. Times (synthesis, benchmarks) are not figures here: they are measurements, quoted
with the date they were measured on. ``tests/infra/test_doc_figures.py`` fails when a doc disagrees.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
SPAN = re.compile(r"<!-- figure:(?P<name>[a-z0-9-]+) -->(?P<value>.*?)<!-- /figure -->", re.S)

ALARM_METRIC_MONTHLY_USD = 0.10
"""CloudWatch's list price of one standard-resolution metric of an alarm, per month (us-east-1)."""
SAMPLE_CUSTOMER = "hts"
"""The sample app's always-on customer whose stacks the per-customer figures describe."""


def _alarms(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]


def _alarm_metrics(alarm: Mapping[str, Any]) -> int:
    """Metrics an alarm is billed for: one for a single-metric alarm, else each queried metric of its math."""
    if "Metrics" not in alarm:
        return 1
    return sum(1 for query in alarm["Metrics"] if "MetricStat" in query)


def _alarm_name(alarm: Mapping[str, Any]) -> str:
    name = alarm.get("AlarmName", "")
    return name if isinstance(name, str) else ""


def processing_schema() -> str:
    """The processing object's fields, one line each, from the pydantic model's JSON schema."""
    from runtime.archive.processing import ProcessingDocument

    schema = ProcessingDocument.model_json_schema(by_alias=False)  # stored snake_case (documents.py)
    lines = []
    for title, model in [("ProcessingDocument", schema), *sorted(schema.get("$defs", {}).items())]:
        required = set(model.get("required", []))
        fields = []
        for name, spec in model.get("properties", {}).items():
            kind = spec.get("type") or spec.get("$ref", "").rsplit("/", 1)[-1]
            if not kind and "anyOf" in spec:
                kind = " | ".join(s.get("type") or s.get("$ref", "").rsplit("/", 1)[-1] for s in spec["anyOf"])
            fields.append(f"`{name}` ({kind}{', required' if name in required else ''})")
        lines.append(f"* **{title}**: " + ", ".join(fields))
    return "\n" + "\n".join(lines) + "\n"


def figures(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Every figure by name, from the sample app's templates (stack name -> template)."""
    customer = templates[f"TtpCustomer-{SAMPLE_CUSTOMER}"]
    platform = templates["TtpPlatform"]
    customer_alarms = _alarms(customer)
    coordinator_alarms = [a for a in _alarms(platform) if _alarm_name(a).startswith("ttp-change-coordinator")]
    customer_metrics = sum(_alarm_metrics(a) for a in customer_alarms)
    coordinator_metrics = sum(_alarm_metrics(a) for a in coordinator_alarms)
    out = {
        f"resources-{name.lower().replace(f'-{SAMPLE_CUSTOMER}', '')}": str(len(template["Resources"]))
        for name, template in templates.items()
        if not name.startswith(("TtpCustomer-", "TtpCustomerAccount-")) or name.endswith(f"-{SAMPLE_CUSTOMER}")
    }
    out |= {
        "customer-alarms": str(sum(1 for a in customer_alarms if _alarm_name(a).startswith("ttp-"))),
        "customer-scaling-alarms": str(sum(1 for a in customer_alarms if not _alarm_name(a).startswith("ttp-"))),
        "customer-alarm-metrics": str(customer_metrics),
        "customer-alarm-cost": f"${customer_metrics * ALARM_METRIC_MONTHLY_USD:.2f}",
        "coordinator-alarms": str(len(coordinator_alarms)),
        "coordinator-alarm-metrics": str(coordinator_metrics),
        "processing-schema": processing_schema(),
    }
    return out


def synthesize_sample() -> dict[str, dict[str, Any]]:
    """The sample app of ``cdk.json``, synthesized once (no cdk-nag: it adds no resources)."""
    from stacks.app_builder import build_app

    with tempfile.TemporaryDirectory(prefix="doc-figures-") as outdir:
        assembly = build_app(None, outdir=outdir, nag=False).app.synth()
        return {stack.stack_name: stack.template for stack in assembly.stacks}


def disagreements(values: Mapping[str, str], docs: tuple[Path, ...] = DOCS) -> list[str]:
    """Each marked span whose value is not the computed one, or whose name is unknown, as ``file: name``."""
    wrong = []
    for doc in docs:
        for span in SPAN.finditer(doc.read_text(encoding="utf-8")):
            name, value = span["name"], span["value"]
            if name not in values:
                wrong.append(f"{doc.relative_to(ROOT)}: unknown figure {name!r} (known: {', '.join(sorted(values))})")
            elif value != values[name]:
                wrong.append(f"{doc.relative_to(ROOT)}: figure {name} says {value!r}, the templates {values[name]!r}")
    return wrong


def rewrite(values: Mapping[str, str], docs: tuple[Path, ...] = DOCS) -> list[Path]:
    """Rewrite every known span to its computed value; returns the docs changed."""
    changed = []
    for doc in docs:
        text = doc.read_text(encoding="utf-8")
        new = SPAN.sub(
            lambda m: f"<!-- figure:{m['name']} -->{values.get(m['name'], m['value'])}<!-- /figure -->", text
        )
        if new != text:
            doc.write_text(new, encoding="utf-8")
            changed.append(doc)
    return changed


def main(argv: list[str]) -> int:
    values = figures(synthesize_sample())
    if "--check" in argv:
        wrong = disagreements(values)
        print("\n".join(wrong) or "every figure agrees with the templates")
        return 1 if wrong else 0
    for doc in rewrite(values):
        print(f"rewrote {doc.relative_to(ROOT)}")
    wrong = disagreements(values)  # unknown names remain
    print("\n".join(wrong), file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
