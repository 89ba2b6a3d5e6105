"""Pydantic models: everything that goes into and comes out of the public API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
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
from .roles import Channel as ActorChannel
from .roles import Role, parse_role
from .values import Persona, Stage

Channel = Literal["email", "sms", "phone", "wechat"]
#: the core's consent purposes; plugins register more with ``recrm_consent_purposes``
CorePurpose = Literal["marketing", "surveys"]
#: a consent purpose: the core's or one an enabled plugin registered (checked by
#: ``crm.consent``, which knows the plugins)
Purpose = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Priority = Literal["low", "normal", "high", "urgent"]
CaseStatus = Literal["open", "in_progress", "resolved", "closed", "reopened"]
#: how a case came in: the hotline, WeChat, the sales-office mailbox, the owners' forum,
#: the chairman's column, the property desk, a walk-in, a survey (a detractor's case)
IntakeChannel = Literal["hotline", "wechat", "mailbox", "forum", "chairman", "property_desk",
                        "walk_in", "survey", "other"]
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


class _Out(BaseModel):
    """Base of the models the API returns. Validators are built on first use, not at
    import: most commands validate a handful of these, and building all of them is
    a tenth of every command's start-up."""

    model_config = ConfigDict(defer_build=True)


class _Model(_Out):
    """Base of the models the API takes: strict about unknown fields, trims text."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class Actor(_Model):
    """Who performs a service call; recorded in history rows and passed to hooks."""

    # Lengths of the history columns that record them: longer ids are a validation
    # error here, not a database error (PostgreSQL enforces VARCHAR lengths).
    staff_id: Annotated[
        str, BeforeValidator(lambda v: values.required_code(v, "staff id", 64))
    ] = Field(description="id of the staff member acting (recorded in history rows)")
    role: Annotated[Role, BeforeValidator(lambda v: parse_role(values.required_code(v, "role",
                                                                                   32)))] = Field(
        default="sales",
        description="admin, manager, sales, service, partner or analyst (what they may see: "
        "docs/access.md); the legacy names consultant and staff mean sales",
    )
    channel: ActorChannel = Field(
        default="sdk", description="how the call arrived: cli, api or sdk (recorded in the audit)"
    )


def _wrap_identity(fn: Any) -> Any:
    def check(v: Any) -> Any:
        text = identity.clean(v)
        if not text:
            return None
        try:
            # cleaned text: the normaliser's own clean() then takes its short path
            return fn(text)
        except identity.IdentityError as exc:
            raise ValueError(exc.reason) from None

    return check


def _key_list(v: Any, normalise: Callable[[Any], str]) -> list[str]:
    """Distinct normalised keys of a list field (mobiles, WeChat unionids); blanks skip."""
    # A lone value (a JSON int, or a spreadsheet cell read as one) is one key, not an
    # iterable: list(13812345678) would escape pydantic as a TypeError.
    raw = list(v) if isinstance(v, list | tuple | set) else ([] if v is None else [v])
    out: list[str] = []
    for item in raw:
        if identity.clean(item) == "":
            continue
        try:
            key = normalise(item)
        except identity.IdentityError as exc:
            raise ValueError(exc.reason) from None
        if key not in out:
            out.append(key)
    return out


def _mobile_list(v: Any, info: ValidationInfo) -> list[str]:
    """Normalise to distinct E.164 numbers; the default region comes from the
    validation context (``context={"region": "HK"}``), CN when not given."""
    region = str((info.context or {}).get("region") or "CN")
    return _key_list(v, lambda item: identity.normalise_mobile(item, region))


def _unionid_list(v: Any) -> list[str]:
    return _key_list(v, identity.normalise_wechat_unionid)


def _record_error(field: str, reason: str) -> PydanticCustomError:
    return PydanticCustomError("record", reason, {"field": field})


_FIELD_ALIASES = {
    "mobiles": "mobile", "add_mobiles": "mobile",
    "wechat_unionids": "wechat_unionid", "add_wechat_unionids": "wechat_unionid",
}
#: the single-value spellings a record accepts beside its list fields
_SINGULAR = {"mobile": "mobiles", "wechat_unionid": "wechat_unionids"}


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
#: free text (summaries, descriptions): long, but storable
BodyText = Annotated[str | None, BeforeValidator(lambda v: values.optional_text(v, 20_000))]
#: codes and identifiers (sources, staff ids, departments) in 64-character columns:
#: without invisible format characters, which would make look-alike keys
Code = Annotated[str | None, BeforeValidator(lambda v: values.optional_code(v, 64))]
#: a place name (a city): text, in a 64-character column
PlaceText = Annotated[str | None, BeforeValidator(lambda v: values.optional_text(v, 64))]
#: an id in another system (128-character column), a code as well
ExternalId = Annotated[str | None, BeforeValidator(lambda v: values.optional_code(v, 128))]
Mobiles = Annotated[list[str], BeforeValidator(_mobile_list)]
WechatUnionids = Annotated[list[str], BeforeValidator(_unionid_list)]
IdCardNumber = Annotated[str | None, BeforeValidator(_wrap_identity(identity.normalise_id_card))]
Email = Annotated[str | None, BeforeValidator(_wrap_identity(identity.normalise_email))]
GenderIn = Annotated[Gender | None, BeforeValidator(values.parse_gender)]
BirthDate = Annotated[
    dt.date | None,
    BeforeValidator(lambda v: values.parse_date(v, not_after=identity.current_date())),
]
PersonaIn = Annotated[Persona | None, BeforeValidator(values.parse_persona)]
Budget = Annotated[int | None, BeforeValidator(values.parse_budget)]


class CustomerIn(_Model):
    """A customer record as it arrives (API, CLI or an import row).

    Field order is the order in which errors are reported: the first failing field
    is the one an import names. ``mobile`` is accepted as a single-value alias of
    ``mobiles``, ``wechat_unionid`` of ``wechat_unionids``. A record needs one key:
    a mobile, an ID card or a WeChat unionid (a mini-program lead may carry nothing
    else).
    """

    name: Text = Field(default=None, description="full name, trimmed (at most 100 characters)")
    mobiles: Mobiles = Field(
        default_factory=list,
        description="mobile numbers, normalised to E.164 (`mobile` takes a single one)",
    )
    id_card: IdCardNumber = Field(
        default=None, description="18-character ID-card number, checked against GB 11643"
    )
    wechat_unionids: WechatUnionids = Field(
        default_factory=list,
        description="WeChat unionids, one per WeChat platform of the company: 16-64 letters, "
        "digits, '-' or '_', matched exactly (`wechat_unionid` takes a single one)",
    )
    email: Email = Field(
        default=None, description="email address, lower-cased; never merges two customers by itself"
    )
    gender: GenderIn = Field(
        default=None, description="male or female (男/女, M/F accepted); agrees with the ID card"
    )
    birth_date: BirthDate = Field(
        default=None,
        description="date of birth (2024-01-02, 2024/1/2, 2024年1月2日); agrees with the ID card",
    )
    source: Code = Field(
        default=None, description="where the lead came from (ad, call, agency ...), for `project`"
    )
    project: Code = Field(
        default=None,
        description="code of the project the record arrived for; links the customer to it",
    )
    persona: PersonaIn = Field(
        default=None,
        description="first_time, upgrader, investor, luxury or retiree (刚需/改善/投资/高端/养老)",
    )
    budget: Budget = Field(default=None, description="budget in CNY (`1,200,000`, `200万` too)")
    owner_staff: Code = Field(
        default=None, description="consultant who owns the customer at `project`"
    )
    external_id: ExternalId = Field(default=None, description="id of the record in `source_system`")
    source_system: Code = Field(
        default=None, description="the external system the record came from"
    )

    @model_validator(mode="before")
    @classmethod
    def _single_values(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        copied = False
        for single, plural in _SINGULAR.items():
            if single not in data:
                continue
            if not copied:
                data, copied = dict(data), True
            value = data.pop(single)
            extra = data.get(plural)
            given = [value] if not isinstance(value, list | tuple) else list(value)
            more = [extra] if not isinstance(extra, list | tuple) else list(extra)
            data[plural] = [v for v in given + more if v not in (None, "")]
        return data

    @model_validator(mode="after")
    def _keys_and_id_card(self) -> CustomerIn:
        if not self.mobiles and self.id_card is None and not self.wechat_unionids:
            raise _record_error("mobile,id_card", "no mobile, ID card or WeChat unionid")
        if self.id_card is not None:
            # the field's validator parsed it already: read what it encodes
            card = identity.id_card_facts(self.id_card)
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

    name: Text = Field(default=None, description="new full name")
    email: Email = Field(default=None, description="new email address")
    gender: GenderIn = Field(default=None, description="new gender (must agree with the ID card)")
    birth_date: BirthDate = Field(
        default=None, description="new date of birth (must agree with the ID card)"
    )
    persona: PersonaIn = Field(default=None, description="new persona")
    budget: Budget = Field(default=None, description="new budget in CNY")
    add_mobiles: Mobiles = Field(
        default_factory=list, description="mobiles to add to the customer's (existing ones stay)"
    )
    add_wechat_unionids: WechatUnionids = Field(
        default_factory=list,
        description="WeChat unionids to add to the customer's (one another customer holds "
        "is a conflict)",
    )


class ProjectLink(_Out):
    """A customer's relationship with one project."""

    project: str = Field(description="project code")
    project_name: str = Field(description="project name")
    stage: Stage = Field(description="the customer's stage at this project")
    owner_staff: str | None = Field(
        default=None, description="consultant who owns the customer at this project, if any"
    )
    source: str | None = Field(
        default=None, description="where the lead for this project came from"
    )
    first_seen_at: dt.datetime = Field(description="first contact with this project (UTC)")


