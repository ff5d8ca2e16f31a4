"""AWS quotas a synthesized app consumes, measured from its templates and checked at synth time.

Every quota the platform consumes per customer (docs/infrastructure.md, "Quotas at 1,000 customers") is one
:class:`Quota` of the table in ``cdk_support.quota_table`` (re-exported here): its default limit, what it is
counted over (a stack, a bus, a bucket, a role, an account) and the fix when it binds. :func:`measure`
counts each from the templates (what CloudFormation receives), :func:`breaches` compares the counts with the
limits, and :class:`QuotaValidation`, a CDK policy validation plugin, fails ``cdk synth`` / ``python app.py``
with one line per breach naming the quota, where, the count, the limit and the fix.
``python -m cdk_support.quotas cdk.out`` prints the usage table of an assembly.

Sizes of policies and task definitions are counted on the compact JSON CloudFormation will send, with each
unresolved reference (``Ref``, ``Fn::GetAtt``, ``Fn::ImportValue``) counted as
:data:`REFERENCE_CHARACTERS` characters (an ARN's typical length) and the pseudo parameters as their
usual values: a few characters of uncertainty per reference, far below the margins the design keeps.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    App,
    IPolicyValidationContext,
    IPolicyValidationPlugin,
    PolicyValidationPluginReport,
    PolicyViolatingResource,
    PolicyViolation,
    Stack,
)

from cdk_support.assembly import SynthesizedStack, read_assembly, resources_of, synthesized_stacks
from cdk_support.quota_table import QUOTAS, Quota

RAISED_QUOTAS_KEY = "ttp:raised-quotas"
"""Context key: a JSON object of quota key -> the value Service Quotas raised it to in your accounts
(``{"iam.roles-per-account": 2000}``); only adjustable quotas can be raised."""
REFERENCE_CHARACTERS = 64
"""Characters counted for one unresolved reference in a policy or task definition."""
PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::Region": "ap-southeast-2",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "x" * 40,
}


@dataclass(frozen=True)
class Usage:
    """How much of one quota one thing (``where``) consumes."""

    quota: Quota
    where: str
    count: int
    stack: str = ""
    logical_id: str = ""


@dataclass(frozen=True)
class Breach:
    usage: Usage
    limit: int

    def message(self) -> str:
        quota = self.usage.quota
        adjustable = "adjustable" if quota.adjustable else "not adjustable"
        return (
            f"quota '{quota.name}' ({quota.key}, {adjustable}) exceeded: {self.usage.where} has "
            f"{self.usage.count} {quota.unit}, the limit is {self.limit}; fix: {quota.fix}"
        )


class QuotaExceededError(ValueError):
    """The app exceeds one or more AWS quotas; the message names each, with the count and the fix."""

    def __init__(self, found: Sequence[Breach]) -> None:
        self.breaches = tuple(found)
        super().__init__("\n".join(breach.message() for breach in found))


# -- rendering ----------------------------------------------------------------------------------------


def _render(value: Any) -> Any:
    """The value with intrinsic functions replaced by strings of their deployed length (approximately)."""
    if isinstance(value, dict):
        if len(value) == 1:
            (function, argument), *_ = value.items()
            if function == "Ref":
                return PSEUDO_PARAMETERS.get(str(argument), "r" * REFERENCE_CHARACTERS)
            if function in {"Fn::GetAtt", "Fn::ImportValue", "Fn::GetAZs", "Fn::Select", "Fn::If"}:
                return "r" * REFERENCE_CHARACTERS
            if function == "Fn::Join":
                separator, parts = argument
                rendered = [_render(part) for part in parts]
                return str(separator).join(p if isinstance(p, str) else json.dumps(p) for p in rendered)
            if function == "Fn::Sub":
                text = argument if isinstance(argument, str) else argument[0]
                return str(text)
        return {key: _render(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item) for item in value]
    return value


def compact_size(value: Any) -> int:
    """Characters of the value's compact JSON, references rendered (``IAM does not count white space``)."""
    return len(json.dumps(_render(value), separators=(",", ":")))


def _contains_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(_contains_key(item, key) for item in value.values())
    if isinstance(value, list):
        return any(_contains_key(item, key) for item in value)
    return False


# -- measuring ----------------------------------------------------------------------------------------


