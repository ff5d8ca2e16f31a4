"""Reusable CDK constructs of the Transient Trigger Pipeline, one per module.

Import them from their modules (``from cdk_constructs.customer_queue import CustomerQueue``). This
package file imports nothing, so the pure-Python helpers (``names``, ``dashboard_body``,
``settings_env``) load without aws_cdk.
"""
