"""IAM action lists more than one construct grants (one definition each)."""

from __future__ import annotations

TRIGGER_TAGGING_ACTIONS: tuple[str, ...] = (
    "s3:GetObjectTagging",
    "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
)
"""The sweeper records re-drive attempts as tags on the trigger's version (no ObjectCreated event, no
archive write): its role (``cdk_constructs.sweeper``) and the bucket policy (``cdk_constructs.metadata_bucket``)
both allow exactly these."""
