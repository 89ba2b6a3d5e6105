"""What every model is built from: the bases (validated input, returned output),
the value types, the validated field types the API, the CLI and the import share,
and the actor of a call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextvars import ContextVar
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from .. import identity, values
from ..roles import Channel as ActorChannel
from ..roles import Role, parse_role
from ..values import Persona

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
        str, BeforeValidator(lambda v: values.required_code(scalar(v), "staff id", 64))
    ] = Field(description="id of the staff member acting (recorded in history rows)")
    role: Annotated[Role, BeforeValidator(
        lambda v: parse_role(values.required_code(scalar(v), "role", 32)))] = Field(
        default="sales",
        description="admin, manager, sales, service, partner or analyst (what they may see: "
        "docs/access.md); the legacy names consultant and staff mean sales",
    )
    channel: ActorChannel = Field(
        default="sdk", description="how the call arrived: cli, api or sdk (recorded in the audit)"
    )


def _wrap_identity(fn: Any) -> Any:
    def check(v: Any) -> Any:
        text = identity.clean(v if type(v) is str else scalar(v))
        if not text:
            return None
        try:
            # cleaned text: the normaliser's own clean() then takes its short path
            return fn(text)
        except identity.IdentityError as exc:
            raise ValueError(exc.reason) from None

    return check


def _key_list(v: Any, normalise: Callable[..., str], *more: Any) -> list[str]:
    """Distinct normalised keys of a list field (mobiles, WeChat unionids); blanks skip.
    Each key is ``normalise(item, *more)``."""
    # A lone value (a JSON int, or a spreadsheet cell read as one) is one key, not an
    # iterable: list(13812345678) would escape pydantic as a TypeError.
    raw = v if type(v) is list else list(v) if isinstance(v, list | tuple | set) \
        else ([] if v is None else [v])
    out: list[str] = []
    for item in raw:
        if identity.clean(item if type(item) is str else scalar(item)) == "":
            continue
        try:
            key = normalise(item, *more)
        except identity.IdentityError as exc:
            raise ValueError(exc.reason) from None
        if key not in out:
            out.append(key)
    return out


def _mobile_list(v: Any, info: ValidationInfo) -> list[str]:
    """Normalise to distinct E.164 numbers; the default region comes from the
    validation context (``context={"region": "HK"}``), CN when not given."""
    context = info.context
    region = str((context.get("region") if context else None) or "CN")
    return _key_list(v, identity.normalise_mobile, region)


def _unionid_list(v: Any) -> list[str]:
    return _key_list(v, identity.normalise_wechat_unionid)


_FIELD_ALIASES = {
    "mobiles": "mobile", "add_mobiles": "mobile",
    "wechat_unionids": "wechat_unionid", "add_wechat_unionids": "wechat_unionid",
}


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


#: what a JSON body may hold where a text or code is expected, named for the reason
_NOT_TEXT = {bool: "true or false", list: "a list", tuple: "a list", dict: "an object",
             set: "a list"}


#: True while the API validates a request's JSON body (:data:`JSON_BODY`)
_IN_JSON_BODY: ContextVar[bool] = ContextVar("recrm_in_json_body", default=False)


def scalar(v: Any) -> Any:
    """``v`` unchanged unless it is a JSON list, object or boolean: the parsers read any
    value as its text, so ``{"name": ["a"]}`` became the name "['a']" and
    ``{"project": ["XL2"]}`` a project of that code. A number stays (a spreadsheet
    cell holding a staff id or an external id, from code) except in an API request's
    body (:data:`JSON_BODY`): there ``{"name": 5}`` is a client's mistake, and an
    ID card or mobile sent as a number has lost its digits in a JavaScript client."""
    if type(v) is str:  # a CSV cell: most calls (5 a row of an import), told at once
        return v
    for kind, shown in _NOT_TEXT.items():
        if isinstance(v, kind):
            raise ValueError(f"must be text, not {shown}")
    if isinstance(v, int | float) and _IN_JSON_BODY.get():
        raise ValueError("must be text, not a number")
    return v


def _json_body(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    token = _IN_JSON_BODY.set(True)
    try:
        return handler(value)
    finally:
        _IN_JSON_BODY.reset(token)


#: what an API route's body parameter is annotated with
#: (``record: Annotated[CustomerIn, JSON_BODY]``): its text fields, nested models' too,
#: take text only, where the same model from code (or a workbook) takes a number
JSON_BODY = WrapValidator(_json_body)


def _parsed(parse: Callable[..., Any], *more: Any, any_value: bool = False
            ) -> Callable[[Any], Any]:
    """The field validator ``parse(scalar(v), *more)`` (``parse(v)`` with ``any_value``:
    a parser that names a list or a boolean itself). Text (a CSV cell: most calls,
    nine a row of an import) needs no ``scalar`` and goes straight to the parser's
    kept results where it keeps them (:func:`values.kept_results`): one Python frame
    a cell where there were two to four."""
    text = values.kept_results(parse)
    if any_value:
        def check_any(v: Any) -> Any:
            return text(v, *more) if type(v) is str else parse(v, *more)

        return check_any

    def check(v: Any) -> Any:
        return text(v, *more) if type(v) is str else parse(scalar(v), *more)

    return check


# Reusable validated types: the API, the CLI and the import accept the same spellings.
Text = Annotated[str | None, BeforeValidator(_parsed(values.optional_text, 100))]
#: free text (summaries, descriptions): long, but storable
BodyText = Annotated[str | None,
                     BeforeValidator(_parsed(values.optional_text, 20_000))]
#: codes and identifiers (sources, staff ids, departments) in 64-character columns:
#: without invisible format characters, which would make look-alike keys
Code = Annotated[str | None, BeforeValidator(_parsed(values.optional_code, 64))]
#: a place name (a city): text, in a 64-character column
PlaceText = Annotated[str | None,
                      BeforeValidator(_parsed(values.optional_text, 64))]
#: an id in another system (128-character column), a code as well
ExternalId = Annotated[str | None,
                       BeforeValidator(_parsed(values.optional_code, 128))]
Mobiles = Annotated[list[str], BeforeValidator(_mobile_list)]
WechatUnionids = Annotated[list[str], BeforeValidator(_unionid_list)]
IdCardNumber = Annotated[str | None, BeforeValidator(_wrap_identity(identity.normalise_id_card))]
Email = Annotated[str | None, BeforeValidator(_wrap_identity(identity.normalise_email))]
GenderIn = Annotated[Gender | None, BeforeValidator(_parsed(values.parse_gender, any_value=True))]
def _birth_date(v: Any) -> dt.date | None:
    """Not in the future, and within the range of every entered day (a birth date of
    0001-01-01 or 1850 is a typing mistake, as a receipt's day of 1850 is)."""
    day = values.parse_date(v, not_after=identity.current_date())
    return None if day is None else values.check_day(day)


BirthDate = Annotated[dt.date | None, BeforeValidator(_birth_date)]
PersonaIn = Annotated[Persona | None,
                      BeforeValidator(_parsed(values.parse_persona, any_value=True))]
Budget = Annotated[int | None, BeforeValidator(_parsed(values.parse_budget, any_value=True))]
