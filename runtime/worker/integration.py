"""What a worker needs of the ECS task it runs in: the liveness record and scale-in protection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.contract.names import LIVENESS_FILE
from runtime.worker.task_protection import ScaleInProtection, TaskProtectionClient


def task_integration(*, scale_in_protection: bool) -> dict[str, Any]:
    """The :class:`~runtime.worker.loop.Worker` arguments of a service task: the liveness record the
    container health check reads (processor and coordinator) and, for a service that scales in (the
    processor), scale-in protection through the ECS agent (a no-op where ``ECS_AGENT_URI`` is not set).
    The coordinator runs one task without scaling: protection would only hold back its deployments."""
    client = TaskProtectionClient.from_environment() if scale_in_protection else None
    return {"liveness_path": Path(LIVENESS_FILE), "protection": ScaleInProtection(client)}