class Customer(_Out):
    """A customer as the API returns it."""

    id: int = Field(description="customer id (the survivor's id after a merge)")
    name: str | None = Field(default=None, description="full name")
    gender: Gender | None = Field(default=None, description="male or female")
    birth_date: dt.date | None = Field(default=None, description="date of birth")
    persona: Persona | None = Field(
        default=None, description="segment: first_time, upgrader, investor, luxury or retiree"
    )
    budget: int | None = Field(default=None, description="budget in CNY")
    email: str | None = Field(default=None, description="email address (lower-case)")
    mobiles: list[str] = Field(
        default_factory=list, description="mobile numbers in E.164"
    )
    id_card: str | None = Field(
        default=None, description="ID-card number"
    )
    wechat_unionids: list[str] = Field(
        default_factory=list,
        description="WeChat unionids, one per WeChat platform of the company that knows "
        "the person (exactly as WeChat issued them)",
    )
    stage: Stage = Field(
        default="prospect", description="furthest stage over all of the customer's projects"
    )
    projects: list[ProjectLink] = Field(
        default_factory=list, description="the customer's relationship with each project"
    )
    source_system: str | None = Field(default=None, description="external system of `external_id`")
    external_id: str | None = Field(default=None, description="id in the external system")
    merged_into: int | None = Field(
        default=None, description="the survivor's id when this record was merged away, else `None`"
    )
    created_at: dt.datetime = Field(description="when the customer was created (UTC)")
    updated_at: dt.datetime = Field(description="when the profile last changed (UTC)")
    masked: bool = Field(
        default=False,
        description="whether identifying fields are masked (or left out) for the caller's "
        "role; `customers disclose` asks for them in full where the role allows",
    )


