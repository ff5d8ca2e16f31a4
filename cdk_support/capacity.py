"""The task capacity, size and shutdown rules, in one place: the ``cdk.json`` model (``stacks.config.Customer``),
:class:`~cdk_constructs.customer.TtpCustomer` and :class:`~cdk_constructs.customer_processor.CustomerProcessor`
all call :func:`check_processor_capacity`, so a ``cdk.json`` user and a construct user get the same rule
and the same message."""

from __future__ import annotations

FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}
"""Fargate CPU units -> the memory sizes (MiB) Fargate accepts with them."""


def check_processor_capacity(
    *, min_tasks: int, max_tasks: int, scale_to_zero: bool, cpu: int | None = None, memory_mib: int | None = None
) -> None:
    """Raise ``ValueError`` naming the setting and the fix when the processor's task counts or size are
    inconsistent (``cpu``/``memory_mib`` are checked when given)."""
    if scale_to_zero and min_tasks != 0:
        raise ValueError(f"scale_to_zero is true, so min_tasks must be 0 (got {min_tasks}); set min_tasks: 0")
    if not scale_to_zero and min_tasks < 1:
        raise ValueError(
            f"min_tasks is {min_tasks} but scale_to_zero is false; set scale_to_zero: true or min_tasks >= 1"
        )
    if max_tasks < max(min_tasks, 1):
        raise ValueError(f"max_tasks ({max_tasks}) must be >= min_tasks ({min_tasks}) and >= 1")
    if cpu is None:
        return
    allowed = FARGATE_SIZES.get(cpu)
    if allowed is None:
        raise ValueError(f"cpu {cpu} is not a Fargate size; use one of {sorted(FARGATE_SIZES)}")
    if memory_mib is not None and memory_mib not in allowed:
        raise ValueError(f"memory_mib {memory_mib} is not valid with cpu {cpu}; use one of {list(allowed)}")


MAX_FARGATE_STOP_TIMEOUT = 120
"""The longest stop timeout (SIGTERM -> SIGKILL) Fargate allows, in seconds."""


def check_shutdown(
    *, drain_seconds: float, visibility_timeout_seconds: int, stop_timeout_seconds: int | None = None
) -> None:
    """A task's SIGTERM drain ends before its stop timeout (SIGKILL) and before its lease (the queue's visibility
    timeout) runs out; the stop timeout is at most Fargate's. The ``cdk.json`` model, the processor and the
    coordinator call this one rule."""
    if stop_timeout_seconds is not None:
        if stop_timeout_seconds > MAX_FARGATE_STOP_TIMEOUT:
            raise ValueError(
                f"stop_timeout {stop_timeout_seconds}s exceeds the Fargate maximum of {MAX_FARGATE_STOP_TIMEOUT}s"
            )
        if drain_seconds >= stop_timeout_seconds:
            raise ValueError(
                f"drain_seconds ({drain_seconds:g}) must be below the stop timeout ({stop_timeout_seconds}s)"
            )
    if drain_seconds >= visibility_timeout_seconds:
        raise ValueError(
            f"visibility_timeout_seconds ({visibility_timeout_seconds}) must be greater than the worker's "
            f"{drain_seconds:g} s drain (drain_seconds must be below the queue's visibility timeout)"
        )
