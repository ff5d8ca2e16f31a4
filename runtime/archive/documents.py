"""pydantic models of every document the runtime reads or writes.

* :class:`ArchiveDocument` — ``archive/{change_id}.json``, the single source of truth. Canonical field
  names are snake_case (as the Go types); camelCase spellings (the runbook's jq) are accepted on read.
  Unknown fields are kept and written back unchanged: the submitter may know fields the processor
  does not, and a rewrite must never drop them.
* :class:`ModificationEntry` — one line of the archive's audit trail.
* :class:`MeetingMetadata`, :class:`ProcessingLease`, :class:`MeetingRequest` — parts of the archive.

Every field the runtime writes is declared. Fields declared after others first wrote them as unknown
fields (``_NULL_WHEN_SET``) are written as ``null`` when set to None, exactly as they were then.
(The queue message envelopes are in :mod:`runtime.worker.envelopes`.)

**Times.** Every time in a document is timezone-aware. A stored time without a UTC offset
(``2026-03-01T10:00:00``) is read as UTC, the meaning the meeting code always gave it, so a document
written before submit refused such times still reads, and a naive time never meets an aware one in a
comparison (a raw ``TypeError``, retried forever). ``submit`` refuses a time without an offset
(:data:`REFUSE_NAIVE_TIMES`): the submitter may have meant local time, and a guess would move a meeting.

**Numbers.** A document read from JSON keeps every number with a fraction or an exponent as a
:class:`JsonNumber`, which remembers the text it was written as; :meth:`ArchiveDocument.to_json_bytes`
writes that text back. A field unknown to us thus survives every rewrite byte for byte (a long
decimal, ``1.50``, ``1e400``, another writer's ``NaN``) instead of becoming a double or ``null``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, to_jsonable_python

from runtime.contract.keys import InvalidKeyError, validate_change_id, validate_customer_code

SUBMITTED = "submitted"
PROCESSED = "processed"
MEETING_SCHEDULED = "meeting_scheduled"
MEETING_UPDATED = "meeting_updated"
MEETING_CANCELLED = "meeting_cancelled"
RESTORED = "restored"
REDRIVEN = "redriven"

MAX_TITLE_LENGTH = 200


def _customer_code(value: str) -> str:
    try:
        return validate_customer_code(value)
    except InvalidKeyError as exc:
        raise ValueError(str(exc)) from None


CustomerCodeField = Annotated[str, AfterValidator(_customer_code)]


def utcnow() -> datetime:
    return datetime.now(UTC)


REFUSE_NAIVE_TIMES = "refuse_naive_times"
"""Validation context key of ``submit``: when true, a time without a UTC offset is an error instead of
UTC, and so is an implementation window that ends before it starts (both are read from stored documents)."""

NAIVE_TIME_FIX = (
    "a time without a UTC offset is ambiguous: add one, e.g. 2026-03-01T10:00:00Z or 2026-03-01T10:00:00+02:00"
)


class JsonNumber(float):
    """A JSON number with a fraction or an exponent, as read: usable as a float, written back as ``text``.

    Also ``NaN`` and ``±Infinity``, which Python's reader accepts (they are not JSON, but another writer
    may have stored them; ``submit`` refuses them). Immutable, so copies share it.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JsonNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __reduce__(self) -> tuple[type[JsonNumber], tuple[str]]:
        return (JsonNumber, (self.text,))

    def __copy__(self) -> JsonNumber:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> JsonNumber:
        return self


MAX_NESTING = 200
"""Deepest nesting of objects and arrays in a document: the limit of pydantic's JSON parser, which read
the documents before :func:`parse_json`; it keeps every recursive walk and the writer far from Python's
recursion limit."""


