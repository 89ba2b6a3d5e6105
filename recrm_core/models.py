"""Pydantic models: everything that goes into and comes out of the public API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from . import identity, values
from .values import Persona, Stage

Channel = Literal["email", "sms", "phone", "wechat"]
Purpose = Literal["marketing", "surveys"]
Priority = Literal["low", "normal", "high", "urgent"]
CaseStatus = Literal["open", "in_progress", "resolved", "closed", "reopened"]
Gender = Literal["male", "female"]


_M = TypeVar("_M", bound=BaseModel)


def trusted(cls: type[_M], values: dict[str, Any], fields_set: set[str] | None = None) -> _M:
    """An instance of ``cls`` holding ``values`` as they are, without validation.

    For values that are valid by construction (our own columns, or the output of the
    very parsers the validators call). ``values`` must hold every field, in field
    order; ``fields_set`` defaults to all of them. This is what ``model_construct``
    ends with, minus its per-field bookkeeping, which costs ~10 µs a model: too much
    per row of a bulk import or per customer loaded. Tests compare the result with
    validated construction.
    """
    obj = cls.__new__(cls)
    setattr_ = object.__setattr__
    setattr_(obj, "__dict__", values)
    setattr_(obj, "__pydantic_fields_set__", set(values) if fields_set is None else fields_set)
    setattr_(obj, "__pydantic_extra__", None)
    setattr_(obj, "__pydantic_private__", None)
    return obj


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Actor(_Model):
    """Who performs a service call; recorded in history rows and passed to hooks."""

    # Lengths of the history columns that record them: longer ids are a validation
    # error here, not a database error (PostgreSQL enforces VARCHAR lengths).
    staff_id: str = Field(max_length=64)
    role: str = Field(default="staff", max_length=32)


def _wrap_identity(fn: Any) -> Any:
    def check(v: Any) -> Any:
        if identity.clean(v) == "":
            return None
        try:
            return fn(v)
        except identity.IdentityError as exc:
            raise ValueError(exc.reason) from None

    return check


def _mobile_list(v: Any, info: ValidationInfo) -> list[str]:
    """Normalise to distinct E.164 numbers; the default region comes from the
    validation context (``context={"region": "HK"}``), CN when not given."""
    region = str((info.context or {}).get("region") or "CN")
    # A lone number (a JSON int, or a spreadsheet cell read as one) is one mobile, not an
    # iterable: list(13812345678) would escape pydantic as a TypeError.
    raw = list(v) if isinstance(v, list | tuple | set) else ([] if v is None else [v])
    out: list[str] = []
    for item in raw:
        if identity.clean(item) == "":
            continue
        try:
            e164 = identity.normalise_mobile(item, region)
        except identity.IdentityError as exc:
            raise ValueError(exc.reason) from None
        if e164 not in out:
            out.append(e164)
    return out


def _record_error(field: str, reason: str) -> PydanticCustomError:
    return PydanticCustomError("record", reason, {"field": field})


_FIELD_ALIASES = {"mobiles": "mobile", "add_mobiles": "mobile"}


def first_error(exc: ValidationError) -> tuple[str, str]:
    """``(field, reason)`` of the first failing field of a validation error."""
    err = exc.errors(include_url=False)[0]
    ctx = err.get("ctx") or {}
    if "field" in ctx:
        field = str(ctx["field"])
    elif err["loc"]:
        field = _FIELD_ALIASES.get(str(err["loc"][0]), str(err["loc"][0]))
    else:
        field = ""
    reason = err["msg"].removeprefix("Value error, ")
    return field, reason


# Reusable validated types: the API, the CLI and the import accept the same spellings.
Text = Annotated[str | None, BeforeValidator(lambda v: values.optional_text(v, 100))]
LongText = Annotated[str | None, BeforeValidator(lambda v: values.optional_text(v, 128))]
#: free text (summaries, descriptions): long, but storable
BodyText = Annotated[str | None, BeforeValidator(lambda v: values.optional_text(v, 20_000))]
#: for the 64-character columns (codes, sources, staff ids)
ShortText = Annotated[str | None, BeforeValidator(lambda v: values.optional_text(v, 64))]
Mobiles = Annotated[list[str], BeforeValidator(_mobile_list)]
IdCardNumber = Annotated[str | None, BeforeValidator(_wrap_identity(identity.normalise_id_card))]
Email = Annotated[str | None, BeforeValidator(_wrap_identity(identity.normalise_email))]
GenderIn = Annotated[Gender | None, BeforeValidator(values.parse_gender)]
BirthDate = Annotated[
    dt.date | None, BeforeValidator(lambda v: values.parse_date(v, not_after=dt.date.today()))
]
PersonaIn = Annotated[Persona | None, BeforeValidator(values.parse_persona)]
Budget = Annotated[int | None, BeforeValidator(values.parse_budget)]


class CustomerIn(_Model):
    """A customer record as it arrives (API, CLI or an import row).

    Field order is the order in which errors are reported: the first failing field
    is the one an import names. ``mobile`` is accepted as a single-value alias of
    ``mobiles``.
    """

    name: Text = None
    mobiles: Mobiles = Field(default_factory=list)
    id_card: IdCardNumber = None
    email: Email = None
    gender: GenderIn = None
    birth_date: BirthDate = None
    source: ShortText = None
    project: ShortText = None
    persona: PersonaIn = None
    budget: Budget = None
    owner_staff: ShortText = None
    external_id: LongText = None
    source_system: ShortText = None

    @model_validator(mode="before")
    @classmethod
    def _single_mobile(cls, data: Any) -> Any:
        if isinstance(data, dict) and "mobile" in data:
            data = dict(data)
            mobile = data.pop("mobile")
            extra = data.get("mobiles")
            given = [mobile] if not isinstance(mobile, list | tuple) else list(mobile)
            more = [extra] if not isinstance(extra, list | tuple) else list(extra)
            data["mobiles"] = [m for m in given + more if m not in (None, "")]
        return data

    @model_validator(mode="after")
    def _keys_and_id_card(self) -> CustomerIn:
        if not self.mobiles and self.id_card is None:
            raise _record_error("mobile,id_card", "no mobile or ID card")
        if self.id_card is not None:
            card = identity.parse_id_card(self.id_card)
            # gender before birth_date: errors are reported in field order
            if self.gender is not None and self.gender != card.gender:
                raise _record_error(
                    "gender", f"gender {self.gender} contradicts the ID card ({card.gender})"
                )
            if self.birth_date is not None and self.birth_date != card.birth_date:
                raise _record_error(
                    "birth_date",
                    f"birth_date {self.birth_date} contradicts the ID card ({card.birth_date})",
                )
            self.gender = card.gender
            self.birth_date = card.birth_date
        return self


class CustomerUpdate(_Model):
    """Fields to change on an existing customer; fields left unset are not touched."""

    name: Text = None
    email: Email = None
    gender: GenderIn = None
    birth_date: BirthDate = None
    persona: PersonaIn = None
    budget: Budget = None
    add_mobiles: Mobiles = Field(default_factory=list)


class ProjectLink(BaseModel):
    """A customer's relationship with one project."""

    project: str
    project_name: str
    stage: Stage
    owner_staff: str | None = None
    source: str | None = None
    first_seen_at: dt.datetime


