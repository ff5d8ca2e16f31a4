"""``restart`` (runbook Task 3, option 1): a new deployment of one customer's processor service, the
first remedy when its tasks are down or wedged. Replaces the tasks; touches no queue or object."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.contract import names
from runtime.ops.clients import OpsClients


@dataclass
class RestartResult:
    cluster: str
    service: str
    status: str | None
    desired: int | None
    running: int | None


def service_to_restart(customer: str) -> str:
    """The ECS service that runs ``customer``'s processors (what to name in a confirmation prompt)."""
    return names.service_name(customer)


def restart(clients: OpsClients, cluster: str, customer: str) -> RestartResult:
    """Force a new deployment; the service starts fresh tasks and drains the old ones (SIGTERM)."""
    service = service_to_restart(customer)
    response = clients.ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
    svc = response["service"]
    return RestartResult(cluster, service, svc.get("status"), svc.get("desiredCount"), svc.get("runningCount"))
