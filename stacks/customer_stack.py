"""CustomerStack (governance account): one customer's queue, processor, alarms and dashboard.

One stack per customer keeps every template far below CloudFormation's 500-resource limit (about
40 resources each) and lets a customer be added or removed without touching the others.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_constructs.customer_alarms import CustomerAlarms, CustomerAlarmsProps
from cdk_constructs.customer_dashboard import CustomerDashboard, CustomerDashboardProps
from cdk_constructs.customer_processor import CustomerProcessor, CustomerProcessorProps
from cdk_constructs.customer_queue import CustomerQueue, CustomerQueueProps
from cdk_support.log_retention import retention
from runtime.contract import names
from runtime.contract.names import SEVERITIES, Severity
from stacks.config import Customer, PlatformConfig
from stacks.platform_stack import PlatformStack


class CustomerStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        customer: Customer,
        platform: PlatformStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        code = customer.code
        region, account = config.accounts.region, config.accounts.governance
        self.queue = CustomerQueue(
            self,
            "Queue",
            CustomerQueueProps(
                customer_code=code,
                source_account=config.accounts.management,
                bucket_name=config.metadata_bucket_name,
                routing=config.routing,
                visibility_timeout_seconds=config.visibility_timeout_seconds,
                max_receive_count=config.max_receive_count,
            ),
        )
        self.processor = CustomerProcessor(
            self,
            "Processor",
            CustomerProcessorProps(
                customer_code=code,
                cluster=platform.cluster,
                subnets=platform.network.task_subnets,
                queue=self.queue.queue,
                queue_url=names.queue_url(region, account, code),
                visibility_timeout_seconds=config.visibility_timeout_seconds,
                bucket_name=config.metadata_bucket_name,
                customer_account=customer.account,
                sender_address=customer.sender_address,
                sender_external_id=customer.external_id,
                contact_list_name=customer.contact_list_name,
                send_rate_per_second=customer.send_rate_per_second,
                ses_region=customer.ses_region,
                configuration_set=customer.configuration_set,
                metrics_namespace=config.metrics_namespace,
                max_concurrency=customer.max_concurrency,
                cpu=customer.cpu,
                memory_limit_mib=customer.memory_mib,
                cpu_architecture=config.cpu_architecture,
                min_capacity=customer.min_tasks,
                max_capacity=customer.max_tasks,
                scale_to_zero=customer.scale_to_zero,
                log_retention=retention(config.log_retention_days),
            ),
        )
        topics: dict[Severity, sns.ITopic] = {
            severity: sns.Topic.from_topic_arn(
                self, f"Topic{severity.capitalize()}", names.alarm_topic_arn(region, account, severity, self.partition)
            )
            for severity in SEVERITIES
        }
        self.alarms = CustomerAlarms(
            self,
            "Alarms",
            CustomerAlarmsProps(customer_code=code, topics=topics, namespace=config.metrics_namespace),
        )
        self.dashboard = None
        if config.customer_dashboards:
            self.dashboard = CustomerDashboard(
                self,
                "Dashboard",
                CustomerDashboardProps(
                    customer_code=code,
                    namespace=config.metrics_namespace,
                    alarm_arns=tuple(self.alarms.alarm_arns()),
                ),
            )
