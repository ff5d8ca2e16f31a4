"""Reusable CDK constructs of the Transient Trigger Pipeline, one per module.

Import them from their modules (``from cdk_constructs.customer_queue import CustomerQueue``). Each
construct is usable alone in another CDK app: it takes its props (a frozen dataclass) and interfaces
(``IQueue``, ``ICluster``, ...), never this project's stacks. ``runtime_task.RuntimeTaskBase`` is the
base of the constructs that run the runtime image (``CustomerProcessor``, ``Sweeper``). Non-construct
helpers live in ``cdk_support``; the names and settings they share with the runtime come from
``runtime.contract``.
"""
