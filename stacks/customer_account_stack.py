"""CustomerAccountStack (the customer's account): the SES sender role and the contact-reader role."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from cdk_constructs.customer_ses_roles import CustomerSesRoles, CustomerSesRolesProps
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
