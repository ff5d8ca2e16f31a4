"""Roles in a customer's account that the platform assumes (SES sender: the processor; contact reader: the coordinator).

Trust is by account principal (the governance account) narrowed with ``aws:PrincipalArn`` and
``sts:ExternalId``: the role can be created before, and independently of, the processor role, and
only the named principals with the agreed ExternalId can assume it.

* Sender role ``ttp-ses-sender-{code}``: trusts only ``ttp-processor-{code}``; may send from the
  customer's sender identity (``ses:FromAddress`` pinned) with its contact list for unsubscribe links and
  exactly the configuration set the worker uses (``ttp-{code}`` or the customer's own), and read that
  contact list. Nothing else.
* Contact-reader role ``ttp-contact-reader-{code}`` (optional, for meetings): trusts only the change
  coordinator ``ttp-change-coordinator`` (it owns the meetings, whose attendees come from all the
  change's customers; processors have no Graph access, docs/design.md §5); may only read the contact list.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_support.stack_facts import hours, stack_facts
from runtime.contract import keys, names


@dataclass(frozen=True)
class CustomerSesRolesProps:
    customer_code: str
    """The customer (``runtime.contract.keys`` rules); the role names derive from it. Required."""
    governance_account: str
    """The account of the processors and the coordinator (trusted by ``aws:PrincipalArn``). Required."""
    from_address: str
    """The verified SES identity the sender role may send from (``ses:FromAddress``). Required."""
    sender_external_id: str
    """ExternalId the sender role requires (``sts:ExternalId``). Required."""
    contact_list_name: str = names.DEFAULT_CONTACT_LIST_NAME
    """SES contact list the roles may read. Default: ``runtime.contract.names.DEFAULT_CONTACT_LIST_NAME``."""
    ses_region: str | None = None
    """Region of the customer's SES. Default: the stack's region."""
    configuration_set: str | None = None
    """SES configuration set the worker sends with, the only one the sender role may use.
    Default: None (``runtime.contract.names.configuration_set_name(customer_code)``, the platform's own)."""
    contact_reader_external_id: str | None = None
    """ExternalId of the contact-reader role (meetings); the role is created only when set. Default: None."""


class CustomerSesRoles(Construct):
    def __init__(self, scope: Construct, construct_id: str, props: CustomerSesRolesProps) -> None:
        super().__init__(scope, construct_id)
        code = keys.validate_customer_code(props.customer_code)
        self.props = props
        stack = stack_facts(scope, construct=self)
        partition = stack.partition
        region = props.ses_region or stack.region
        ses_arn = f"arn:{partition}:ses:{region}:{stack.account}"
        domain = props.from_address.rsplit("@", 1)[1]
        contact_list_arn = f"{ses_arn}:contact-list/{props.contact_list_name}"
        gov = props.governance_account

        self.sender_role = self._assumed_role(
            "SenderRole",
            names.sender_role_name(code),
            f"Assumed by the platform's processor of customer {code} to send change e-mails",
            gov,
            names.role_arn(gov, names.processor_role_name(code), partition),
            props.sender_external_id,
        )
        send_resources = [
            f"{ses_arn}:identity/{props.from_address}",
            f"{ses_arn}:identity/{domain}",
            contact_list_arn,
        ]
        configuration_set = props.configuration_set or names.configuration_set_name(code)
        send_resources.append(f"{ses_arn}:configuration-set/{configuration_set}")
        self.sender_role.add_to_policy(
            iam.PolicyStatement(
                sid="SendFromOwnIdentity",
                actions=["ses:SendEmail", "ses:SendRawEmail"],
                resources=send_resources,
                conditions={"StringEquals": {"ses:FromAddress": props.from_address}},
            )
        )
        self.sender_role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadContactList",
                actions=["ses:GetContactList", "ses:ListContacts"],
                resources=[contact_list_arn],
            )
        )

        self.contact_reader_role: iam.Role | None = None
        if props.contact_reader_external_id is not None:
            self.contact_reader_role = self._assumed_role(
                "ContactReaderRole",
                names.contact_reader_role_name(code),
                f"Read-only access to the contact list of customer {code} (meeting attendees)",
                gov,
                names.role_arn(gov, names.COORDINATOR_ROLE_NAME, partition),
                props.contact_reader_external_id,
            )
            self.contact_reader_role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadContactList",
                    actions=["ses:GetContactList", "ses:ListContacts"],
                    resources=[contact_list_arn],
                )
            )

    def _assumed_role(
        self, construct_id: str, role_name: str, description: str, account: str, principal_arn: str, external_id: str
    ) -> iam.Role:
        """A role (one-hour sessions) only ``principal_arn`` of ``account`` may assume, with ``external_id``."""
        return iam.Role(
            self,
            construct_id,
            role_name=role_name,
            description=description,
            max_session_duration=hours(1),
            assumed_by=iam.AccountPrincipal(account).with_conditions(
                {
                    "StringEquals": {"sts:ExternalId": external_id},
                    "ArnEquals": {"aws:PrincipalArn": principal_arn},
                }
            ),
        )
