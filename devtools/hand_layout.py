"""The older hand-built copy of the platform's layout, for the callers that do not deploy the assembly.

:func:`create_sandbox` builds, with plain API calls on the current boto3 target (an in-process
``mock_aws()`` or an emulator's endpoint), a bucket with versioning and notifications, each customer's
queue and DLQ, the coordinator's and the delivery events' queues, the customer registry and each
customer's SES configuration set, identity and contacts. It is **not** the platform: the demo, ``make
emulator`` and the integration tests deploy the synthesized assembly (``devtools.local_deploy``, and
``devtools.sandbox.create_unowned`` for what the stacks do not own), where a wrong notification, queue
name, role or environment variable fails as in AWS; none of those would fail here.

It stays for the callers where a deploy costs more than it checks (measured: a deploy of the sample is
1.5 to 3.5 s and every request then goes over HTTP; this layout is ~1 s in process):

* the in-process, unit-level fixtures of ``tests/runtime/conftest.py`` (``platform``, one per test),
  ``tests/runtime/coordinator/conftest.py`` and ``tests/runtime/notify/test_meetings.py`` (one per
  module, three customers, one of them not in ``cdk.json``), ``tests/properties/conftest.py``;
* the fault and chaos tests (``tests/e2e/faults``: queue sizes and receive counts the test chooses) and the
  benchmarks (``benchmarks/``: customers and recipient counts the benchmark chooses), through the
  forwarding :func:`devtools.sandbox.create_sandbox`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from devtools.sandbox import PLATFORM_ACCOUNT, CustomerSpec, create_contacts
from runtime.contract import names
from runtime.contract.keys import ARCHIVE_PREFIX, DELIVERY_PREFIX, PROCESSING_PREFIX
from runtime.contract.names import DEFAULT_CONTACT_LIST_NAME


@dataclass
class CustomerResources:
    spec: CustomerSpec
    queue_url: str
    queue_arn: str
    dlq_url: str


@dataclass
class CoordinatorResources:
    """A queue with its dead-letter queue (the coordinator's, the delivery events')."""

    queue_url: str
    queue_arn: str
    dlq_url: str


@dataclass
class Sandbox:
    bucket: str
    region: str
    customers: dict[str, CustomerResources]
    coordinator: CoordinatorResources | None = None
    delivery: CoordinatorResources | None = None

    def coordinator_env(self, **overrides: str) -> dict[str, str]:
        """The TTP_* environment of the change coordinator (its queue gets archive/, processing/ and
        delivery/ events; ``TTP_DELIVERY_QUEUE_URL`` is the SES delivery-events queue)."""
        if self.coordinator is None:
            raise RuntimeError("this sandbox has no coordinator queue")
        env = {
            "TTP_BUCKET_NAME": self.bucket,
            "TTP_QUEUE_URL": self.coordinator.queue_url,
            "TTP_CONTACT_LIST_NAME": DEFAULT_CONTACT_LIST_NAME,
        }
        if self.delivery is not None:
            env["TTP_DELIVERY_QUEUE_URL"] = self.delivery.queue_url
            accounts = {code: c.spec.account for code, c in self.customers.items()}
            env["TTP_CUSTOMER_ACCOUNTS"] = json.dumps(accounts, sort_keys=True)
        env.update(overrides)
        return env

    def worker_env(self, code: str, **overrides: str) -> dict[str, str]:
        """The TTP_* environment of one customer's worker (what the stacks set on the task)."""
        resources = self.customers[code]
        env = {
            "TTP_CUSTOMER_CODE": code,
            "TTP_BUCKET_NAME": self.bucket,
            "TTP_QUEUE_URL": resources.queue_url,
            "TTP_SENDER_ROLE_ARN": resources.spec.sender_role_arn,
            "TTP_SENDER_EXTERNAL_ID": resources.spec.ext_id,
            "TTP_FROM_ADDRESS": resources.spec.sender,
            "TTP_CONTACT_LIST_NAME": DEFAULT_CONTACT_LIST_NAME,
            "TTP_CONFIGURATION_SET": names.configuration_set_name(code),
        }
        env.update(overrides)
        return env