class AddResult(_Out):
    """What ``crm.customers.add`` (``POST /v1/customers``) did with one record."""

    customer: Customer = Field(description="the customer the record created or merged into")
    created: bool = Field(description="a new customer was created")
    changed: bool = Field(description="an existing customer gained data from the record")
    suspected_duplicate_of: list[int] = Field(
        default_factory=list,
        description="other customers with the same email (never merged automatically)")


class Project(_Out):
    """A project (楼盘) of the registry."""

    id: int = Field(description="project id")
    code: str = Field(description="project code, e.g. XL2 (trimmed, NFKC-normalised)")
    name: str = Field(description="project name, e.g. 星珑二期")
    city: str | None = Field(default=None, description="the city it is in")
    service_department: str | None = Field(
        default=None, description="the department serving its owners")


class ProjectIn(_Model):
    """A project to register: its code (a reference, changed only by a rename), the
    name people know it by, and optionally its city and the department serving it."""

    code: str = Field(description="project code, e.g. XL2 (trimmed, NFKC-normalised, "
                      "format characters removed)")
    name: str = Field(description="project name, e.g. 星珑二期")
    city: PlaceText = Field(default=None, description="the city it is in")
    service_department: Code = Field(
        default=None, description="the department serving its owners")

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, v: Any) -> str:
        # Imported here: projects.py imports this module.
        from .errors import InvalidInput
        from .projects import project_code

        try:
            return project_code(v)
        except InvalidInput as exc:
            raise ValueError(exc.reason) from None

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, v: Any) -> str:
        text = values.optional_text(v, 200)
        if text is None:
            raise ValueError("project name is empty")
        return text


