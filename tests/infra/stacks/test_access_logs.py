"""The access-log bucket is versioned (issue 12): its logs are the only record of who wrote ``archive/``."""

from __future__ import annotations

from aws_cdk.assertions import Match

from stacks.app_builder import STORAGE_STACK
from tests.support.synth import Synth


def test_access_log_bucket_is_versioned_and_keeps_old_versions_for_the_retention(sample: Synth) -> None:
    sample.template(STORAGE_STACK).has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": Match.absent(),  # the access-log bucket (the metadata bucket has a fixed name)
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Id": "expire-access-logs",
                                "ExpirationInDays": 365,
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 365},
                            }
                        ),
                        Match.object_like({"Id": "expired-delete-markers", "ExpiredObjectDeleteMarker": True}),
                    ]
                )
            },
        },
    )
