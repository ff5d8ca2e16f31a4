"""The fake identity platform's answers (:mod:`devtools.fake_graph`), without state: the two discovery
documents msal reads before it asks for a token, and why a client-credentials request is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Refusal = tuple[int, dict[str, str], dict[str, Any]]


def instance_discovery(url: str, tenant_id: str) -> dict[str, Any]:
    """``GET /common/discovery/instance``."""
    return {
        "tenant_discovery_endpoint": f"{url}/{tenant_id}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [],
    }


def openid_configuration(url: str, tenant_id: str) -> dict[str, Any]:
    """``GET /{tenant}/v2.0/.well-known/openid-configuration``."""
    base = f"{url}/{tenant_id}"
    return {
        "issuer": f"{base}/v2.0",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
    }


def unknown_tenant(tenant_id: str) -> Refusal:
    return 400, {}, {"error": "invalid_tenant", "error_description": f"AADSTS90002: Tenant '{tenant_id}' not found."}


def token_refusal(form: Mapping[str, str], client_id: str, client_secret: str) -> Refusal | None:
    """The identity platform's error for a token request, None when it is granted (client credentials only)."""
    if form.get("grant_type") != "client_credentials":
        return 400, {}, {"error": "unsupported_grant_type", "error_description": "fake: client_credentials only"}
    if form.get("client_id") != client_id:
        unknown = form.get("client_id")
        description = f"AADSTS700016: Application with identifier '{unknown}' was not found."
        return 400, {}, {"error": "unauthorized_client", "error_description": description}
    if form.get("client_secret") != client_secret:
        description = "AADSTS7000215: Invalid client secret provided."
        return 401, {}, {"error": "invalid_client", "error_description": description}
    scopes = form.get("scope", "").split()
    if not scopes or not any(s.endswith("/.default") for s in scopes):
        description = "AADSTS1002012: the scope must end in /.default"
        return 400, {}, {"error": "invalid_scope", "error_description": description}
    return None