def _bus_name(stack: SynthesizedStack, value: Any) -> str:
    """The bus a rule's ``EventBusName`` names: a name, an ARN, or a reference to a bus of the same template."""
    if value is None:
        return "default"
    if isinstance(value, str):
        return value.rsplit("event-bus/", 1)[-1]
    if isinstance(value, dict):
        target = value.get("Ref") or (value.get("Fn::GetAtt") or [None])[0]
        resource = stack.template.get("Resources", {}).get(target, {})
        name = resource.get("Properties", {}).get("Name")
        if isinstance(name, str):
            return name
    return json.dumps(value, sort_keys=True)


def _role_of(stack: SynthesizedStack, reference: Any) -> str:
    if isinstance(reference, dict) and "Ref" in reference:
        return f"{stack.name}/{reference['Ref']}"
    return json.dumps(reference, sort_keys=True)


def measure(stacks: Iterable[SynthesizedStack]) -> list[Usage]:
    """Every quota's consumption by every stack, bus, rule, bucket, key, role, task definition and account."""
    usages: list[Usage] = []
    rules_per_bus: dict[str, list[tuple[str, str]]] = defaultdict(list)
    wildcard_rules_per_bus: dict[str, list[tuple[str, str]]] = defaultdict(list)
    role_policies: dict[str, int] = defaultdict(int)
    role_where: dict[str, tuple[str, str]] = {}
    stacks_per_account: dict[str, int] = defaultdict(int)
    roles_per_account: dict[str, int] = defaultdict(int)
    q = QUOTAS
    for stack in stacks:
        env = f"{stack.account}/{stack.region}"
        stacks_per_account[env] += 1
        template = stack.template
        usages.append(Usage(q["cloudformation.resources"], stack.name, len(template.get("Resources", {})), stack.name))
        usages.append(Usage(q["cloudformation.template-bytes"], stack.name, stack.template_bytes, stack.name))
        usages.append(Usage(q["cloudformation.outputs"], stack.name, len(template.get("Outputs", {})), stack.name))
        usages.append(
            Usage(q["cloudformation.parameters"], stack.name, len(template.get("Parameters", {})), stack.name)
        )
        for logical_id, type_, props in resources_of(stack.template):
            where = f"{stack.name}/{logical_id}"
            if type_ == "AWS::Events::Rule":
                bus = f"bus {_bus_name(stack, props.get('EventBusName'))} in {env}"
                rules_per_bus[bus].append((stack.name, logical_id))
                pattern = props.get("EventPattern")
                if pattern is not None:
                    usages.append(Usage(q["events.pattern-size"], where, compact_size(pattern), stack.name, logical_id))
                    if _contains_key(pattern, "wildcard"):
                        wildcard_rules_per_bus[bus].append((stack.name, logical_id))
            elif type_ == "AWS::Events::EventBus" and "Policy" in props:
                usages.append(
                    Usage(q["events.bus-policy-size"], where, compact_size(props["Policy"]), stack.name, logical_id)
                )
            elif type_ == "AWS::Events::EventBusPolicy":
                statement = props.get("Statement")
                if statement is not None:
                    size = compact_size({"Version": "2012-10-17", "Statement": [statement]})
                    usages.append(Usage(q["events.bus-policy-size"], where, size, stack.name, logical_id))
            elif type_ == "AWS::S3::Bucket":
                notifications = props.get("NotificationConfiguration", {}) or {}
                count = sum(
                    len(notifications.get(kind, []) or [])
                    for kind in ("QueueConfigurations", "TopicConfigurations", "LambdaConfigurations")
                )
                usages.append(Usage(q["s3.notification-configurations"], where, count, stack.name, logical_id))
            elif type_ == "AWS::S3::BucketPolicy":
                size = compact_size(props.get("PolicyDocument", {}))
                usages.append(Usage(q["s3.bucket-policy-size"], where, size, stack.name, logical_id))
            elif type_ == "AWS::KMS::Key":
                size = compact_size(props.get("KeyPolicy", {}))
                usages.append(Usage(q["kms.key-policy-size"], where, size, stack.name, logical_id))
            elif type_ == "AWS::IAM::Role":
                roles_per_account[stack.account] += 1
                role = f"{stack.name}/{logical_id}"
                role_where[role] = (stack.name, logical_id)
                role_policies[role] += sum(compact_size(p.get("PolicyDocument", {})) for p in props.get("Policies", []))
                trust = compact_size(props.get("AssumeRolePolicyDocument", {}))
                usages.append(Usage(q["iam.trust-policy-size"], where, trust, stack.name, logical_id))
            elif type_ == "AWS::IAM::Policy":
                size = compact_size(props.get("PolicyDocument", {}))
                for reference in props.get("Roles", []):
                    role_policies[_role_of(stack, reference)] += size
            elif type_ == "AWS::IAM::ManagedPolicy":
                size = compact_size(props.get("PolicyDocument", {}))
                usages.append(Usage(q["iam.managed-policy-size"], where, size, stack.name, logical_id))
            elif type_ == "AWS::ECS::TaskDefinition":
                usages.append(Usage(q["ecs.task-definition-size"], where, compact_size(props), stack.name, logical_id))
    for bus, rules in rules_per_bus.items():
        usages.append(Usage(q["events.rules-per-bus"], bus, len(rules), *rules[0]))
    for bus, rules in wildcard_rules_per_bus.items():
        usages.append(Usage(q["events.wildcard-rules-per-bus"], bus, len(rules), *rules[0]))
    for role, size in role_policies.items():
        stack_name, logical_id = role_where.get(role, ("", ""))
        usages.append(Usage(q["iam.role-inline-policy-size"], f"role {role}", size, stack_name, logical_id))
    for env, count in stacks_per_account.items():
        usages.append(Usage(q["cloudformation.stacks"], f"account {env}", count))
    for account, count in roles_per_account.items():
        usages.append(Usage(q["iam.roles-per-account"], f"account {account}", count))
    return usages


