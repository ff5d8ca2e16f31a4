"""EventBridge as deployed, on the emulator: events put on a bus reach the targets of the rules that match.

moto 5.2.5 holds buses, rules and targets but routes as AWS does not: an S3 event goes to every rule of
every bus of the bucket's account (a schedule rule has no pattern and so "matches" everything, then
fails on its ECS target, which ends the delivery of that event); an SQS target is looked up in the
*rule's* account whatever account its ARN names; a bus-to-bus forward rewrites ``account`` and drops
``resources`` and ``time``; nothing is asked of a role's trust policy, a role's permissions, a queue's
or a bus's resource policy; and its S3 event lacks the ``etag`` EventBridge sends (moto writes ``eTag``).
This module is the routing instead (:func:`install` patches moto in the process that runs the emulator):

* **Sources.** S3 (a bucket with EventBridge notifications on, as deployed: ``EventBridgeConfiguration``)
  puts ``Object Created`` / ``Object Deleted`` events on the bucket account's default bus, in the shape
  the S3 user guide documents ("Using EventBridge", event message structure); ``PutEvents`` through the
  API reaches the bus it names; :meth:`EventRouter.put` is the entry for other publishers (SES:
  :mod:`devtools.ses_events`).
* **Rules.** Every ``ENABLED`` rule of the bus whose pattern matches, by moto's own matcher
  (``moto.events.models.EventPattern``: prefixes, suffixes, wildcards, ``anything-but``, numeric, exists,
  ``$or``). A rule without a pattern (a schedule) matches no event.
* **Targets** (any bus, any rule): an SQS queue in the account and region its ARN names; another bus
  (same or other account, by its ARN), where that bus's rules route the event on, unchanged (``account``
  stays the sender's). EventBridge forwards an event from bus to bus once: an event that arrived from
  another bus is not forwarded again ("Sending and receiving events between AWS accounts": a rule that
  sends events received from another account to a third account, or from a second bus to a third, does
  not send them). ``Input`` (constant JSON text), ``InputPath`` (``$`` and dotted paths) and input
  transformers (as moto applies them) shape what a target receives. Other target types and JSONPath forms
  are recorded as not emulated, never silently dropped.
* **Permissions**, when the emulator enforces IAM (``LocalAws(enforce=...)``): as EventBridge does, each
  target is invoked by ``events.amazonaws.com`` with ``aws:SourceArn`` (the rule) and ``aws:SourceAccount``,
  or, with the target's ``RoleArn``, as a session of that role (``sts:AssumeRole`` decided on the role's
  trust policy first). The policy engine decides ``sqs:SendMessage`` (queue policy), ``kms:GenerateDataKey``
  on the queue's key (key policy, ``kms:ViaService``) and ``events:PutEvents`` on a bus (bus policy, with
  ``events:source`` and ``events:detail-type``). A denied target gets nothing, as in AWS (where it counts
  as a failed invocation).

Every attempt is kept in :attr:`EventRouter.deliveries` (outcome and reason), so a test or the demo can
say what reached where and why something did not.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import logging
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from devtools.enforcement import Caller, Check, Enforcement
    from devtools.local_deploy.deployer import World

log = logging.getLogger(__name__)

EVENTS_PRINCIPAL = "events.amazonaws.com"
ENABLED_STATES = frozenset({"ENABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"})
MAX_BUS_FORWARDS = 1
"""How often one event may go from a bus to another bus (EventBridge forwards once)."""
SESSION_NAME = "eventbridge-target"
DELIVERED, DENIED, FAILED, NOT_EMULATED, NOT_FORWARDED = (
    "delivered",
    "denied",
    "failed",
    "not emulated",
    "not forwarded",
)
_S3_REASONS = {
    "ObjectCreated:Put": "PutObject",
    "ObjectCreated:Post": "PostObject",
    "ObjectCreated:Copy": "CopyObject",
    "ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
    "ObjectRemoved:Delete": "DeleteObject",
    "ObjectRemoved:DeleteMarkerCreated": "DeleteObject",
}


@dataclass(frozen=True)
class Delivery:
    """One attempt of one rule's target on one event."""

    event_id: str
    source: str
    detail_type: str
    account: str  # the event's account (the sender's)
    bus: str  # the ARN of the bus whose rule matched
    rule: str  # the rule's ARN
    target: str  # the target's ARN
    outcome: str  # DELIVERED, DENIED, FAILED, NOT_EMULATED or NOT_FORWARDED
    reason: str = ""