def customer_session(spec: CustomerSpec, region: str) -> boto3.session.Session:
    """A session in the customer's account (the emulator lets us assume any role)."""
    creds = boto3.client("sts", region_name=region).assume_role(
        RoleArn=spec.sender_role_arn, RoleSessionName="sandbox-setup", ExternalId=spec.ext_id
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def create_sandbox(
    customers: list[CustomerSpec],
    *,
    bucket: str = "ttp-metadata-local",
    region: str = "us-east-1",
    max_receive_count: int = 3,
    visibility_timeout: int = 30,
    notifications: bool = True,
) -> Sandbox:
    s3 = boto3.client("s3", region_name=region)
    sqs = boto3.client("sqs", region_name=region)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    created: dict[str, CustomerResources] = {}
    queue_configs: list[dict[str, Any]] = []
    for spec in customers:
        dlq_url = sqs.create_queue(QueueName=names.dead_letter_queue_name(spec.code))["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName=names.queue_name(spec.code),
            Attributes={
                "VisibilityTimeout": str(visibility_timeout),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
                ),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        created[spec.code] = CustomerResources(spec, queue_url, queue_arn, dlq_url)
        queue_configs.append(
            {
                "Id": f"customer-{spec.code}",
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {
                    "Key": {
                        "FilterRules": [
                            {"Name": "prefix", "Value": f"customers/{spec.code}/"},
                            {"Name": "suffix", "Value": ".json"},
                        ]
                    }
                },
            }
        )
        _create_customer_ses(spec, region)
    register_customers([spec.code for spec in customers], region)
    coordinator = _create_queue(
        sqs, names.COORDINATOR_QUEUE_NAME, names.COORDINATOR_DLQ_NAME, visibility_timeout, max_receive_count
    )
    delivery = _create_queue(
        sqs, names.DELIVERY_EVENTS_QUEUE_NAME, names.DELIVERY_EVENTS_DLQ_NAME, visibility_timeout, max_receive_count
    )
    for prefix in (ARCHIVE_PREFIX, PROCESSING_PREFIX, DELIVERY_PREFIX):
        queue_configs.append(
            {
                "Id": f"coordinator-{prefix.rstrip('/')}",
                "QueueArn": coordinator.queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {
                    "Key": {
                        "FilterRules": [
                            {"Name": "prefix", "Value": prefix},
                            {"Name": "suffix", "Value": ".json"},
                        ]
                    }
                },
            }
        )
    if notifications:
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": queue_configs}
        )
        # S3 sends an s3:TestEvent to each queue when the configuration is saved; the worker acks it.
    return Sandbox(bucket, region, created, coordinator, delivery)


def register_customers(codes: list[str], region: str, account: str = PLATFORM_ACCOUNT) -> None:
    """Publish the customers as the customer stacks do (one SSM parameter each under
    ``/ttp/customers``), so ``submit`` accepts their codes and refuses any other."""
    ssm = boto3.client("ssm", region_name=region)
    for code in codes:
        ssm.put_parameter(
            Name=names.customer_registry_parameter(code),
            Value=json.dumps(names.customer_registration(code, account, region)),
            Type="String",
            Overwrite=True,
        )


def _create_queue(
    sqs: Any, name: str, dlq_name: str, visibility_timeout: int, max_receive_count: int
) -> CoordinatorResources:
    dlq_url = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return CoordinatorResources(queue_url, queue_arn, dlq_url)


def _create_customer_ses(spec: CustomerSpec, region: str) -> None:
    ses = customer_session(spec, region).client("sesv2")
    # the platform's configuration set (the customer-account stack creates it when deployed)
    ses.create_configuration_set(ConfigurationSetName=names.configuration_set_name(spec.code))
    create_contacts(ses, spec)
