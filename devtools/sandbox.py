"""What the stacks do not own, created on the emulator: the rest comes from deploying the assembly.

The stacks (``devtools.local_deploy``) create the bucket, the queues and their notifications, the roles,
the customer registry and each customer's SES configuration set. They do not own, and this module creates
(:func:`create_unowned`), what an operator or a customer sets up by hand in AWS:

* in each customer's account, the SES sender identity, the contact list with its topics, its subscribers;
* in the governance account, the Microsoft Graph client secret the coordinator's task definition names
  (``meetings.client_secret``), and an operator's access key (the ``python -m runtime`` ops commands).

:func:`create_sandbox` is the older hand-built layout (bucket, queues, notifications, registry, SES) that
the integration tests which do not deploy the assembly still use; it is not the platform: the demo and
``make emulator`` run the deployed stacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from devtools import ses_events
from runtime.contract import names
from runtime.contract.keys import ARCHIVE_PREFIX, DELIVERY_PREFIX, PROCESSING_PREFIX
from runtime.contract.names import CALENDAR_TOPIC, DEFAULT_CONTACT_LIST_NAME

DEFAULT_TOPIC = "change-notifications"
PLATFORM_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Contact:
    email: str
    topics: dict[str, str] = field(default_factory=dict)  # topic -> OPT_IN / OPT_OUT
    unsubscribe_all: bool = False


@dataclass(frozen=True)
class CustomerSpec:
    code: str
    account: str
    contacts: tuple[Contact, ...]
    from_address: str = ""
    external_id: str = ""

    @property
    def sender(self) -> str:
        return self.from_address or f"changes@{self.code}.example.com"

    @property
    def sender_role_arn(self) -> str:
        return names.role_arn(self.account, names.sender_role_name(self.code))

    @property
    def contact_role_arn(self) -> str:
        return names.role_arn(self.account, names.contact_reader_role_name(self.code))

    @property
    def ext_id(self) -> str:
        return self.external_id or f"ttp-{self.code}-external-id"


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

    @property
    def delivery_queue_url(self) -> str:
        """The SES delivery-events queue (``DELIVERY_EVENTS_QUEUE_NAME``) the coordinator consumes."""
        if self.delivery is None:
            raise RuntimeError("this sandbox has no delivery-events queue")
        return self.delivery.queue_url

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
    _create_contacts(ses, spec)


@dataclass(frozen=True)
class Operator:
    """An access key of the governance account's operator (the IAM user ``ttp-operator``)."""

    account: str
    access_key_id: str
    secret_access_key: str

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}


OPERATOR_USER = names.OPERATOR_NAME
OPERATOR_POLICY_FILE = Path(__file__).resolve().parents[1] / "docs" / "policies" / "operator-governance-account.json"
"""The operator's policy docs/runbook.md prescribes (its ``sed`` line fills in the placeholders)."""


def operator_policy(governance_account: str, region: str, bucket: str) -> str:
    """The operator's policy as docs/runbook.md's ``sed`` line renders it."""
    fields = {"${GOVERNANCE}": governance_account, "${REGION}": region, "${BUCKET}": bucket}
    text = OPERATOR_POLICY_FILE.read_text()
    for placeholder, value in fields.items():
        text = text.replace(placeholder, value)
    return text


def create_unowned(
    aws: Any,
    customers: list[CustomerSpec],
    *,
    governance_account: str,
    bucket: str,
    region: str = "us-east-1",
    graph_secret: tuple[str, str] | None = None,
) -> Operator:
    """Create what the deployed stacks do not own (see the module docstring) through ``aws``, a
    :class:`devtools.local_deploy.resolve.Aws` (clients bound to an account). ``graph_secret`` is the
    Graph client secret's (name, value). Returns the access key of the operator: the IAM user
    ``ttp-operator`` with the policy docs/runbook.md prescribes for ``bucket`` (not an administrator: the
    enforcing emulator decides its requests like any other principal's)."""
    for spec in customers:
        _create_contacts(aws.client("sesv2", spec.account, region), spec)
    if graph_secret is not None:
        name, value = graph_secret
        aws.client("secretsmanager", governance_account, region).create_secret(Name=name, SecretString=value)
    iam = aws.client("iam", governance_account, region)
    iam.create_user(UserName=OPERATOR_USER)
    iam.put_user_policy(
        UserName=OPERATOR_USER,
        PolicyName=OPERATOR_USER,
        PolicyDocument=operator_policy(governance_account, region, bucket),
    )
    key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
    return Operator(governance_account, key["AccessKeyId"], key["SecretAccessKey"])