class EventRouter:
    """The emulator's EventBridge delivery (one per process, :data:`router`: moto's backends are too)."""

    def __init__(self) -> None:
        self.enforcement: Enforcement | None = None
        """Decides each target's requests (None: every target is invoked, as with permissive policies)."""
        self.world: World | None = None
        """The deployed world: the resource policies moto does not hold, SES's event destinations."""
        self.deliveries: deque[Delivery] = deque(maxlen=50_000)
        self._lock = threading.Lock()
        self._sequencer = itertools.count(1)

    # --- entry points ----------------------------------------------------------------------------

    def put(self, event: dict[str, Any], bus_arn: str, *, forwards: int = 0) -> list[Delivery]:
        """Route ``event`` (a complete EventBridge event) on the bus ``bus_arn``: every matching rule's targets."""
        from moto.events.models import events_backends

        _, _, _, region, account, resource = bus_arn.split(":", 5)
        name = resource.removeprefix("event-bus/")
        bus = events_backends[account][region].event_buses.get(name)
        if bus is None:
            return [self._record(event, bus_arn, "", bus_arn, FAILED, f"event bus {bus_arn} does not exist")]
        done: list[Delivery] = []
        for rule in list(bus.rules.values()):
            done += self.deliver(rule, event, bus_arn, forwards=forwards)
        return done

    def deliver(self, rule: Any, event: dict[str, Any], bus_arn: str, *, forwards: int = 0) -> list[Delivery]:
        """The targets of one moto ``Rule`` for ``event``, if the rule is enabled and its pattern matches."""
        if rule.state not in ENABLED_STATES or not rule.event_pattern.get_pattern():
            return []
        if not rule.event_pattern.matches_event(event):
            return []
        return [self._target(rule, target, event, bus_arn, forwards) for target in list(rule.targets)]

    def s3_event(self, requester: str, bucket: Any, event_name: str, key: Any) -> list[Delivery]:
        """What S3 sends to the bucket *owner's* default bus for ``event_name`` on ``key`` (moto names the
        requester's account, which differs when another account writes: the operator, a processor)."""
        from moto.s3.notifications import _detail_type

        region, account = bucket.region_name, bucket.account_id
        name = event_name.removeprefix("s3:")
        detail: dict[str, Any] = {
            "version": "0",
            "bucket": {"name": bucket.name},
            "object": {"key": key.name, "sequencer": f"{next(self._sequencer):018X}"},
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": requester,
            "source-ip-address": "127.0.0.1",
            "reason": _S3_REASONS.get(name, name.partition(":")[2]),
        }
        if name.startswith("ObjectCreated"):
            detail["object"].update(size=key.size, etag=key.etag.strip('"'))
        elif name == "ObjectRemoved:DeleteMarkerCreated":
            detail["deletion-type"] = "Delete Marker Created"
        elif name.startswith("ObjectRemoved"):
            detail["deletion-type"] = "Permanently Deleted"
        version = getattr(key, "version_id", None)
        if version and version != "null":
            detail["object"]["version-id"] = version
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": _detail_type(event_name),
            "source": "aws.s3",
            "account": account,
            "time": now(),
            "region": region,
            "resources": [f"arn:aws:s3:::{bucket.name}"],
            "detail": detail,
        }
        return self.put(event, f"arn:aws:events:{region}:{account}:event-bus/default")

    # --- one target --------------------------------------------------------------------------------

    def _target(
        self, rule: Any, target: dict[str, Any], event: dict[str, Any], bus_arn: str, forwards: int
    ) -> Delivery:
        arn = str(target["Arn"])
        parts = arn.split(":", 5)
        if len(parts) != 6:
            return self._record(event, bus_arn, rule.arn, arn, FAILED, "the target is not an ARN")
        _, _, service, region, account, resource = parts
        is_bus = service == "events" and resource.startswith("event-bus/")
        if service != "sqs" and not is_bus:
            return self._record(event, bus_arn, rule.arn, arn, NOT_EMULATED, f"{service} targets are not emulated")
        if is_bus and forwards >= MAX_BUS_FORWARDS:
            reason = "the event came from another bus; EventBridge forwards an event to a bus once"
            return self._record(event, bus_arn, rule.arn, arn, NOT_FORWARDED, reason)
        try:
            payload = _input(target, event) if not is_bus else event
        except NotImplementedError as error:
            return self._record(event, bus_arn, rule.arn, arn, NOT_EMULATED, str(error))
        denial = self._denied(rule, target, event, service, region, account, resource)
        if denial:
            return self._record(event, bus_arn, rule.arn, arn, DENIED, denial)
        try:
            if is_bus:
                self.put(event, arn, forwards=forwards + 1)
            else:
                from moto.sqs.models import sqs_backends

                sqs_backends[account][region].send_message(
                    queue_name=resource,
                    message_body=payload if isinstance(payload, str) else json.dumps(payload),  # a template: its text
                    group_id=target.get("SqsParameters", {}).get("MessageGroupId"),
                )
        except Exception as error:  # a missing queue or bus: AWS counts a failed invocation, the event is gone
            return self._record(event, bus_arn, rule.arn, arn, FAILED, f"{type(error).__name__}: {error}")
        return self._record(event, bus_arn, rule.arn, arn, DELIVERED)

    def _denied(
        self,
        rule: Any,
        target: dict[str, Any],
        event: dict[str, Any],
        service: str,
        region: str,
        account: str,
        resource: str,
    ) -> str:
        """Why the policies refuse this target the event ("" when they allow it, or nothing enforces)."""
        enforcement = self.enforcement
        if enforcement is None:
            return ""
        from devtools.enforcement import Caller, Check
        from devtools.iam_engine import PolicyEngineError

        source = (("aws:SourceAccount", rule.account_id), ("aws:SourceArn", rule.arn))
        service_principal = Caller(EVENTS_PRINCIPAL, "", (), ())
        checks: list[Check] = []
        caller = service_principal
        role_arn = target.get("RoleArn")
        try:
            if role_arn:
                trust = self._trust_policy(role_arn)
                assume = Check("sts:AssumeRole", role_arn, role_arn.split(":")[4], trust, source)
                decision = enforcement.decide(service_principal, assume)
                if not decision.allowed:
                    return f"{EVENTS_PRINCIPAL} may not assume {role_arn}: {decision.explain()}"
                caller = _role_caller(role_arn)
            context = () if role_arn else source
            target_arn = str(target["Arn"])
            if service == "sqs":
                from moto.sqs.models import sqs_backends

                queue = sqs_backends[account][region].queues.get(resource)
                if queue is None:
                    return ""  # the send fails: a failed invocation, not a denial
                policy = self._policy(target_arn, queue.policy)
                checks.append(Check("sqs:SendMessage", target_arn, account, policy, context))
                key_id = getattr(queue, "kms_master_key_id", None)
                if key_id:
                    checks.append(self._key_check(str(key_id), account, region, context))
            else:
                from moto.events.models import events_backends

                bus = events_backends[account][region].event_buses.get(resource.removeprefix("event-bus/"))
                policy = self._policy(target_arn, bus.policy if bus is not None else None)
                keys = (("events:detail-type", str(event["detail-type"])), ("events:source", str(event["source"])))
                checks.append(Check("events:PutEvents", target_arn, account, policy, (*context, *keys)))
            for check in checks:
                decision = enforcement.decide(caller, check)
                if not decision.allowed:
                    return f"{caller.arn} may not {check.action} on {check.resource}: {decision.explain()}"
        except PolicyEngineError as error:  # fail closed, saying why
            return str(error)
        return ""

    def _policy(self, arn: str, emulated: Any) -> str | None:
        """The resource policy as deployed: the deployed world's record, else what the emulator holds."""
        if self.world is not None:
            for mine in list(self.world.accounts.values()):
                recorded = mine.policies.get(arn)
                if recorded is not None:
                    return recorded if isinstance(recorded, str) else json.dumps(recorded, sort_keys=True)
        if isinstance(emulated, dict):
            return json.dumps(emulated, sort_keys=True)
        return emulated.decode() if isinstance(emulated, bytes) else emulated

    @staticmethod
    def _trust_policy(role_arn: str) -> str:
        from moto.iam.models import iam_backends

        try:
            trust = iam_backends[role_arn.split(":")[4]]["aws"].get_role_by_arn(role_arn).assume_role_policy_document
        except Exception:
            return json.dumps({"Version": "2012-10-17", "Statement": []})  # no such role: nothing may assume it
        return trust if isinstance(trust, str) else json.dumps(trust)

    def _key_check(self, key_id: str, account: str, region: str, context: tuple[tuple[str, str], ...]) -> Check:
        """``kms:GenerateDataKey`` SQS asks on the sender's behalf for an encrypted queue (as the enforcement
        layer decides it for a service's own ``SendMessage``)."""
        from moto.kms.models import kms_backends

        from devtools.enforcement import Check

        key_account = key_id.split(":")[4] if key_id.startswith("arn:") else account
        key = kms_backends[key_account][region].describe_key(key_id)
        via = (("kms:CallerAccount", account), ("kms:ViaService", f"sqs.{region}.amazonaws.com"))
        return Check("kms:GenerateDataKey", key.arn, key_account, self._policy(key.arn, key.policy), (*context, *via))

    def _record(
        self, event: dict[str, Any], bus: str, rule: str, target: str, outcome: str, reason: str = ""
    ) -> Delivery:
        delivery = Delivery(
            str(event.get("id", "")),
            str(event.get("source", "")),
            str(event.get("detail-type", "")),
            str(event.get("account", "")),
            bus,
            rule,
            target,
            outcome,
            reason,
        )
        with self._lock:
            self.deliveries.append(delivery)
        if outcome != DELIVERED:
            log.warning("EventBridge target %s of %s: %s %s", target, rule or bus, outcome, reason)
        return delivery

    def delivered_to(self, target_arn: str) -> list[Delivery]:
        """The deliveries that reached ``target_arn``."""
        with self._lock:
            return [d for d in self.deliveries if d.target == target_arn and d.outcome == DELIVERED]


