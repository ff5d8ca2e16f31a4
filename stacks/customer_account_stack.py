"""CustomerAccountStack (the customer's account): the SES sender and contact-reader roles, and the SES
configuration set whose delivery events go to the governance account's delivery-events bus."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from cdk_constructs.customer_ses_roles import CustomerSesRoles, CustomerSesRolesProps
from cdk_constructs.ses_delivery_events import SesDeliveryEvents, SesDeliveryEventsProps
from runtime.contract import names
from stacks.config import Customer, PlatformConfig


class CustomerAccountStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, customer: Customer, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.roles = CustomerSesRoles(
            self,
            "SesRoles",
            CustomerSesRolesProps(
                customer_code=customer.code,
                governance_account=config.accounts.governance,
                sender_address=customer.sender_address,
                external_id=customer.external_id,
                contact_list_name=customer.contact_list_name,
                ses_region=customer.ses_region,
                configuration_set=customer.configuration_set,
                contact_reader_external_id=config.contact_reader_external_id(customer),
            ),
        )
        # One forwarding rule per account (its name is fixed): the account's first customer owns it.
        same_account = [c for c in config.customers if c.account == customer.account]
        self.delivery_events = SesDeliveryEvents(
            self,
            "DeliveryEvents",
            SesDeliveryEventsProps(
                customer_code=customer.code,
                governance_account=config.accounts.governance,
                governance_region=config.accounts.region,
                existing_configuration_set=customer.configuration_set,
                forward_rule=same_account[0].code == customer.code,
                other_configuration_sets=tuple(
                    c.configuration_set or names.configuration_set_name(c.code)
                    for c in same_account
                    if c.code != customer.code
                ),
            ),
        )
