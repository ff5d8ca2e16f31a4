"""The platform's customer list, as ``submit`` reads it: one SSM parameter per deployed customer under
:data:`~runtime.contract.names.CUSTOMER_REGISTRY_PATH` (created with each customer's queue by its
``CustomerStack``), so a code that no queue reads (``hst`` for ``hts``) is refused before anything is
written, naming the codes that are deployed.

Cost: one ``GetParameters`` per 10 codes asked for (SSM's limit per call); only on a miss, the path is
listed (``GetParametersByPath``, 10 per page) to name the known codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from runtime import aws
from runtime.contract import names
from runtime.ops.errors import OpsError, OpsUsageError

GET_PARAMETERS_MAX = 10
"""Names per ``ssm:GetParameters`` call (the API's limit)."""


def _refuse_unreadable(exc: ClientError) -> None:
    """A permission error names the permissions; any other AWS error goes on to the CLI's one handler."""
    if aws.error_code(exc) in ("AccessDeniedException", "AccessDenied"):
        raise OpsError(
            f"cannot read the customer registry {names.CUSTOMER_REGISTRY_PATH} ({aws.error_code(exc)}): the caller "
            f"needs ssm:GetParameters and ssm:GetParametersByPath on parameter{names.CUSTOMER_REGISTRY_PATH}/* "
            "(docs/runbook.md, Permissions)"
        ) from None


def unregistered(ssm: Any, codes: Iterable[str]) -> list[str]:
    """The codes among ``codes`` that have no registry parameter, in the order given."""
    wanted = list(dict.fromkeys(codes))
    parameters = {names.customer_registry_parameter(code): code for code in wanted}
    found: set[str] = set()
    chunk_names = list(parameters)
    try:
        for start in range(0, len(chunk_names), GET_PARAMETERS_MAX):
            response = ssm.get_parameters(Names=chunk_names[start : start + GET_PARAMETERS_MAX])
            found.update(p["Name"] for p in response.get("Parameters", []))
    except ClientError as exc:
        _refuse_unreadable(exc)
        raise
    return [code for name, code in parameters.items() if name not in found]


def registered(ssm: Any) -> list[str]:
    """Every registered customer code, sorted."""
    prefix = f"{names.CUSTOMER_REGISTRY_PATH}/"
    codes = []
    try:
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=names.CUSTOMER_REGISTRY_PATH):
            codes += [p["Name"].removeprefix(prefix) for p in page.get("Parameters", [])]
    except ClientError as exc:
        _refuse_unreadable(exc)
        raise
    return sorted(codes)


def require_registered(ssm: Any, codes: Iterable[str]) -> None:
    """Nothing when every code is a deployed customer; else :class:`OpsUsageError` naming the unknown
    codes and the known ones (exit 2), or :class:`OpsError` when no customer is registered at all: the
    registry is missing, not the code wrong (exit 3)."""
    unknown = unregistered(ssm, codes)
    if not unknown:
        return
    known = registered(ssm)
    if not known:
        raise OpsError(
            f"no customer is registered under {names.CUSTOMER_REGISTRY_PATH} in this account and region, so "
            f"{', '.join(unknown)} cannot be checked: deploy the customer stacks (TtpCustomer-*; each publishes "
            f"{names.CUSTOMER_REGISTRY_PATH}/CODE), or check AWS_PROFILE and AWS_REGION (the governance account) "
            "(nothing was written)"
        )
    raise OpsUsageError(
        f"customers: {', '.join(unknown)} not deployed (no queue reads their triggers); the deployed customers are "
        f"{', '.join(known)}: fix the code in the document or --customers (nothing was written)"
    )
