"""IAM action lists and S3 condition keys more than one construct uses (one definition each)."""

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

CONDITIONAL_WRITE_KEYS: tuple[str, ...] = ("s3:if-match", "s3:if-none-match")
"""S3 condition keys of the ``If-Match`` / ``If-None-Match`` headers of a conditional PUT: the coordinator's
role (``cdk_constructs.change_coordinator``) and the bucket policy (``cdk_constructs.metadata_bucket``)
require one of them on archive (and processing) writes."""

PROCESSOR_DENIED_OBJECT_ACTIONS: tuple[str, ...] = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
)
"""Object actions a processor is denied outside its own prefixes: by its own role
(``cdk_constructs.customer_processor``, literal prefixes) and by the bucket policy
(``cdk_constructs.metadata_bucket``: outside ``archive/``, ``customers/`` and ``processing/``, and but reads
on ``archive/``)."""