router = EventRouter()
"""The emulator's router (moto's backends are per process, so is the routing)."""

_LOCK = threading.Lock()
_installed = False


def now() -> str:
    """EventBridge's ``time``: UTC to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What the target receives (EventBridge's ``Target``): ``Input``, JSON text passed as it is and
    nothing of the event; ``InputPath``, the part of the event a JSONPath selects; an input transformer
    as moto applies it; otherwise the whole event."""
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        return _select(event, str(target["InputPath"]))
    transformer = target.get("InputTransformer")
    if not transformer:
        return event
    from moto.events.utils import EventTemplateParser

    return EventTemplateParser.parse(
        input_template=transformer.get("InputTemplate"),
        input_paths_map=transformer.get("InputPathsMap", {}),
        event=cast(Any, copy.deepcopy(event)),  # moto's TypedDict of an event: the same keys
    )


_DOTTED_PATH = re.compile(r"^\$(\.[A-Za-z0-9_-]+)*$")


def _select(event: dict[str, Any], path: str) -> Any:
    """``InputPath``: ``$`` or a dotted path (``$.detail.object``). Brackets, wildcards and filters
    (JSONPath no template here uses), and a path that selects nothing in the event (what EventBridge
    sends then is not documented), are reported as not emulated rather than guessed."""
    if not _DOTTED_PATH.match(path):
        raise NotImplementedError(f"InputPath {path!r}: only $ and dotted paths ($.detail.x) are emulated")
    selected: Any = event
    for name in path.split(".")[1:]:
        if not isinstance(selected, dict) or name not in selected:
            raise NotImplementedError(f"InputPath {path!r} selects nothing in this event")
        selected = selected[name]
    return selected


