"""The contract between the infrastructure and the runtime: pure definitions, no I/O.

Key layout, physical names, settings models (the task environment), metric names, alarm and stuck
thresholds, dashboard bodies. This is the only part of ``runtime`` that ``cdk_constructs`` and
``stacks`` may import. Imports: the standard library and pydantic only, nothing else of ``runtime``.
"""
