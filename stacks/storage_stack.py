"""StorageStack (management account): the metadata bucket and the routing of its object events
(``customers/{code}/`` to each customer's queue but those ``offboarding``, ``archive/``, ``processing/``
and ``delivery/`` to the change coordinator's)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from cdk_constructs.metadata_bucket import MetadataBucket, MetadataBucketProps, RoutedCustomer
from stacks.config import PlatformConfig


class StorageStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.metadata = MetadataBucket(
            self,
            "Metadata",
            MetadataBucketProps(
                governance_account=config.accounts.governance,
                customers=tuple(RoutedCustomer(c.code, config.accounts.governance) for c in config.routed_customers),
                routing=config.routing,
                coordinator_account=config.accounts.governance,
                bucket_name=config.metadata_bucket_name,
            ),
        )