class InteractionIn(_Model):
    """A touch to log on a customer's timeline (``crm.interactions.log``)."""

    kind: str = Field(
        description="call, visit, sms, wechat, email, contract, handover, event ... (lower-cased)",
    )
    channel: Annotated[str | None, BeforeValidator(lambda v: values.optional_code(v, 32))] = Field(
        default=None, description="how it happened, if not implied by `kind`"
    )
    project: str | None = Field(default=None, description="project code it belongs to, if any")
    staff: Code = Field(default=None, description="staff member involved")
    occurred_at: dt.datetime | None = Field(
        default=None, description="when it happened, with a time zone (default: now)"
    )
    summary: BodyText = Field(default=None, description="free text")
    data: dict[str, Any] = Field(
        default_factory=dict, description="structured details (JSON object)"
    )
    minutes: int | None = Field(
        default=None, ge=0, le=values.MAX_MINUTES,
        description="how long the contact took, in minutes (the staff report's contact "
        "hours); at most a day")

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, v: Any) -> str:
        return values.required_code(v, "interaction kind", 32).lower()

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, v: dt.datetime | None) -> dt.datetime | None:
        return values.zoned(v, "occurred_at")

    @field_validator("data")
    @classmethod
    def _finite(cls, v: dict[str, Any]) -> dict[str, Any]:
        return values.finite_json(v, "data")  # type: ignore[no-any-return]


class Interaction(_Out):
    """One touch on a customer's timeline; passed to ``recrm_interaction_logged``."""

    id: int = Field(description="interaction id")
    customer_id: int = Field(description="the customer's id")
    kind: str = Field(
        description="call, visit, sms, wechat, email, subscription, contract, handover, event ..."
    )
    channel: str | None = Field(default=None, description="how it happened, if recorded")
    project: str | None = Field(default=None, description="project code, if any")
    staff: str | None = Field(default=None, description="staff member involved, if any")
    occurred_at: dt.datetime = Field(description="when it happened (UTC)")
    summary: str | None = Field(default=None, description="free text")
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="structured details; a stage step's `unit` and `amount` are here",
    )
    minutes: int | None = Field(default=None,
                                description="how long the contact took, in minutes, if told")


class StageChange(_Out):
    """What a stage change carried; passed to ``recrm_stage_changed``."""

    customer_id: int = Field(description="the customer's id")
    project: str = Field(description="project code")
    old_stage: Stage | None = Field(
        description="stage before; `None` when the customer is first linked to the project",
    )
    new_stage: Stage = Field(description="stage after the change")
    step: Stage | None = Field(
        default=None,
        description="the step recorded: `new_stage` when the stage moves; for another unit "
        "at a stage the customer already reached (a second contract while `owner`), the step "
        "(`buyer`) while `old_stage == new_stage`",
    )
    unit: str | None = Field(
        default=None, description="the unit (e.g. 3-1201) of a subscription, contract or handover"
    )
    amount: int | None = Field(
        default=None, description="the amount in CNY of a subscription or contract"
    )
    forced: bool = Field(
        default=False, description="moved with `force=True` (allowed to skip or go back)"
    )
    interaction_id: int | None = Field(
        default=None, description="the timeline entry recording the step, if one was logged"
    )
    #: when the change happened (the contract date, the handover date, ...)
    occurred_at: dt.datetime | None = Field(
        default=None,
        description="when the change happened (the contract date, the handover date, ...)",
    )

