"""Helpers of the CDK constructs that are not constructs: cdk-nag acknowledgements, task environments.

Imports: ``aws_cdk``, ``cdk_nag`` and ``runtime.contract``.
"""
