"""``logs``: one customer's processor log lines from CloudWatch Logs, narrowed to a change or to errors,
so an operator following a diagnosis never needs the console or the log group's name."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from runtime import aws
from runtime.contract import names
from runtime.ops.clients import OpsClients
from runtime.ops.durations import now
from runtime.ops.errors import OpsError


@dataclass
class LogLines:
    log_group: str
    events: list[dict[str, Any]] = field(default_factory=list)


def read_logs(
    clients: OpsClients,
    customer: str,
    *,
    since: timedelta,
    change_id: str | None = None,
    errors: bool = False,
    limit: int = 200,
    reference: datetime | None = None,
) -> LogLines:
    """At most ``limit`` lines of the last ``since``, oldest first; ``change_id`` and ``errors`` both filter.

    CloudWatch's filter pattern narrows the search server-side by one term; the exact checks here
    make both filters hold together.
    """
    start = int(((reference or now()) - since).timestamp() * 1000)
    found = LogLines(names.log_group_name(customer))
    term = change_id or ("ERROR" if errors else "")
    params: dict[str, Any] = {"logGroupName": found.log_group, "startTime": start}
    if term:
        params["filterPattern"] = f'"{term}"'
    lines = found.events
    client = clients.logs
    while len(lines) < limit:
        try:
            response = client.filter_log_events(**params)
        except ClientError as exc:
            if aws.error_code(exc) != "ResourceNotFoundException":
                raise
            raise OpsError(
                f"log group {found.log_group} does not exist in this account and region: check --customer "
                f"(a customer code, or `coordinator` for {names.COORDINATOR_LOG_GROUP_NAME}), AWS_REGION "
                "and the credentials' account"
            ) from None
        for event in response.get("events", []):
            message = event.get("message", "")
            if change_id and change_id not in message:
                continue
            if errors and "ERROR" not in message:
                continue
            lines.append(
                {"timestamp": event.get("timestamp"), "stream": event.get("logStreamName"), "message": message}
            )
        if not response.get("nextToken") or not response.get("events"):
            break
        params["nextToken"] = response["nextToken"]
    del lines[limit:]
    return found