def check_nesting(value: Any) -> None:
    """Raises ``ValueError`` when objects and arrays are nested deeper than :data:`MAX_NESTING`."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth >= MAX_NESTING:
            raise ValueError(f"objects and arrays are nested deeper than {MAX_NESTING} levels")
        stack.extend((child, depth + 1) for child in children)


def parse_json(body: bytes | str, *, check: bool = True) -> Any:
    """``json.loads`` keeping the text of every non-integer number (:class:`JsonNumber`); integers are
    exact already. Raises ``ValueError``: not JSON, not UTF-8, nested deeper than :data:`MAX_NESTING`
    (``check=False``: the caller checks the nesting of what it keeps, :func:`check_nesting`)."""
    try:
        data = json.loads(body, parse_float=JsonNumber, parse_constant=JsonNumber)
    except RecursionError:  # nested far deeper still: the parser itself gave up
        raise ValueError(f"objects and arrays are nested deeper than {MAX_NESTING} levels") from None
    if check:
        check_nesting(data)
    return data


def _encode(value: Any, indent: str) -> str:
    """``json.dumps(value, indent=2)`` of a python-mode dump, except that a :class:`JsonNumber` is
    written as its text; a plain non-finite float is ``null`` (as pydantic's JSON mode writes it)."""
    if isinstance(value, JsonNumber):
        return value.text
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = indent + "  "
        items = ",".join(f"\n{inner}{json.dumps(str(k))}: {_encode(v, inner)}" for k, v in value.items())
        return f"{{{items}\n{indent}}}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        inner = indent + "  "
        items = ",".join(f"\n{inner}{_encode(v, inner)}" for v in value)
        return f"[{items}\n{indent}]"
    if isinstance(value, float) and not math.isfinite(value):
        return "null"
    if value is None or isinstance(value, (str, int, float)):
        return json.dumps(value)
    return json.dumps(to_jsonable_python(value))


class _Document(BaseModel):
    """Snake_case canonical, camelCase accepted, unknown fields preserved."""

    _NULL_WHEN_SET: ClassVar[tuple[str, ...]] = ()
    """Declared fields written as ``null`` when explicitly set to None (as unknown fields are)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        validate_assignment=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _one_spelling_per_field(cls, data: Any) -> Any:
        """Refuse a field given under two spellings (``change_id`` and ``changeId``): pydantic would take
        one and keep the other as an unknown field, which the next rewrite writes back over the first."""
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                spellings = {name, info.alias or name}
                if isinstance(info.validation_alias, AliasChoices):
                    spellings.update(c for c in info.validation_alias.choices if isinstance(c, str))
                given = sorted(s for s in spellings if s in data)
                if len(given) > 1:
                    raise ValueError(f"{name} is given more than once ({', '.join(given)}); use one spelling")
        return data

    @model_serializer(mode="wrap")
    def _keep_unknown_nulls(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """``exclude_none`` drops unset optional fields of ours, never an unknown field someone set to null
        (nor a field of ``_NULL_WHEN_SET`` set to null: those were unknown fields before being declared)."""
        data = handler(self)
        if info.exclude_none and isinstance(data, dict):
            fields = type(self).model_fields
            for name in self._NULL_WHEN_SET:
                if name in self.model_fields_set and getattr(self, name) is None:
                    data[(fields[name].alias or name) if info.by_alias else name] = None
            if self.model_extra:
                data.update({key: None for key, value in self.model_extra.items() if value is None})
        return data

    @field_validator("*", mode="after")
    @classmethod
    def _times_are_aware(cls, value: Any, info: ValidationInfo) -> Any:
        """A time without a UTC offset is UTC, or an error when the context asks (``submit``)."""
        if isinstance(value, datetime) and value.tzinfo is None:
            if info.context and info.context.get(REFUSE_NAIVE_TIMES):
                raise ValueError(NAIVE_TIME_FIX)
            return value.replace(tzinfo=UTC)
        return value

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON values, for display and comparison (a :class:`JsonNumber` becomes a float)."""
        return self.model_dump(mode="json", by_alias=False, exclude_none=True)

    def to_python_dict(self) -> dict[str, Any]:
        """The fields as python values (times as datetimes, numbers as read): what a rewrite validates."""
        return self.model_dump(mode="python", by_alias=False, exclude_none=True)


class MeetingMetadata(_Document):
    meeting_id: str
    join_url: str | None = None
    ical_uid: str | None = None
    organizer: str | None = None
    subject: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    attendees: list[str] = Field(default_factory=list)
    revision: int | None = None
    cancelled: bool = False
    transaction_id: str | None = None
    generation: int | None = None
    location: str | None = None
    teams: bool | None = None
    attendees_total: int | None = None
    attendees_dropped: list[str] | None = None

    _NULL_WHEN_SET = ("transaction_id", "generation", "location", "teams", "attendees_total", "attendees_dropped")


class ModificationEntry(_Document):
    """One line of the audit trail; the counts and details after ``meeting_metadata`` apply to some types."""

    timestamp: datetime = Field(default_factory=utcnow)
    user_id: str = Field(min_length=1)
    modification_type: str = Field(min_length=1)
    customer_code: str | None = None
    revision: int | None = None
    meeting_metadata: MeetingMetadata | None = None
    # submitted
    customers: list[str] | None = None
    # processed (folded by the change coordinator from processing/{customer}/{id}.json)
    recipients: int | None = None
    emails_sent: int | None = None
    rejected: int | None = None
    superseded: bool | None = None
    """True: a newer revision's claim stopped this revision's sending; ``emails_sent`` is what it sent."""
    # meeting_updated / meeting_cancelled / meeting_scheduled (a re-created event)
    changed: list[str] | None = None
    event_existed: bool | None = None
    replaced_meeting_id: str | None = None
    # restored (runtime.ops.restore)
    restored_version_id: str | None = None
    restored_version_time: str | None = None
    replaced_version_id: str | None = None
    replaced_state: str | None = None
    carried_forward: int | None = None
    dropped: list[dict[str, Any]] | None = None

    _NULL_WHEN_SET = (
        "customers",
        "recipients",
        "emails_sent",
        "changed",
        "event_existed",
        "restored_version_id",
        "restored_version_time",
        "replaced_version_id",
        "replaced_state",
        "carried_forward",
        "dropped",
    )


class ProcessingLease(_Document):
    """A customer's claim on a change (docs/design.md §2 step 5): who is processing it, until when.

    ``owner`` is the SQS message id (or ``manual:…`` for the CLI), so a redelivery of the *same*
    message after a crash reclaims its own lease at once, while a duplicate event (another message)
    sees a live lease held by someone else and backs off. ``emails_sent`` checkpoints progress so a
    retry does not mail the same recipients again.
    """

    owner: str
    revision: int
    expires_at: datetime
    emails_sent: list[str] = Field(default_factory=list)

    def is_live(self, now: datetime) -> bool:
        return self.expires_at > now


class MeetingRequest(_Document):
    """A change that asks for a meeting (docs/design.md §5)."""

    start_time: datetime
    end_time: datetime
    subject: str | None = Field(None, max_length=255)
    teams: bool = True
    location: str | None = None

    @field_validator("end_time")
    @classmethod
    def _ends_after_start(cls, end: datetime, info: Any) -> datetime:
        start = info.data.get("start_time")
        if start is not None and end <= start:
            raise ValueError("meeting end_time must be after start_time")
        return end


class DeliveryCounts(_Document):
    """How many recipients of one revision last stood at each delivery status (SES events).

    Computed by the delivery-event consumer from ``delivery/{code}/{id}.json`` and folded by the change
    coordinator into the archive's ``delivery`` field. ``sequence`` is the delivery object's write count
    these counts were read at: the fold replaces stored counts only with counts of a higher sequence, so a
    stale read folded late never hides a fresher one."""

    sequence: int = Field(0, ge=0)
    recipients: int = Field(0, ge=0)
    sent: int = Field(0, ge=0)
    """Accepted by SES, no later outcome known yet."""
    delivered: int = Field(0, ge=0)
    bounced: int = Field(0, ge=0)
    bounced_permanent: int = Field(0, ge=0)
    bounced_transient: int = Field(0, ge=0)
    """``bounced`` = ``bounced_permanent`` + ``bounced_transient`` + undetermined bounces."""
    complained: int = Field(0, ge=0)
    delayed: int = Field(0, ge=0)
    unsubscribed: int = Field(0, ge=0)
    rejected: int = Field(0, ge=0)
    rendering_failed: int = Field(0, ge=0)


class FoldHead(_Document):
    """``archive/{change_id}/folds/head``: the fold segments that count (:mod:`runtime.archive.folds`).

    The coordinator writes each fold's ``processed`` entries to a new segment and lists it here by
    compare-and-swap; the change document is not rewritten by a fold. ``outcomes`` counts the entries the
    listed segments hold per outcome (``processed``, ``superseded``), for views that need no entry."""

    change_id: str
    segments: list[int] = Field(default_factory=list)
    outcomes: dict[str, int] = Field(default_factory=dict)
    last_folded_at: datetime | None = None


class ArchiveDocument(_Document):
    """``archive/{change_id}.json``. The submitter owns ``change_id`` … ``meeting`` and any unknown field;
    the pipeline records ``revision``, ``modifications``, ``meeting_metadata``, ``leases``,
    ``meeting_lease`` and ``delivery`` (:data:`runtime.archive.submit.RECORDED_FIELDS`). Times are aware: a stored one
    without a UTC offset is read as UTC; ``submit`` refuses one (module docstring, docs/architecture.md "The change
    document")."""

    change_id: str
    title: str = Field(min_length=1, max_length=MAX_TITLE_LENGTH)
    summary: str = ""
    description: str = ""
    customers: list[CustomerCodeField] = Field(min_length=1)
    topic: str = Field("change-notifications", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    status: Literal["submitted", "approved", "cancelled", "completed"] = "submitted"
    revision: int = Field(0, ge=0)
    implementation_start: datetime | None = None
    implementation_end: datetime | None = None
    meeting: MeetingRequest | None = None
    meeting_metadata: MeetingMetadata | None = None
    modifications: list[ModificationEntry] = Field(default_factory=list)
    leases: dict[str, ProcessingLease] = Field(
        default_factory=dict, validation_alias=AliasChoices("leases", "processingLeases", "processing_leases")
    )
    meeting_lease: ProcessingLease | None = None
    delivery: dict[CustomerCodeField, dict[str, DeliveryCounts]] = Field(default_factory=dict)
    """Per customer, per revision (a string: JSON keys are strings): the delivery outcomes of its emails,
    folded by the change coordinator from ``delivery/{code}/{id}.json``."""
    fold_segments: bool | None = None
    """True once the change coordinator folds this change's results into segments (written once, before
    its first segment): only then do readers read ``archive/{id}/folds/head`` (:mod:`runtime.archive.folds`),
    so a document without it (older ones, not yet folded) costs them no more than before."""

    @field_validator("change_id")
    @classmethod
    def _valid_change_id(cls, change_id: str) -> str:
        try:
            return validate_change_id(change_id)
        except InvalidKeyError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("customers")
    @classmethod
    def _valid_customers(cls, customers: list[str]) -> list[str]:
        if len(set(customers)) != len(customers):
            raise ValueError("customers contains duplicates")
        return customers

    @field_validator("implementation_end")
    @classmethod
    def _window_ends_after_it_starts(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        """Refused at ``submit`` only (the context it validates with): a stored change written before
        this rule must still be read, or its processing would be dead-lettered for a display field."""
        start = info.data.get("implementation_start")
        submitting = bool(info.context and info.context.get(REFUSE_NAIVE_TIMES))
        if submitting and start is not None and end is not None and end < start:
            raise ValueError(
                f"implementation_end ({end}) is before implementation_start ({start}): "
                "give an end at or after the start, or leave implementation_end out"
            )
        return end

    @field_validator("title")
    @classmethod
    def _single_line_title(cls, title: str) -> str:
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in title):
            raise ValueError("title must be a single line without control characters (it becomes an email subject)")
        return title

    def processed_entry(self, customer_code: str, revision: int | None = None) -> ModificationEntry | None:
        """The inline entry only (older documents, ``restore``'s carried entries): the folded results are in
        the fold segments; readers of them load the archive with ``ArchiveStore.load_results``."""
        wanted = self.revision if revision is None else revision
        for entry in self.modifications:
            if (
                entry.modification_type == PROCESSED
                and entry.customer_code == customer_code
                and entry.revision == wanted
            ):
                return entry
        return None

    def is_processed(self, customer_code: str, revision: int | None = None) -> bool:
        return self.processed_entry(customer_code, revision) is not None

    def _submissions(self) -> list[tuple[int, list[str]]]:
        """(revision, customers notified) of every ``submitted`` entry that names its revision; an entry
        without ``customers`` notified the customers the document lists (as the sweeper reads it)."""
        return [
            (e.revision, e.customers if e.customers is not None else self.customers)
            for e in self.modifications
            if e.modification_type == SUBMITTED and e.revision is not None
        ]

    def first_submitted_revision(self) -> int | None:
        """The oldest revision this archive records a submission of. A result for a lower revision
        belongs to an earlier submission of the same change id whose archive was deleted (``submit``
        continues the numbering from the bucket's versions): it is no result of this content."""
        revisions = [revision for revision, _ in self._submissions()]
        return min(revisions) if revisions else None

    def notified_customers(self) -> set[str]:
        """Every customer some recorded submission sent a trigger."""
        return {code for _, notified in self._submissions() for code in notified}

    def targets(self, customer_code: str, revision: int) -> bool:
        """Whether revision ``revision`` can have sent emails to ``customer_code``: a submission at or
        before it sent the customer a trigger (a trigger is processed at the newest revision, which may
        be a later one that did not name the customer), and the current revision still lists it (the
        processor refuses a change that does not list it). An archive with no ``submitted`` entry that
        names its revision (an older one, or written by hand) targeted the customers it lists."""
        if revision > self.revision or (revision == self.revision and customer_code not in self.customers):
            return False
        submissions = self._submissions()
        if not submissions:
            return customer_code in self.customers
        return any(at <= revision and customer_code in notified for at, notified in submissions)

    @classmethod
    def from_json_bytes(cls, body: bytes) -> ArchiveDocument:
        """Raises ``ValidationError`` for anything that is not a valid change document, JSON errors included."""
        try:
            data = parse_json(body)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, nesting
            error = InitErrorDetails(type="json_invalid", loc=(), input=body[:100], ctx={"error": str(exc)})
            raise ValidationError.from_exception_data(cls.__name__, [error]) from None
        return cls.model_validate(data)

    def to_json_bytes(self) -> bytes:
        """The document as stored: indented JSON, every :class:`JsonNumber` written as it was read."""
        return _encode(self.to_python_dict(), "").encode()
