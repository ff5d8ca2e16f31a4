"""The submission site's API: Powertools' event handler behind CloudFront (function URL, origin access
control), so every route is under ``/api`` on the site's own origin and the page needs no CORS.

Settings (the function's environment, set by :class:`cdk_constructs.submission_site.SubmissionSite`):
``TTP_BUCKET_NAME`` (the metadata bucket). Errors are JSON ``{"message", "fields"}`` with 400 (the
model's messages), 401 (no authenticated identity), 404, 409 (a newer draft or archive: nothing was
overwritten).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types

from runtime.archive import InvalidSubmission
from runtime.contract import keys
from runtime.ops.clients import OpsClients
from runtime.web.service import IDENTITY_HEADER, Conflict, NotFound, SiteService, Unauthenticated, field_errors

__all__ = ["app", "handler"]

BUCKET_VARIABLE = "TTP_BUCKET_NAME"
CUSTOMERS_VARIABLE = "TTP_SITE_CUSTOMERS"
"""The published customer list, comma-separated (rendered by the construct); unset: the SSM registry."""

app = LambdaFunctionUrlResolver()
_clients: OpsClients | None = None


def _service() -> SiteService:
    global _clients
    if _clients is None:
        _clients = OpsClients()
    bucket = os.environ.get(BUCKET_VARIABLE, "")
    if not bucket:
        raise RuntimeError(f"{BUCKET_VARIABLE} is not set: the site's stack sets it to the metadata bucket")
    published = [c for c in os.environ.get(CUSTOMERS_VARIABLE, "").split(",") if c]
    return SiteService(_clients, bucket, app.current_event.headers.get(IDENTITY_HEADER), published or None)


def _body() -> Any:
    try:
        return app.current_event.json_body
    except ValueError:
        raise InvalidSubmission("the request body is not JSON") from None


def _error(status: int, message: str, fields: dict[str, str] | None = None) -> Response[Any]:
    return Response(status, content_types.APPLICATION_JSON, {"message": message, "fields": fields or {}})


ERROR_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (Unauthenticated, 401),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidSubmission, 400),
)
"""Each error the service raises and the status it is answered with (its message as ``message``)."""


def _answered_with(status: int) -> Callable[[Exception], Response[Any]]:
    def answer(exc: Exception) -> Response[Any]:
        return _error(status, str(exc))

    return answer


for _error_type, _status in ERROR_STATUSES:
    app.exception_handler(_error_type)(_answered_with(_status))


@app.exception_handler(  # type: ignore[untyped-decorator]
    keys.InvalidKeyError
)
def _invalid_key(exc: keys.InvalidKeyError) -> Response[Any]:
    return _error(400, str(exc), {"change_id": str(exc)})


@app.get("/api/me")
def me() -> dict[str, Any]:
    return {"user": _service().identity}


@app.get("/api/customers")
def customers() -> dict[str, Any]:
    return {"customers": _service().customers()}


@app.post("/api/validate")
def validate() -> dict[str, Any]:
    return _service().validate(_body())


@app.get("/api/drafts/<change_id>")
def load_draft(change_id: str) -> dict[str, Any]:
    return _service().load_draft(change_id)


@app.put("/api/drafts/<change_id>")
def save_draft(change_id: str) -> dict[str, Any]:
    body = _body()
    if not isinstance(body, dict) or not isinstance(body.get("draft"), dict):
        raise InvalidSubmission('send {"draft": {...}, "etag": "<the ETag you opened, or null for a new draft>"}')
    return _service().save_draft(change_id, body["draft"], body.get("etag"))


def _submit(change_id: str | None) -> Response[Any]:
    service = _service()
    document = _body()
    service.identity  # noqa: B018 - refuse an unauthenticated request before reading anything
    fields = field_errors(document)
    try:
        result = service.submit(document, change_id=change_id)
    except InvalidSubmission as exc:
        return _error(400, str(exc), fields)
    return Response(201 if "error" not in result else 502, content_types.APPLICATION_JSON, result)


@app.post("/api/changes")
def submit() -> Response[Any]:
    return _submit(None)


@app.post("/api/changes/<change_id>/revisions")
def resubmit(change_id: str) -> Response[Any]:
    return _submit(change_id)


@app.get("/api/changes/<change_id>")
def change(change_id: str) -> dict[str, Any]:
    return _service().change(change_id)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