class StageMove(_Model):
    """One move of ``crm.customers.set_stages``: what ``set_stage`` takes, for one
    customer (checked as ``set_stage`` checks its arguments)."""

    customer_id: int = Field(description="the customer")
    stage: str = Field(description="the stage to move to (prospect, visitor, subscriber, "
                       "buyer, owner)")
    project: str = Field(description="the project's code")
    unit: str | None = Field(
        default=None, description="the unit of a subscription, contract or handover")
    amount: int | None = Field(
        default=None, description="the amount in CNY of a subscription or contract")
    force: bool = Field(default=False, description="allow skipping or going back")
    occurred_at: dt.datetime | None = Field(
        default=None, description="when it happened, with a time zone (default: now)")
    staff: Code = Field(default=None, description="who did the step, recorded on its "
                        "interaction (a sales assistant entering the consultants' contracts); "
                        "default: the actor")


class CustomerInteractionIn(InteractionIn):
    """One entry of ``crm.interactions.log_many``: the customer and what
    ``crm.interactions.log`` takes for them."""

    customer_id: int = Field(description="the customer")


class CustomerStageChange(_Out):
    """One stage change with the customer after it; a sequence of these is passed to
    ``recrm_stages_changed``."""

    customer: Customer = Field(description="the customer right after this change")
    change: StageChange = Field(description="what the change carried")


#: why an owner changed: a new link with an owner, an empty owner filled by later
#: data (an import row, an add), a bulk reassign, a merge moving a link, and the
#: public pool (released by nobody following up, claimed by a consultant)
OwnerChangeReason = Literal["first_link", "filled", "reassign", "merge", "released", "claimed"]


class OwnerChange(_Out):
    """One customer's owning consultant at one project changed; a list of these is
    passed to ``recrm_owners_changed``."""

    customer_id: int = Field(description="the customer (the survivor, after a merge)")
    project: str = Field(description="the project's code")
    old_owner: str | None = Field(description="the previous owner staff id; None when "
                                  "the link had no owner or did not exist")
    new_owner: str | None = Field(description="the new owner staff id; None when released")
    reason: OwnerChangeReason = Field(description="why it changed")


class Consent(_Out):
    """One consent record: a grant or a withdrawal for a channel and purpose."""

    customer_id: int = Field(description="the customer's id")
    channel: Channel = Field(description="email, sms, phone or wechat")
    purpose: Purpose = Field(description="marketing, surveys or a plugin's purpose")
    granted: bool = Field(description="`True` for a grant, `False` for a withdrawal")
    source: str | None = Field(default=None, description="where the consent was given or withdrawn")
    recorded_at: dt.datetime = Field(
        description="when it was recorded (UTC); the newest record per channel and purpose decides"
    )


class CaseIn(_Model):
    """A new service case. Lengths match the ``cases`` columns, so a bad value is a
    validation error naming the field rather than a database error."""

    customer_id: int = Field(description="the customer the case is about")
    category: str = Field(
        description="complaint, repair, inquiry ... (lower-cased, at most 32 characters)"
    )
    subject: str = Field(description="one line (at most 200 characters)")
    priority: Annotated[Priority, BeforeValidator(lambda v: identity.clean(v).lower())] = Field(
        default="normal", description="low, normal, high or urgent; decides the SLA"
    )
    project: str | None = Field(default=None, description="project code, if the case concerns one")
    department: Code = Field(default=None, description="department handling it")
    assignee: Code = Field(default=None, description="staff member handling it; without "
                           "one the case is routed by the `[[routing]]` rules")
    description: BodyText = Field(default=None, description="free text")
    channel: Annotated[IntakeChannel, BeforeValidator(lambda v: identity.clean(v).lower())] = (
        Field(default="other", description="how it came in: hotline, wechat, mailbox, forum, "
              "chairman, property_desk, walk_in, survey or other"))

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, v: Any) -> str:
        return values.required_code(v, "case category", 32).lower()

    @field_validator("subject", mode="before")
    @classmethod
    def _subject(cls, v: Any) -> str:
        return values.required_text(v, "case subject", 200)