def breaches(usages: Iterable[Usage], limits: Mapping[str, int] | None = None) -> list[Breach]:
    """The usages above their quota's limit (``limits`` overrides defaults by key, e.g. a raised quota)."""
    overrides = dict(limits or {})
    unknown = sorted(set(overrides) - set(QUOTAS))
    if unknown:
        raise ValueError(f"unknown quota keys {unknown}; use one of {sorted(QUOTAS)}")
    found = []
    for usage in usages:
        limit = overrides.get(usage.quota.key, usage.quota.limit)
        if usage.count > limit:
            found.append(Breach(usage, limit))
    return found


def raised_quotas(value: Any) -> dict[str, int]:
    """The limits of the context key :data:`RAISED_QUOTAS_KEY` (a JSON object, or its text on the command line)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"context {RAISED_QUOTAS_KEY!r} is not valid JSON: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(v, int) and v > 0 for v in value.values()):
        raise ValueError(
            f"context {RAISED_QUOTAS_KEY!r} must be an object of quota key -> positive integer, "
            f'e.g. {{"iam.roles-per-account": 2000}}; got {value!r}'
        )
    fixed = sorted(key for key in value if key in QUOTAS and not QUOTAS[key].adjustable)
    if fixed:
        raise ValueError(f"context {RAISED_QUOTAS_KEY!r}: {fixed} cannot be raised (not adjustable); remove them")
    breaches([], value)  # unknown keys
    return dict(value)


def highest(usages: Iterable[Usage]) -> dict[str, Usage]:
    """The largest usage of each quota."""
    top: dict[str, Usage] = {}
    for usage in usages:
        current = top.get(usage.quota.key)
        if current is None or usage.count > current.count:
            top[usage.quota.key] = usage
    return top


def check(stacks: Iterable[SynthesizedStack], limits: Mapping[str, int] | None = None) -> None:
    """Raise :class:`QuotaExceededError` naming every breach."""
    found = breaches(measure(stacks), limits)
    if found:
        raise QuotaExceededError(found)


# -- reading an assembly -----------------------------------------------------------------------------


def declared_raised_quotas(directory: Path | str) -> dict[str, int]:
    """The raised quotas the assembly's app declared (:class:`QuotaValidation` records them on every stack);
    stacks that disagree are refused, naming them."""
    root = Path(directory)
    manifest = json.loads((root / "manifest.json").read_text())
    found: dict[str, dict[str, int]] = {}
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        entries = dict(artifact.get("metadata", {}))
        metadata_file = artifact.get("additionalMetadataFile")
        if metadata_file and (root / metadata_file).is_file():
            entries.update(json.loads((root / metadata_file).read_text()))
        for path_entries in entries.values():
            for entry in path_entries:
                if entry.get("type") == RAISED_QUOTAS_KEY:
                    found[artifact_id] = raised_quotas(entry.get("data"))
    distinct = {json.dumps(limits, sort_keys=True) for limits in found.values()}
    if len(distinct) > 1:
        raise ValueError(f"the stacks of {root} declare different {RAISED_QUOTAS_KEY}: {found}")
    return next(iter(found.values()), {})


# -- the synth-time check ----------------------------------------------------------------------------


@jsii.implements(IPolicyValidationPlugin)
class QuotaValidation:
    """A policy validation plugin (``Validations.of(app).add_plugins(QuotaValidation(app))``): the synth
    fails, with one violation per breached quota, when any template exceeds an AWS default quota."""

    def __init__(self, app: App, limits: Mapping[str, int] | None = None) -> None:
        self._app = app
        self._limits = dict(limits or {})
        breaches([], self._limits)  # unknown keys fail here, not in the middle of a synth
        if self._limits:
            # The assembly records what the app declared, so ``python -m cdk_support.quotas DIR`` judges it the
            # same way (stack metadata: the manifest's, never a template's). Add the plugin after the stacks.
            for child in app.node.find_all():
                if isinstance(child, Stack):
                    child.node.add_metadata(RAISED_QUOTAS_KEY, dict(sorted(self._limits.items())))

    @property
    def name(self) -> str:
        return "ttp-aws-quotas"

    @property
    def version(self) -> str:
        return "1.0.0"

    @property
    def rule_ids(self) -> list[str]:
        return sorted(QUOTAS)

    def validate(self, context: IPolicyValidationContext) -> PolicyValidationPluginReport:
        template_paths = context.template_paths
        stacks = synthesized_stacks(template_paths)
        paths = {stack.name: stack.template_path for stack in stacks}
        found = breaches(measure(stacks), self._limits)
        violations = [
            PolicyViolation(
                rule_name=breach.usage.quota.key,
                description=breach.message(),
                fix=breach.usage.quota.fix,
                violating_resources=[
                    PolicyViolatingResource(
                        resource_logical_id=breach.usage.logical_id or breach.usage.where,
                        template_path=paths.get(breach.usage.stack, template_paths[0]),
                        locations=[breach.usage.where],
                    )
                ],
            )
            for breach in found
        ]
        return PolicyValidationPluginReport(success=not violations, violations=violations)


def usage_table(stacks: Sequence[SynthesizedStack], limits: Mapping[str, int] | None = None) -> str:
    """The highest usage of every quota against its limit (the default, or ``limits``' raised value), one
    line each (what ``python -m cdk_support.quotas`` prints)."""
    top = highest(measure(stacks))
    overrides = dict(limits or {})
    lines = [f"{'quota':<32} {'limit':>9} {'highest':>9} {'used':>6}  where"]
    for key, quota in QUOTAS.items():
        limit = overrides.get(key, quota.limit)
        shown = f"{limit}*" if key in overrides else str(limit)
        usage = top.get(key)
        if usage is None:
            lines.append(f"{key:<32} {shown:>9} {'-':>9} {'-':>6}  (none)")
            continue
        lines.append(f"{key:<32} {shown:>9} {usage.count:>9} {usage.count / limit:>6.0%}  {usage.where}")
    if overrides:
        lines.append(f"* raised ({RAISED_QUOTAS_KEY})")
    return "\n".join(lines)


USAGE = f"""usage: python -m cdk_support.quotas [DIR] [--raised-quotas JSON]

The quota usage of the cloud assembly DIR (default cdk.out), judged against the default limits or the raised
ones its app declared in the context key {RAISED_QUOTAS_KEY!r}; --raised-quotas replaces those. Exit 1 when a
quota is exceeded."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(USAGE)
        return 0
    given: str | None = None
    if "--raised-quotas" in args:
        at = args.index("--raised-quotas")
        if at + 1 >= len(args):
            print(f"--raised-quotas needs a JSON object\n{USAGE}", file=sys.stderr)
            return 2
        given = args[at + 1]
        del args[at : at + 2]
    directory = args[0] if args else "cdk.out"
    try:
        limits = raised_quotas(given) if given is not None else declared_raised_quotas(directory)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    stacks = read_assembly(directory)
    print(usage_table(stacks, limits))
    found = breaches(measure(stacks), limits)
    for breach in found:
        print(breach.message(), file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
