"""Defaults that both the ``ttp`` configuration (``stacks.config``) and the construct props use.

Pure (no ``aws_cdk``): ``stacks.config`` validates cdk.json without loading the CDK. Defaults of the
runtime's own settings (concurrency, drain, send rate, visibility timeout …) are not here: they are
read from ``runtime.contract.settings`` (:func:`cdk_support.environment.setting_default`).
"""

from __future__ import annotations

from typing import Literal

TASK_CPU = 256
"""Fargate CPU units of a runtime task (0.25 vCPU)."""

TASK_MEMORY_MIB = 512
"""Fargate memory of a runtime task (MiB), the smallest that fits ``TASK_CPU``."""

MIN_PROCESSOR_TASKS = 1
"""Processor tasks kept running while the queue is empty (without scale-to-zero)."""

MAX_PROCESSOR_TASKS = 2
"""Processor tasks under queue backlog."""

SWEEP_INTERVAL_MINUTES = 5
"""Minutes between two runs of the sweeper."""

MAX_RECEIVE_COUNT = 5
"""Receives of a message before SQS moves it to the dead-letter queue."""

CpuArchitectureName = Literal["X86_64", "ARM64"]
"""The CPU architectures Fargate runs Linux tasks on (``ARM64``: Graviton)."""

CPU_ARCHITECTURE: CpuArchitectureName = "X86_64"
"""CPU architecture of every runtime task and of the image built for it."""
TRIGGER_BUS_SHARDS = 5
"""Trigger buses of routing ``eventbridge-sharded``: 5 x 300 rules, room for 1,000 customers with the hash's
unevenness (at most 212 of the 1,000 sample customers on one bus); 5 of the 100 buses an account may own."""
RoutingName = Literal["s3", "eventbridge", "eventbridge-sharded"]
"""How trigger events reach the customer queues: S3 notifications (up to 97 customers), one wildcard rule per
customer on the bucket account's default bus (up to 29), or sharded over trigger buses (1,000 and more)."""