class CaseHistoryEntry(_Out):
    """One step in a service case's history (a status change, a hand-over ...)."""

    action: str = Field(
        description="open, start, resolve, close, reopen, transfer, escalate, priority, "
        "route, notify or incident"
    )
    from_value: str | None = Field(
        default=None, description="value before (status, department or assignee)"
    )
    to_value: str | None = Field(default=None, description="value after")
    note: str | None = Field(default=None, description="free text given with the action")
    actor_staff: str | None = Field(default=None, description="who did it")
    actor_role: str | None = Field(default=None, description="their role")
    at: dt.datetime = Field(description="when (UTC)")


class Case(_Out):
    """A service case (complaint, repair, inquiry) with its SLA and history."""

    id: int = Field(description="case id")
    customer_id: int = Field(description="the customer's id")
    project: str | None = Field(default=None, description="project code, if any")
    category: str = Field(description="complaint, repair, inquiry ...")
    priority: Priority = Field(description="low, normal, high or urgent")
    status: CaseStatus = Field(description="open, in_progress, resolved, closed or reopened")
    subject: str = Field(description="one line")
    description: str | None = Field(default=None, description="free text")
    department: str | None = Field(default=None, description="department handling it")
    assignee: str | None = Field(default=None, description="staff member handling it")
    escalation_level: int = Field(
        default=0, description="its escalation level: the index in `[[sla.levels]]` (0 first)")
    level: str | None = Field(default=None, description="the level's name, e.g. head office")
    channel: IntakeChannel = Field(default="other", description="how it came in")
    incident_id: int | None = Field(default=None, description="the incident it belongs to")
    sla_due_at: dt.datetime = Field(description="when it must be resolved (UTC)")
    overdue: bool = Field(default=False, description="still active and past `sla_due_at`")
    opened_at: dt.datetime = Field(description="when it was opened (UTC)")
    resolved_at: dt.datetime | None = Field(
        default=None, description="when it was last resolved (UTC)"
    )
    closed_at: dt.datetime | None = Field(default=None, description="when it was closed (UTC)")
    history: list[CaseHistoryEntry] = Field(
        default_factory=list,
        description="every status change, hand-over and escalation, oldest first",
    )


class TimelineEntry(_Out):
    """One line of the 360 view's timeline; plugins add their own."""

    at: dt.datetime = Field(
        description="when it happened (UTC); the timeline is ordered newest first"
    )
    kind: str = Field(
        description="what happened (an interaction kind, or a plugin's own, e.g. hot_lead)"
    )
    title: str = Field(description="one line to show")
    source: str = Field(
        default="core", description="`core`, or the name of the plugin that added the entry"
    )
    data: dict[str, Any] = Field(default_factory=dict, description="structured details")


class IdentityEntry(_Out):
    """One identifying key of a customer, as shown (not as matched)."""

    kind: Literal["mobile", "id_card", "wechat"] = Field(
        description="mobile, id_card or wechat (a WeChat unionid)")
    value: str = Field(description="the key as entered (not the normalised match key)")
    since: dt.datetime = Field(description="when the key was added to the customer (UTC)")


TaskStatus = Literal["open", "done", "cancelled"]


