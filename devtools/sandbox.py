"""What the stacks do not own, created on the emulator: the rest comes from deploying the assembly.

The stacks (``devtools.local_deploy``) create the bucket, the queues and their notifications, the roles,
the customer registry and each customer's SES configuration set. They do not own, and this module creates
(:func:`create_unowned`), what an operator or a customer sets up by hand in AWS:

* in each customer's account, the SES sender identity, the contact list with its topics, its subscribers;
* in the governance account, the Microsoft Graph client secret the coordinator's task definition names
  (``meetings.client_secret``), and an operator's access key (the ``python -m runtime`` ops commands).

It holds nothing else. The older hand-built copy of the platform lives in :mod:`devtools.hand_layout`, for
the callers that do not deploy; :func:`create_sandbox` and :func:`customer_session` here only forward to it
so that ``tests/e2e/faults`` and ``benchmarks/`` keep running unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools import ses_events
from runtime.contract import names
from runtime.contract.names import CALENDAR_TOPIC, DEFAULT_CONTACT_LIST_NAME

if TYPE_CHECKING:
    import boto3

    from devtools.hand_layout import Sandbox as Sandbox

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
        create_contacts(aws.client("sesv2", spec.account, region), spec)
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


def create_contacts(ses: Any, spec: CustomerSpec) -> None:
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


def create_sandbox(customers: list[CustomerSpec], **options: Any) -> Sandbox:
    """Forwards to :func:`devtools.hand_layout.create_sandbox` (kept for ``tests/e2e/faults`` and ``benchmarks/``)."""
    from devtools import hand_layout

    return hand_layout.create_sandbox(customers, **options)


def customer_session(spec: CustomerSpec, region: str) -> boto3.session.Session:
    """Forwards to :func:`devtools.hand_layout.customer_session` (kept for ``tests/e2e/faults``)."""
    from devtools import hand_layout

    return hand_layout.customer_session(spec, region)
