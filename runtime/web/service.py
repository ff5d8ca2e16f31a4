"""What the submission page can do, over boto3 clients: one instance per request, no global state.

Every check is the runtime's own: a change is validated by :func:`runtime.archive.submit.validate_change`
(the model, the size and number limits, the messages ``python -m runtime submit`` prints) and submitted by
:func:`runtime.archive.submit.submit_change` (archive first by compare-and-swap, then one trigger per
customer). The page's field messages are pydantic's own ``msg`` per location, the text
:func:`~runtime.archive.documents.describe_validation_error` joins for the CLI.

Who acts is never taken from the request body: :data:`IDENTITY_HEADER` is set by the authentication in
front of the API (the Lambda@Edge check at CloudFront strips any copy the viewer sent; locally, the
clearly labelled sign-in stand-in) and is recorded in the audit trail as the submitter.

Drafts (``drafts/{id}.json``) are working copies, validated only for their key and size: saving one is a
conditional write (``IfNoneMatch: *`` for a new draft, ``IfMatch`` the ETag the page read), so a draft
someone else saved meanwhile is never overwritten; the page gets :class:`Conflict` and reopens it.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from runtime.archive import (
    REFUSE_NAIVE_TIMES,
    ArchiveDocument,
    ArchiveStore,
    InvalidSubmission,
    TriggerStore,
    is_conflict,
    is_missing,
    parse_json,
    submit_change,
    validate_change,
)
from runtime.contract import keys
from runtime.contract.document_limits import MAX_CHANGE_DOCUMENT_BYTES
from runtime.ops.clients import OpsClients
from runtime.ops.customers import registered, unregistered
from runtime.ops.verify import verify

__all__ = ["IDENTITY_HEADER", "Conflict", "NotFound", "SiteService", "Unauthenticated", "field_errors"]

IDENTITY_HEADER = "x-ttp-user"
"""The authenticated identity (the ID token's email, else its subject), set by the auth layer only."""


class Unauthenticated(Exception):
    """No authenticated identity reached the API: refused with 401."""


class NotFound(Exception):
    """No such draft or change: 404."""


class Conflict(Exception):
    """Someone else's newer draft or archive: 409, nothing overwritten."""


def field_errors(document: Any) -> dict[str, str]:
    """Per field location (``customers.1``, ``meeting.end_time``), the model's message; ``{}`` if valid.

    The same validation as ``submit`` (naive times refused), kept per field so the page can show each
    message next to its control.
    """
    if not isinstance(document, dict):
        return {"document": "change document must be a JSON object"}
    try:
        ArchiveDocument.model_validate(document, context={REFUSE_NAIVE_TIMES: True})
    except ValidationError as exc:
        found: dict[str, str] = {}
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "document"
            found.setdefault(where, error["msg"])
        return found
    return {}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class SiteService:
    def __init__(
        self, clients: OpsClients, bucket: str, identity: str | None, published: list[str] | None = None
    ) -> None:
        self.clients = clients
        self.bucket = bucket
        self._identity = (identity or "").strip()
        self._published = sorted(published) if published else None

    @property
    def identity(self) -> str:
        if not self._identity:
            raise Unauthenticated(
                f"no authenticated identity ({IDENTITY_HEADER}): sign in through the site; the API is only "
                "reachable behind its authentication"
            )
        return self._identity

    # -- reading -----------------------------------------------------------------------------------
    def customers(self) -> list[str]:
        """The platform's published customer list (the construct renders it into the function's
        environment at synthesis), else the registry ``/ttp/customers/{code}`` in the API's account."""
        self.identity  # noqa: B018 - every call is authenticated
        return self._published if self._published is not None else registered(self.clients.ssm)

    def _unlisted(self, codes: list[str]) -> list[str]:
        if self._published is not None:
            return [c for c in codes if c not in self._published]
        return unregistered(self.clients.ssm, codes)

    def validate(self, document: Any) -> dict[str, Any]:
        """``{"valid": bool, "message": str, "fields": {location: message}}`` — nothing is written."""
        self.identity  # noqa: B018
        fields = field_errors(document)
        try:
            validate_change(document if isinstance(document, dict) else json.dumps(document))
        except InvalidSubmission as exc:
            return {"valid": False, "message": str(exc), "fields": fields}
        unknown = self._unlisted(list(document.get("customers", [])))
        if unknown:
            message = f"customers {unknown} are not in the platform's published customer list: choose from the list"
            return {"valid": False, "message": message, "fields": {"customers": message}}
        return {"valid": True, "message": "", "fields": {}}

    def change(self, change_id: str) -> dict[str, Any]:
        """Per customer processed / emails / delivery outcomes / meeting, the audit trail, the revisions
        (the report ``python -m runtime verify`` prints, as JSON), plus the current document."""
        self.identity  # noqa: B018
        try:
            keys.validate_change_id(change_id)
        except keys.InvalidKeyError as exc:
            raise NotFound(str(exc)) from None
        report = verify(self.clients, self.bucket, change_id)
        if not report.exists:
            raise NotFound(report.error or f"{keys.archive_key(change_id)} does not exist")
        body: dict[str, Any] = _jsonable(dataclasses.asdict(report))
        body["complete"] = report.complete
        body["pending"] = report.pending
        version = ArchiveStore(self.clients.s3, self.bucket).load_results(change_id)
        if version is not None:
            body["document"] = _jsonable(version.document.to_python_dict())
            body["revisions"] = sorted({m.revision for m in version.document.modifications if m.revision})
        return body

    # -- drafts ------------------------------------------------------------------------------------
    def load_draft(self, change_id: str) -> dict[str, Any]:
        self.identity  # noqa: B018
        try:
            response = self.clients.s3.get_object(Bucket=self.bucket, Key=keys.draft_key(change_id))
        except keys.InvalidKeyError as exc:
            raise NotFound(str(exc)) from None
        except ClientError as exc:
            if is_missing(exc):
                raise NotFound(f"no draft {keys.draft_key(change_id)}") from None
            raise
        draft = parse_json(response["Body"].read())
        return {"draft": _jsonable(draft), "etag": response["ETag"]}

    def save_draft(self, change_id: str, document: dict[str, Any], etag: str | None) -> dict[str, Any]:
        """Write ``drafts/{id}.json``: created only if absent (no ``etag``), else only over the ETag read."""
        user = self.identity
        key = keys.draft_key(change_id)  # InvalidKeyError names the rule
        if not isinstance(document, dict):
            raise InvalidSubmission("a draft must be a JSON object")
        if document.get("change_id", change_id) != change_id:
            raise InvalidSubmission(f"the draft's change_id {document.get('change_id')!r} is not {change_id!r}")
        draft = {**document, "change_id": change_id, "saved_by": user, "saved_at": datetime.now(UTC).isoformat()}
        body = json.dumps(draft, ensure_ascii=False).encode()
        if len(body) > MAX_CHANGE_DOCUMENT_BYTES:
            raise InvalidSubmission(
                f"draft is {len(body):,} bytes; the limit is {MAX_CHANGE_DOCUMENT_BYTES:,} bytes: shorten it"
            )
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            response = self.clients.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", **condition
            )
        except ClientError as exc:
            if is_conflict(exc) or is_missing(exc):
                raise Conflict(
                    f"{key} was saved by someone else since you opened it (or was removed): reopen the draft, "
                    "then save again"
                ) from None
            raise
        return {"change_id": change_id, "etag": response["ETag"], "saved_by": user}

    # -- submitting --------------------------------------------------------------------------------
    def submit(self, document: Any, *, change_id: str | None = None) -> dict[str, Any]:
        """Archive first, then one trigger per customer; per customer whether its trigger was written.

        ``change_id`` (a resubmission from the change's page) must match the document's.
        """
        user = self.identity
        if not isinstance(document, dict):
            raise InvalidSubmission("change document must be a JSON object")
        if change_id is not None and document.get("change_id") != change_id:
            raise InvalidSubmission(f"change_id {document.get('change_id')!r} is not this change's {change_id!r}")
        validated = validate_change(document)
        unknown = self._unlisted(list(validated.customers))
        if unknown:
            raise InvalidSubmission(
                f"customers {unknown} are not in the platform's published customer list: choose from the list"
            )
        archive = ArchiveStore(self.clients.s3, self.bucket)
        triggers = TriggerStore(self.clients.s3, self.bucket)
        try:
            result = submit_change(archive, triggers, validated, user_id=user)
        except ClientError as exc:
            if is_conflict(exc):
                raise Conflict(f"the archive of {validated.change_id} kept changing: submit again") from None
            current = archive.load_optional(validated.change_id)
            if current is None:
                raise  # nothing was written
            return {
                "change_id": validated.change_id,
                "revision": current.document.revision,
                "error": f"the archive was written, a trigger was not: {exc}",
                "customers": [
                    {
                        "customer": code,
                        "trigger_written": triggers.head(keys.TriggerRef(code, validated.change_id)) is not None,
                    }
                    for code in validated.customers
                ],
            }
        return {
            "change_id": result.change_id,
            "revision": result.revision,
            "submitted_by": user,
            "customers": [{"customer": code, "trigger_written": True} for code in result.customers],
        }