class Customer(BaseModel):
    """A customer as the API returns it."""

    id: int
    name: str | None = None
    gender: Gender | None = None
    birth_date: dt.date | None = None
    persona: Persona | None = None
    budget: int | None = None
    email: str | None = None
    mobiles: list[str] = Field(default_factory=list)
    id_card: str | None = None
    stage: Stage = "prospect"
    projects: list[ProjectLink] = Field(default_factory=list)
    source_system: str | None = None
    external_id: str | None = None
    merged_into: int | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class Project(BaseModel):
    id: int
    code: str
    name: str


class InteractionIn(_Model):
    kind: str
    channel: Annotated[str | None, BeforeValidator(lambda v: values.optional_text(v, 32))] = None
    project: str | None = None
    staff: ShortText = None
    occurred_at: dt.datetime | None = None
    summary: BodyText = None
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, v: Any) -> str:
        text = identity.clean(v).lower()
        if not text:
            raise ValueError("interaction kind is empty")
        if len(text) > 32:
            raise ValueError("interaction kind is longer than 32 characters")
        return text

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, v: dt.datetime | None) -> dt.datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("occurred_at needs a time zone")
        return v


class Interaction(BaseModel):
    id: int
    customer_id: int
    kind: str
    channel: str | None = None
    project: str | None = None
    staff: str | None = None
    occurred_at: dt.datetime
    summary: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class StageChange(BaseModel):
    """What a stage change carried; passed to ``recrm_stage_changed``."""

    customer_id: int
    project: str
    old_stage: Stage | None
    new_stage: Stage
    #: the step recorded: ``new_stage`` when the stage moves; for another unit at a
    #: stage the customer already reached (a second contract while ``owner``), the
    #: step (``buyer``) while ``old_stage == new_stage``
    step: Stage | None = None
    unit: str | None = None
    amount: int | None = None
    forced: bool = False
    interaction_id: int | None = None
    #: when the change happened (the contract date, the handover date, ...)
    occurred_at: dt.datetime | None = None