def _create_contacts(ses: Any, spec: CustomerSpec) -> None:
    """The sender identity, the contact list with its two topics and the subscribers of one customer."""
    ses.create_email_identity(EmailIdentity=spec.sender)
    ses.create_contact_list(
        ContactListName=DEFAULT_CONTACT_LIST_NAME,
        Topics=[
            {"TopicName": DEFAULT_TOPIC, "DisplayName": "Change notifications", "DefaultSubscriptionStatus": "OPT_IN"},
            {"TopicName": CALENDAR_TOPIC, "DisplayName": "Calendar invites", "DefaultSubscriptionStatus": "OPT_OUT"},
        ],
    )
    for contact in spec.contacts:
        ses.create_contact(
            ContactListName=DEFAULT_CONTACT_LIST_NAME,
            EmailAddress=contact.email,
            TopicPreferences=[{"TopicName": t, "SubscriptionStatus": s} for t, s in contact.topics.items()],
            UnsubscribeAll=contact.unsubscribe_all,
        )


def sent_emails(account: str, region: str = "us-east-1") -> list[dict[str, Any]]:
    """Emails the emulator's SES accepted in one account (read from moto's in-process backend)."""
    from moto.ses.models import ses_backends

    backend = ses_backends[account][region]
    return [
        {"to": list(m.destinations.get("ToAddresses", [])), "subject": m.subject, "body": m.body, "source": m.source}
        for m in backend.sent_messages
    ]


def sample_customers() -> list[CustomerSpec]:
    return [
        CustomerSpec(
            "hts",
            "333333333333",
            (
                Contact("ops@hts.example.com"),
                Contact("Lead@HTS.example.com", {CALENDAR_TOPIC: "OPT_IN"}),
                Contact("lead@hts.example.com"),  # the same person twice, other case
                Contact("optout@hts.example.com", {DEFAULT_TOPIC: "OPT_OUT"}),
                Contact("gone@hts.example.com", unsubscribe_all=True),
            ),
        ),
        CustomerSpec(
            "htsnonprod",
            "444444444444",
            (Contact("dev@htsnonprod.example.com", {CALENDAR_TOPIC: "OPT_IN"}), Contact("qa@htsnonprod.example.com")),
        ),
        CustomerSpec(
            "customer-a",
            "555555555555",
            (Contact("it@customer-a.example.com"), Contact("lead@hts.example.com", {CALENDAR_TOPIC: "OPT_IN"})),
        ),
    ]


SIMULATED_RECIPIENTS: tuple[tuple[str, ...], ...] = (
    (ses_events.SUCCESS, ses_events.BOUNCE, ses_events.COMPLAINT),
    (ses_events.OUT_OF_OFFICE, ses_events.SUPPRESSION_LIST),
)
"""SES mailbox-simulator addresses in the demo customers' contact lists (first customer, second, …, round)."""


def specs_from_config(customers: list[Any]) -> list[CustomerSpec]:
    """Local stand-ins for the customers of the CDK config (``stacks.config.Customer``): same codes,
    accounts, sender addresses and ExternalIds, with a few sample contacts each (the first customer's
    list also has a duplicate in another case, an opt-out and an unsubscribe-all, to show the filter).

    The lists also hold SES mailbox-simulator addresses (:data:`SIMULATED_RECIPIENTS`), so the delivery
    events :mod:`devtools.ses_events` publishes for them show deliveries, a bounce and a complaint."""
    specs = []
    for index, customer in enumerate(customers):
        domain = customer.sender_address.split("@", 1)[1]
        contacts = [
            Contact(f"ops@{domain}"),
            Contact(f"Lead@{domain.upper()}", {CALENDAR_TOPIC: "OPT_IN"}),
        ]
        if index == 0:
            contacts += [
                Contact(f"lead@{domain}"),
                Contact(f"optout@{domain}", {DEFAULT_TOPIC: "OPT_OUT"}),
                Contact(f"gone@{domain}", unsubscribe_all=True),
            ]
        contacts += [Contact(address) for address in SIMULATED_RECIPIENTS[index % len(SIMULATED_RECIPIENTS)]]
        specs.append(
            CustomerSpec(
                customer.code, customer.account, tuple(contacts), customer.sender_address, customer.external_id
            )
        )
    return specs
