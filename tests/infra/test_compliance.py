"""cdk-nag (AwsSolutions) and cfn-lint over the synthesized sample app."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_sqs as sqs

from stacks.app_builder import build_app
from stacks.config import parse_config
from tests.support.synth import Synth, lint_errors, sample_context, synthesize

MIN_REASON = 40


def acknowledgements(synth: Synth) -> list[tuple[str, str, str]]:
    """(construct path, rule, reason) of every cdk-nag acknowledgement recorded in the assembly."""
    found = []
    for entries in synth.metadata.values():
        for path, items in entries.items():
            for item in items:
                if item["type"] == "aws:cdk:acknowledged-rules":
                    for rule, reason in item["data"].items():
                        found.append((path, rule, reason))
    return found


def test_sample_app_passes_cdk_nag(sample: Synth) -> None:
    # The fixture synthesized with AwsSolutionsChecks registered: a violation would have raised.
    report = sample.outdir / "validation-report.json"
    if report.exists():
        for plugin in json.loads(report.read_text())["pluginReports"]:
            assert plugin["conclusion"] == "success", plugin
            assert plugin["violations"] == [], plugin


def test_builtin_cloudformation_validation_ran_on_the_sample(sample: Synth) -> None:
    # An operator's synth runs CDK's built-in "CloudFormation Validate" (cdk.json makes its default rules'
    # findings errors); test_sample_app_passes_cdk_nag checks that every plugin's report is clean.
    report = json.loads((sample.outdir / "validation-report.json").read_text())
    plugins = {plugin["pluginName"] for plugin in report["pluginReports"]}
    assert any("CloudFormation" in name for name in plugins), plugins


def test_builtin_validation_can_be_turned_off_for_the_tests_other_syntheses(tmp_path: Path) -> None:
    synthesize(tmp_path, sample_context(), nag=False)
    report = tmp_path / "validation-report.json"
    plugins = {p["pluginName"] for p in json.loads(report.read_text())["pluginReports"]} if report.exists() else set()
    assert not any("CloudFormation" in name for name in plugins), plugins


def test_acknowledgements_are_scoped_and_reasoned(sample: Synth) -> None:
    # CDK's own constructs acknowledge findings of its built-in "CloudFormation-Validate" plugin.
    found = [a for a in acknowledgements(sample) if not a[1].startswith("CloudFormation-Validate::")]
    assert found, "the sample needs a few acknowledgements (ECS2, IAM5 on bucket prefixes)"
    for path, rule, reason in found:
        assert rule.startswith("Annotation::AwsSolutions-"), rule
        assert path.count("/") >= 2, f"{rule} acknowledged on a whole stack ({path}); scope it to the resource"
        assert len(reason) >= MIN_REASON, f"{path} {rule}: reason too short: {reason!r}"
        if rule.startswith("Annotation::AwsSolutions-IAM5"):
            assert "[Resource::" in rule or "[Action::" in rule, f"{rule}: acknowledge the exact finding"
    rules = {rule for _, rule, _ in found}
    assert "Annotation::AwsSolutions-IAM5[Resource::*]" in rules  # ecr:GetAuthorizationToken
    assert not any("[Action::" in rule for rule in rules), "no wildcard actions are granted anywhere"


def test_cdk_nag_is_wired_and_catches_violations(tmp_path: Path) -> None:
    """Negative control: the same builder with one non-compliant queue must fail synthesis. Without CDK's
    built-in validation (``test_builtin_cloudformation_validation_ran_on_the_sample`` covers it): it is
    not what fails here, and its engine costs ~6 CPU s the first time in a process."""
    context = sample_context(customers=[])
    pipeline = build_app(context, config=parse_config(context["ttp"]), outdir=str(tmp_path), builtin_validation=False)
    sqs.Queue(pipeline.platform, "Unencrypted", encryption=sqs.QueueEncryption.UNENCRYPTED)
    with pytest.raises(RuntimeError, match="ValidationFailed") as info:
        pipeline.app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= rules, info.value


def test_cfn_lint_reports_no_errors(sample: Synth) -> None:
    templates = sorted(sample.outdir.glob("*.template.json"))
    assert len(templates) == len(sample.templates) == 6
    problems: dict[str, Any] = {}
    for template in templates:
        errors = lint_errors(template)
        if errors:
            problems[template.name] = errors
    assert problems == {}


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "broken.template.json"
    broken.write_text(
        json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": "x"}}}})
    )
    assert lint_errors(broken)


def test_the_tests_own_apps_skip_the_builtin_validation() -> None:
    """A test's own ``App()`` runs aws-cdk-lib's built-in CloudFormation validation on every synthesis
    (``Template.from_stack`` too): ~4 CPU s in each xdist worker, for a check that changes no template and
    that the shared sample and the CLI synth run. The tests build their apps with
    ``tests.support.synth.app_without_validation``."""
    tests = Path(__file__).resolve().parents[1]
    calls = []
    for path in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name == "App" and path.name != "synth.py":
                    calls.append(f"{path.relative_to(tests)}:{node.lineno}")
    assert calls == [], f"use tests.support.synth.app_without_validation instead of App(): {calls}"