#: why an owner changed: a new link with an owner, an empty owner filled by later
#: data (an import row, an add), a bulk reassign, a merge moving a link, and the
#: public pool (released by nobody following up, claimed by a consultant)
OwnerChangeReason = Literal["first_link", "filled", "reassign", "merge", "released", "claimed"]


class OwnerChange(BaseModel):
    """One customer's owning consultant at one project changed; a list of these is
    passed to ``recrm_owners_changed``."""

    customer_id: int = Field(description="the customer (the survivor, after a merge)")
    project: str = Field(description="the project's code")
    old_owner: str | None = Field(description="the previous owner staff id; None when "
                                  "the link had no owner or did not exist")
    new_owner: str | None = Field(description="the new owner staff id; None when released")
    reason: OwnerChangeReason = Field(description="why it changed")


class Consent(BaseModel):
    customer_id: int
    channel: Channel
    purpose: Purpose
    granted: bool
    source: str | None = None
    recorded_at: dt.datetime


StaffText = ShortText


class CaseIn(_Model):
    """A new service case. Lengths match the ``cases`` columns, so a bad value is a
    validation error naming the field rather than a database error."""

    customer_id: int
    category: str
    subject: str
    priority: Annotated[Priority, BeforeValidator(lambda v: identity.clean(v).lower())] = "normal"
    project: str | None = None
    department: StaffText = None
    assignee: StaffText = None
    description: BodyText = None

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, v: Any) -> str:
        text = identity.clean(v).lower()
        if not text:
            raise ValueError("case category is empty")
        if len(text) > 32:
            raise ValueError("case category is longer than 32 characters")
        return text

    @field_validator("subject", mode="before")
    @classmethod
    def _subject(cls, v: Any) -> str:
        text = identity.clean(v)
        if not text:
            raise ValueError("case subject is empty")
        if len(text) > 200:
            raise ValueError("case subject is longer than 200 characters")
        return text


class CaseHistoryEntry(BaseModel):
    action: str
    from_value: str | None = None
    to_value: str | None = None
    note: str | None = None
    actor_staff: str | None = None
    actor_role: str | None = None
    at: dt.datetime


class Case(BaseModel):
    id: int
    customer_id: int
    project: str | None = None
    category: str
    priority: Priority
    status: CaseStatus
    subject: str
    description: str | None = None
    department: str | None = None
    assignee: str | None = None
    escalation_level: int = 0
    sla_due_at: dt.datetime
    overdue: bool = False
    opened_at: dt.datetime
    resolved_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    history: list[CaseHistoryEntry] = Field(default_factory=list)


class TimelineEntry(BaseModel):
    """One line of the 360 view's timeline; plugins add their own."""

    at: dt.datetime
    kind: str
    title: str
    source: str = "core"
    data: dict[str, Any] = Field(default_factory=dict)


class IdentityEntry(BaseModel):
    """One identifying key of a customer, as shown (not as matched)."""

    kind: Literal["mobile", "id_card"]
    value: str
    since: dt.datetime


class CustomerView(BaseModel):
    """The 360 view of one customer."""

    customer: Customer
    identities: list[IdentityEntry] = Field(default_factory=list)
    timeline: list[TimelineEntry]
    cases: list[Case]
    consents: list[Consent]


class ImportedCustomer(BaseModel):
    """One customer an import batch created or matched, as ``recrm_customers_imported``
    receives it: light, so a plugin that needs only ids pays for nothing more."""

    customer_id: int = Field(description="the customer's id (the survivor's, for a merged one)")
    created: bool = Field(description="True when this batch created the customer")
    changed: list[str] = Field(
        default_factory=list,
        description="what the batch set or filled: profile field names, 'mobiles', "
        "'id_card', 'projects' (a new link or a filled owner/source); empty when a "
        "matched customer was left as it was",
    )
    rows: list[int] = Field(default_factory=list,
                            description="the file rows that resolved to this customer")


class ImportResult(BaseModel):
    rows: int = 0
    created: int = 0
    merged: int = 0
    rejected: int = 0
    suspected_duplicates: int = 0


class RejectedRow(BaseModel):
    """A row an import did not take, and why. ``row`` counts data rows from 1 after the
    header (blank and title rows not counted); for a workbook ``sheet_row`` is the row
    number Excel shows."""

    row: int
    field: str
    reason: str
    sheet_row: int | None = None


class Message(BaseModel):
    """One message to deliver through the transport hook."""

    channel: Channel
    to: str
    subject: str | None = None
    body: str
    customer_id: int | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class DeliveryResult(BaseModel):
    transport: str
    ok: bool = True
    detail: str | None = None


class DuplicatePair(BaseModel):
    email: str
    customer_ids: list[int]