class Task(_Out):
    """A follow-up task; passed to ``recrm_task_created`` and ``recrm_task_done``."""

    id: int = Field(description="task id")
    customer_id: int = Field(description="the customer")
    project: str = Field(description="the project's code")
    kind: str = Field(description="call, visit, wechat, ...")
    owner_staff: str = Field(description="who is to do it")
    due_at: dt.datetime = Field(description="when it is due (UTC)")
    note: str | None = Field(default=None, description="free text")
    status: TaskStatus = Field(description="open, done or cancelled")
    rule: str | None = Field(default=None, description="the rule that created it "
                             "(`after_visit`, `prospect_idle`); none: added by hand")
    interaction_id: int | None = Field(default=None, description="the interaction that did it")
    cancel_reason: str | None = Field(default=None, description="why it was cancelled")
    created_by: str | None = Field(default=None, description="who added it (none: a rule)")
    created_at: dt.datetime = Field(description="when it was added (UTC)")
    closed_at: dt.datetime | None = Field(default=None, description="when it was done or "
                                          "cancelled (done: when the interaction happened)")
    overdue: bool = Field(default=False, description="open and past its due time")


class CustomerView(_Out):
    """The 360 view of one customer."""

    customer: Customer = Field(description="the customer")
    identities: list[IdentityEntry] = Field(
        default_factory=list,
        description="the customer's mobiles, ID cards and WeChat unionids"
    )
    birthplace: str | None = Field(
        default=None,
        description="where the ID card's region code points (GB/T 2260 via python-stdnum)",
    )
    timeline: list[TimelineEntry] = Field(
        description="interactions and plugins' entries, newest first"
    )
    cases: list[Case] = Field(description="the customer's service cases")
    consents: list[Consent] = Field(
        description="the deciding consent record per channel and purpose"
    )
    tasks: list[Task] = Field(
        default_factory=list, description="the customer's open follow-up tasks, earliest "
        "due first"
    )


class ImportedCustomer(_Out):
    """One customer an import batch created or matched, as ``recrm_customers_imported``
    receives it: light, so a plugin that needs only ids pays for nothing more."""

    customer_id: int = Field(description="the customer's id (the survivor's, for a merged one)")
    created: bool = Field(description="True when this batch created the customer")
    changed: list[str] = Field(
        default_factory=list,
        description="what the batch set or filled: profile field names, 'mobiles', "
        "'id_card', 'wechat_unionids', 'projects' (a new link or a filled owner/source); "
        "empty when a matched customer was left as it was",
    )
    rows: list[int] = Field(default_factory=list,
                            description="the file rows that resolved to this customer")


class ImportResult(_Out):
    """What a CSV import did, in counts."""

    rows: int = Field(default=0, description="rows read (blank lines not counted)")
    created: int = Field(default=0, description="customers created")
    merged: int = Field(default=0, description="rows merged into an existing customer")
    rejected: int = Field(default=0, description="rows rejected (see the errors file)")
    suspected_duplicates: int = Field(
        default=0, description="rows whose email matches another customer's"
    )


class RejectedRow(_Out):
    """A row an import did not take, and why. ``row`` counts data rows from 1 after the
    header (blank and title rows not counted); for a workbook ``sheet_row`` is the row
    number Excel shows."""

    row: int = Field(description="row number, from 1 after the header")
    field: str = Field(description="the field at fault")
    reason: str = Field(description="why it was rejected")
    sheet_row: int | None = Field(
        default=None, description="for a workbook, the row number Excel shows")


class Message(_Out):
    """One message to deliver through the transport hook."""

    channel: Channel = Field(description="email, sms, phone or wechat")
    to: str = Field(description="address: an email address, or a mobile in E.164")
    subject: str | None = Field(default=None, description="subject line (email)")
    body: str = Field(description="the text")
    html: str | None = Field(default=None,
                             description="an HTML alternative of the body (email), if any")
    customer_id: int | None = Field(default=None, description="the customer it is for, if any")
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra headers (e.g. List-Unsubscribe)"
    )


class DeliveryResult(_Out):
    """What a transport did with a message; returned by ``recrm_deliver_message``."""

    transport: str = Field(description="name of the transport that took the message")
    ok: bool = Field(
        default=True, description="whether it was delivered (or accepted for delivery)"
    )
    detail: str | None = Field(default=None, description="the transport's message id or error")


