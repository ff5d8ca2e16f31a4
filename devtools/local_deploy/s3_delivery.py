"""S3 → SQS notifications across accounts, as AWS delivers them.

moto sends a bucket's event to the queue of the ARN's name in the *bucket's* account, so the sample
platform's bucket (management account) would feed the queues of the governance account never, and a
same-named queue in the management account instead. AWS delivers to the queue the ARN names, in the
account the ARN names (subject to that queue's policy, which the policy engine decides, not this patch).
:func:`deliver_across_accounts` patches moto's notifier in this process (where the emulator's server
runs) to do that; only the account of queue destinations changes, everything else is moto's.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_LOCK = threading.Lock()
_patched = False


def deliver_across_accounts() -> None:
    """Idempotent: patch moto's S3 notifier so a queue ARN of another account is delivered there."""
    global _patched
    with _LOCK:
        if _patched:
            return
        from moto.s3 import notifications

        original_test_event = notifications.send_test_event

        def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
            """moto's ``send_event`` with the queue's own account (the rest as moto does it)."""
            configuration = bucket.notification_configuration
            if configuration is None:
                return
            for notification in configuration.cloud_function:
                if notification.matches(event_name, key.name):
                    body = notifications._get_s3_event(event_name, bucket, key, notification.id)
                    region = notifications._get_region_from_arn(notification.arn)
                    notifications._invoke_awslambda(account_id, body, notification.arn, region)
            for notification in configuration.queue:
                if notification.matches(event_name, key.name):
                    body = notifications._get_s3_event(event_name, bucket, key, notification.id)
                    _, _, _, region, queue_account, queue_name = notification.arn.split(":")
                    notifications._send_sqs_message(queue_account, body, queue_name, region)
            for notification in configuration.topic:
                if notification.matches(event_name, key.name):
                    body = notifications._get_s3_event(event_name, bucket, key, notification.id)
                    region = notifications._get_region_from_arn(notification.arn)
                    notifications._send_sns_message(account_id, body, notification.arn, region)
            if configuration.event_bridge is not None:
                notifications._send_event_bridge_message(account_id, bucket, event_name, key)

        @functools.wraps(original_test_event)
        def send_test_event(account_id: str, bucket: Any) -> None:
            """moto's test event (sent when a configuration is saved) to each queue's own account."""
            for arn in sorted({n.arn for n in bucket.notification_configuration.queue}):
                _, _, _, region, queue_account, queue_name = arn.split(":")
                body = notifications._get_test_event(bucket.name)
                notifications._send_sqs_message(queue_account, body, queue_name, region)
            for arn in sorted({n.arn for n in bucket.notification_configuration.topic}):
                body = notifications._get_test_event(bucket.name)
                region = notifications._get_region_from_arn(arn)
                notifications._send_sns_message(account_id, body, arn, region)

        notifications.send_event = send_event
        notifications.send_test_event = send_test_event
        _patched = True
