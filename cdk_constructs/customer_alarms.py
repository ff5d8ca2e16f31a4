"""One customer's alarms: every threshold of docs/design.md §6, each routed to its severity's SNS topic.

Which alarms exist (name, signal, threshold, evaluation periods, description) is the table
:data:`runtime.contract.monitoring.CUSTOMER_ALARMS`; the numbers come from
:class:`runtime.contract.thresholds.AlarmThresholds`; :mod:`cdk_constructs.monitoring` builds them.
Alarm names are deterministic (``ttp-{code}-{alarm}``), so dashboards and the ops CLI can find them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from cdk_constructs.monitoring import AlarmsProps, MetricFactory
from cdk_support.stack_facts import stack_facts
from runtime.contract import keys
from runtime.contract.monitoring import CUSTOMER_ALARMS, CUSTOMER_RUNBOOK_PREFIX, customer_target
from runtime.contract.names import Severity


@dataclass(frozen=True)
class CustomerAlarmsProps(AlarmsProps):
    """Props of :class:`CustomerAlarms`: the customer, then (by keyword) those of
    :class:`~cdk_constructs.monitoring.AlarmsProps`."""

    customer_code: str
    """The customer (``runtime.contract.keys`` rules); alarm, queue and service names derive from it. Required."""


def alarm_name(customer_code: str, alarm: str) -> str:
    return f"ttp-{keys.validate_customer_code(customer_code)}-{alarm}"


class CustomerAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: CustomerAlarmsProps) -> None:
        super().__init__(scope, construct_id)
        code = keys.validate_customer_code(props.customer_code)
        self.props = props
        factory = props.factory(
            self,
            metrics=MetricFactory(customer_target(code, props.namespace, props.cluster_name)),
            alarm_name=lambda alarm: alarm_name(code, alarm),
            subject=code,
            runbook_prefix=CUSTOMER_RUNBOOK_PREFIX,
        )
        self.alarms: dict[str, cloudwatch.CfnAlarm] = factory.alarms(CUSTOMER_ALARMS)
        self.severity: dict[str, Severity] = {spec.name: spec.severity for spec in CUSTOMER_ALARMS}

    def alarm_arns(self) -> list[str]:
        """Deterministic ARNs (no tokens): usable inside a dashboard body."""
        stack = stack_facts(self)
        prefix = f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:"
        return [prefix + alarm_name(self.props.customer_code, n) for n in self.alarms]