class DuplicatePair(_Out):
    """Customers sharing one email: suspected duplicates, never merged automatically."""

    email: str = Field(description="the shared email address")
    customer_ids: list[int] = Field(description="customers holding it")


# -- the directory and the audit log --------------------------------------------------------


class DepartmentIn(_Model):
    """A department to add to the directory."""

    code: Annotated[str, BeforeValidator(lambda v: values.required_code(v, "department code",
                                                                        64))] = Field(
        description="department code, e.g. XL-SALES (what staff and cases refer to)")
    name: Annotated[str, BeforeValidator(lambda v: values.required_text(v, "department name",
                                                                        200))] = Field(
        description="its name, e.g. 星珑湾销售部")
    email: Email = Field(default=None, description="a shared mailbox, for notifications")
    projects: list[str] = Field(
        default_factory=list,
        description="codes of the projects it is responsible for (a manager's scope)")


class Department(_Out):
    """A department of the directory."""

    code: str = Field(description="department code")
    name: str = Field(description="its name")
    email: str | None = Field(default=None, description="shared mailbox")
    projects: list[str] = Field(default_factory=list,
                                description="codes of the projects it is responsible for")


class StaffIn(_Model):
    """A member of staff to add to the directory."""

    id: Annotated[str, BeforeValidator(lambda v: values.required_code(v, "staff id", 64))] = \
        Field(description="staff id: what owners, case assignees and actors refer to")
    name: Annotated[str, BeforeValidator(lambda v: values.required_text(v, "staff name",
                                                                        100))] = Field(
        description="full name")
    role: Annotated[Role, BeforeValidator(parse_role)] = Field(
        description="admin, manager, sales, service, partner or analyst")
    department: Code = Field(default=None, description="department code, if any")
    manager: Code = Field(default=None, description="staff id of their manager, if any")
    email: Email = Field(default=None, description="work email, for notifications")
    mobile: Annotated[str | None, BeforeValidator(
        _wrap_identity(identity.normalise_mobile))] = Field(
        default=None, description="work mobile, for notifications (E.164)")


class Staff(_Out):
    """A member of staff as the directory holds them."""

    id: str = Field(description="staff id")
    name: str = Field(description="full name")
    role: Role = Field(description="their role")
    department: str | None = Field(default=None, description="department code")
    manager: str | None = Field(default=None, description="their manager's staff id")
    email: str | None = Field(default=None, description="work email")
    mobile: str | None = Field(default=None, description="work mobile (E.164)")
    active: bool = Field(default=True, description="False once they left")
    left_at: dt.datetime | None = Field(default=None, description="when they left (UTC)")


class ErasureStep(_Out):
    """What an erasure did to one table (``recrm_customer_erase`` returns these)."""

    table: str = Field(description="the table, e.g. interactions or membership_ledger")
    deleted: int = Field(default=0, description="rows deleted")
    anonymised: int = Field(default=0, description="rows kept with the person's values removed")
    retained: int = Field(default=0,
                          description="rows kept as they were, for the reason in `basis`")
    basis: str | None = Field(
        default=None,
        description="why rows were kept (a law or contract), e.g. 'signed contract: unit and "
        "amount kept for the accounts, without the person's identifiers'")


class AuditEntry(_Out):
    """One line of the append-only audit log."""

    id: int = Field(description="entry id (ascending in time)")
    at: dt.datetime = Field(description="when (UTC)")
    actor_staff: str | None = Field(default=None,
                                    description="staff id; None for the SDK's own calls")
    actor_role: str = Field(description="their role, or `sdk`")
    action: str = Field(description="disclose, export, erase, merge, reassign, consent, "
                        "import, bulk_send, prune, or a plugin's registered action")
    customer_id: int | None = Field(default=None, description="the customer concerned, if one")
    channel: str = Field(description="cli, api or sdk")
    reason: str | None = Field(default=None, description="the reason given, if any")
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="what was done, without personal data in clear (identity values as "
        "keyed hashes `h1:...`)")