def _role_caller(role_arn: str) -> Caller:
    """A session of ``role_arn`` as EventBridge assumes it, with the role's policies and tags as deployed."""
    from moto.iam.models import iam_backends

    from devtools.enforcement import Caller

    account, name = role_arn.split(":")[4], role_arn.rpartition("/")[2]
    role = iam_backends[account]["aws"].get_role_by_arn(role_arn)
    policies = sorted(role.policies.items())
    for arn, managed in sorted(role.managed_policies.items()):
        document = next(v.document for v in managed.versions if v.version_id == managed.default_version_id)
        policies.append((arn, document if isinstance(document, str) else json.dumps(document)))
    tags = role.tags.values() if isinstance(role.tags, dict) else role.tags or []
    return Caller(
        f"arn:aws:sts::{account}:assumed-role/{name}/{SESSION_NAME}",
        role_arn,
        tuple(policies),
        tuple(sorted((t["Key"], t["Value"]) for t in tags)),
    )


def _api_event(event: dict[str, Any]) -> dict[str, Any]:
    """moto's event of a ``PutEvents`` call, as EventBridge delivers it: ``time`` in ISO form, no moto key."""
    event = dict(event)
    event.pop("ingestion-time", None)
    moment = event.get("time")
    if isinstance(moment, int | float):
        event["time"] = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def install() -> None:
    """Idempotent: route moto's S3 EventBridge notifications and ``PutEvents`` through :data:`router`."""
    global _installed
    with _LOCK:
        if _installed:
            return
        from moto.events.models import Rule
        from moto.s3 import notifications

        def send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
            try:
                router.s3_event(account_id, bucket, event_name, key)
            except Exception:  # asynchronous in AWS: never fails the S3 request
                log.exception("EventBridge notification of s3://%s/%s failed", bucket.name, key.name)

        @functools.wraps(Rule.send_to_targets)
        def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
            bus_name = self.event_bus_name.rpartition("/")[2]
            router.deliver(
                self,
                _api_event(original_event),
                f"arn:aws:events:{self.region_name}:{self.account_id}:event-bus/{bus_name}",
            )

        notifications._send_event_bridge_message = send_event_bridge_message
        Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
        _installed = True
