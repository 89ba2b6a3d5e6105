"""Segments: JSON definitions compiled to SQLAlchemy expressions (never string-built SQL).

A definition is a tree of groups and conditions::

    {"all": [
        {"field": "persona", "op": "in", "value": ["investor", "luxury"]},
        {"any": [
            {"field": "budget", "op": "gte", "value": "300万"},
            {"field": "consent.email.marketing", "op": "eq", "value": true}
        ]},
        {"field": "project", "op": "eq", "value": "XL2"},
        {"field": "project_stage", "op": "eq", "value": "owner"}
    ]}

Rules, in the order people trip over them:

* ``{"all": [...]}`` matches when every member does (an empty ``all`` matches every
  customer), ``{"any": [...]}`` when one does (an empty ``any`` matches none),
  ``{"not": X}`` when ``X`` does not. A bare condition is a definition too.
* A condition is ``{"field": F, "op": OP, "value": V}``. ``in``/``not_in`` take a
  non-empty list, ``between`` a ``[low, high]`` pair (inclusive), ``is_null``
  ``true``/``false``, ``contains`` a case-sensitive piece of text (``%`` and ``_``
  are plain characters). Values are checked and converted per field type: dates
  from ISO strings, stages/personas/genders by name (刚需, 男 ... too), budgets
  like ``200万``, mobiles normalised to E.164, date-times without a zone read in
  the business time zone.
* A missing value (NULL) never satisfies ``eq``, ``in``, ``gt`` ... or ``contains``;
  ``ne`` and ``not_in`` are their exact negations, so they do match it.
* ``stage`` and ``project_stage`` compare in funnel order with ``gt``/``lt``/...:
  prospect < visitor < subscriber < buyer < owner.
* Project fields (``project``, ``project_stage``, ``owner_staff``, ``source``, ...)
  describe one customer-project relationship. The project conditions that sit
  together in one group (with groups made only of project conditions) are tested
  on the *same* relationship: ``all[project = XL2, project_stage = owner]`` is
  "owner at XL2", not "owner somewhere and linked to XL2". ``not`` always looks
  at the customer: ``{"not": {"field": "project", "op": "eq", "value": "XL2"}}``
  is "not linked to XL2".
* ``bool`` fields test ``IS TRUE``: a missing flag counts as false.
* Multi-valued fields (``mobile``, ``id_card``, ``wechat_unionid``, plugin fields with
  ``many=True``) match ``eq``/``in``/``contains``/... when *any* of the customer's
  values does; ``ne``/``not_in``/``is_null: true`` when none does.
* Merged-away customers never match.
* Limits, each refused as InvalidInput naming it: nesting deeper than
  :data:`MAX_DEPTH` (checked on JSON text before it is decoded, by
  :func:`parse_definition`), more than :data:`MAX_NODES` conditions and groups,
  more than :data:`MAX_VALUES` values in the lists; text with a NUL or a lone
  surrogate; whole numbers outside 64 bits. Long ``in`` lists are fine up to the
  limit on both backends (they travel as one array parameter).

Plugins add fields named ``<plugin>.<field>`` through the
:func:`~recrm_core.hooks.specs.recrm_segment_fields` hook.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    Dialect,
    Integer,
    Select,
    Text,
    TypeDecorator,
    and_,
    bindparam,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType, TypeEngine

from .access import check_segment
from .consent import CHANNELS, PURPOSES, consent_granted_clause
from .customers import load_customers
from .db import UTCDateTime
from .errors import ConfigError, InvalidInput
from .idcards import match_value
from .identity import (
    clean,
    clean_code,
    normalise_email,
    normalise_id_card,
    normalise_mobile,
    normalise_wechat_unionid,
)
from .models import Actor, Customer
from .projects import known_project_id
from .resolution import ID_CARD, MOBILE, WECHAT
from .tables import CustomerProjectRow, CustomerRow, IdentityRow, ProjectRow
from .values import (
    STAGE_RANK,
    STAGES,
    check_storable,
    parse_budget,
    parse_date,
    parse_gender,
    parse_persona,
    parse_stage,
)

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from .crm import CRM

__all__ = [
    "FIELD_TYPES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_VALUES",
    "OPS",
    "SegmentField",
    "SegmentService",
    "parse_definition",
]

OPS: tuple[str, ...] = (
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "contains", "is_null",
)


def _without(*excluded: str) -> tuple[str, ...]:
    return tuple(op for op in OPS if op not in excluded)


_ENUM_OPS = ("eq", "ne", "in", "not_in", "is_null")
#: the operators each field type accepts (a field may narrow them with ``ops``)
TYPE_OPS: dict[str, tuple[str, ...]] = {
    "str": OPS,
    "int": _without("contains"),
    "money": _without("contains"),
    "date": _without("contains"),
    "datetime": _without("contains"),
    "stage": _without("contains"),
    "bool": ("eq", "ne", "is_null"),
    "gender": _ENUM_OPS,
    "persona": _ENUM_OPS,
    "email": (*_ENUM_OPS, "contains"),
    "mobile": (*_ENUM_OPS, "contains"),
    "id_card": _ENUM_OPS,
    "wechat_unionid": _ENUM_OPS,
}
FIELD_TYPES: tuple[str, ...] = tuple(TYPE_OPS)
_ORDER_OPS = ("gt", "gte", "lt", "lte", "between")
# Deep enough for any hand-written or UI-built segment, shallow enough that a
# hostile definition cannot exhaust the Python stack, nor SQLite's parser stack.
MAX_DEPTH = 32
#: conditions and groups in one definition: beyond a hand-built segment (a long list
#: of values is one ``in``). PostgreSQL's planning time grows steeply with the
#: EXISTS it joins: 100 conditions take ~1 s to plan, 256 more than 20 s.
MAX_NODES = 100
#: values in one definition, over all its lists; a list longer than _INLINE_VALUES
#: travels as one array parameter, so no backend's bind-parameter limit applies
MAX_VALUES = 100_000
# Short lists stay inline (one parameter per value); so many of them that MAX_NODES
# lists of this length stay under SQLite's usual 32,766 parameters (PostgreSQL's
# driver stops at 65,535): 99 lists of 1000 values failed there.
_INLINE_VALUES = 300
# A group's members are combined in balanced sub-groups of this many, so that a
# wide `any` stays inside SQLite's expression-depth limit (1000).
_GROUP_FAN_OUT = 32
# Brackets per level of the definition ({"all": [ ... ]}), plus a condition's
# list of values: deeper JSON is refused before json.loads, which recurses.
_MAX_JSON_DEPTH = 2 * MAX_DEPTH + 3
#: the longest definition text read (a list of MAX_VALUES long values fits)
MAX_DEFINITION_BYTES = 16 * 1024 * 1024
# A JSON string (skipped whole, so brackets inside it do not count) or a bracket.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
#: core text fields holding codes, matched as codes are stored (clean_code)
_CODE_FIELDS = frozenset({"project", "owner_staff", "source", "source_system", "external_id"})
_PLUGIN_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_MOBILE_SEPARATORS = re.compile(r"[\s\-.()]")


@dataclass(frozen=True)
class SegmentField:
    """A field segment definitions may filter on.

    :param name: ``<plugin>.<field>`` for plugin fields.
    :param expression: receives the customers' id column and returns a SQLAlchemy
        expression, usually a correlated scalar subquery such as
        ``select(Score.points).where(Score.customer_id == cid).scalar_subquery()``
        (a plain ``Select`` is turned into one). With ``many=True`` it returns a
        one-column ``Select`` of the customer's values instead.
    :param type: one of :data:`FIELD_TYPES`; decides how values are checked and
        which operators apply.
    :param description: one line for documentation and ``--help``.
    :param many: the field has several values per customer (tags, mobiles): a
        condition matches when any value satisfies it; ``ne``, ``not_in`` and
        ``is_null: true`` match when none does.
    :param ops: narrow the operators the type allows (``None``: all of them).
    """

    name: str
    expression: Callable[[ColumnElement[int]], ColumnElement[Any] | Select[Any]]
    type: str = "str"
    description: str = ""
    many: bool = False
    ops: tuple[str, ...] | None = None

    @property
    def allowed_ops(self) -> tuple[str, ...]:
        return self.ops if self.ops is not None else TYPE_OPS.get(self.type, ())


@dataclass(frozen=True)
class _LinkField(SegmentField):
    """A column of one customer-project relationship (``customer_projects``
    joined to ``projects``); the compiler tests such conditions inside one EXISTS
    per group, so conditions sitting together describe the same relationship."""


# -- the core's fields ---------------------------------------------------------------------


def _column(column: ColumnElement[Any]) -> Callable[[ColumnElement[int]], ColumnElement[Any]]:
    # Core columns live on the customers row itself, so the id is not needed.
    return lambda _cid: column


def _identities(kind: str) -> Callable[[ColumnElement[int]], Select[Any]]:
    def values(cid: ColumnElement[int]) -> Select[Any]:
        return select(IdentityRow.value).where(
            IdentityRow.customer_id == cid, IdentityRow.kind == kind
        )

    return values


def _consent(channel: str, purpose: str) -> Callable[[ColumnElement[int]], ColumnElement[Any]]:
    return lambda cid: consent_granted_clause(cid, channel, purpose)


def _consent_fields(purposes: Sequence[str]) -> list[SegmentField]:
    """``consent.<channel>.<purpose>`` for every channel and each of ``purposes``."""
    return [SegmentField(f"consent.{channel}.{purpose}", _consent(channel, purpose), "bool",
                         f"the newest {channel} consent for {purpose} grants it",
                         ops=("eq", "ne"))
            for channel in CHANNELS for purpose in purposes]


CORE_FIELDS: tuple[SegmentField, ...] = (
    SegmentField("id", _column(CustomerRow.id.expression), "int", "customer id"),
    SegmentField("name", _column(CustomerRow.name.expression), "str", "name"),
    SegmentField("gender", _column(CustomerRow.gender.expression), "gender",
                 "male/female (男/女 accepted)"),
    SegmentField("birth_date", _column(CustomerRow.birth_date.expression), "date",
                 "date of birth"),
    SegmentField("persona", _column(CustomerRow.persona.expression), "persona",
                 "first_time, upgrader, investor, luxury, retiree (刚需/改善/投资/高端/养老)"),
    SegmentField("budget", _column(CustomerRow.budget.expression), "money",
                 "budget in CNY (200万 accepted)"),
    SegmentField("email", _column(CustomerRow.email.expression), "email",
                 "email address (lower-case)"),
    SegmentField("stage", _column(CustomerRow.stage.expression), "stage",
                 "furthest stage over all projects; ordered prospect < ... < owner"),
    SegmentField("source_system", _column(CustomerRow.source_system.expression), "str",
                 "system of the external reference"),
    SegmentField("external_id", _column(CustomerRow.external_id.expression), "str",
                 "id in the external system"),
    SegmentField("created_at", _column(CustomerRow.created_at.expression), "datetime",
                 "when the customer was created"),
    SegmentField("updated_at", _column(CustomerRow.updated_at.expression), "datetime",
                 "when the profile last changed"),
    SegmentField("mobile", _identities(MOBILE), "mobile",
                 "any of the customer's mobiles (normalised to E.164)", many=True),
    SegmentField("id_card", _identities(ID_CARD), "id_card", "ID-card number", many=True),
    SegmentField("wechat_unionid", _identities(WECHAT), "wechat_unionid",
                 "any of the customer's WeChat unionids (is_null false: known on WeChat)",
                 many=True),
    _LinkField("project", _column(ProjectRow.code.expression), "str", "project code"),
    _LinkField("project_name", _column(ProjectRow.name.expression), "str", "project name"),
    _LinkField("project_stage", _column(CustomerProjectRow.stage.expression), "stage",
               "stage at the project; ordered prospect < ... < owner"),
    _LinkField("owner_staff", _column(CustomerProjectRow.owner_staff.expression), "str",
               "consultant owning the customer at the project"),
    _LinkField("source", _column(CustomerProjectRow.source.expression), "str",
               "where the lead for the project came from"),
    _LinkField("first_seen_at", _column(CustomerProjectRow.first_seen_at.expression),
               "datetime", "first contact with the project"),
    _LinkField("project_stage_changed_at",
               _column(CustomerProjectRow.stage_changed_at.expression), "datetime",
               "when the stage at the project last changed"),
    *_consent_fields(PURPOSES),
)
_CORE_NAMES = frozenset(f.name for f in CORE_FIELDS)


# -- case-sensitive literal substring --------------------------------------------------------


class _position(FunctionElement[int]):
    """1-based position of a substring, 0 when absent. Unlike LIKE it has no
    wildcards to escape and is case-sensitive on SQLite as on PostgreSQL."""

    type = Integer()
    inherit_cache = True
    name = "position"


@compiles(_position)
def _position_default(element: _position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


@compiles(_position, "sqlite")
def _position_sqlite(element: _position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


# -- parsing: validate and coerce the definition ----------------------------------------------


@dataclass(frozen=True)
class _Context:
    region: str
    zone: ZoneInfo
    #: an ID number -> what identities store for it (its keyed hash): segments
    #: compare hashes, never the numbers, which are stored only encrypted
    id_card_key: Callable[[str], str]


@dataclass(frozen=True)
class _Cond:
    field: SegmentField
    op: str
    value: Any


@dataclass(frozen=True)
class _Group:
    kind: str  # "all" | "any"
    members: tuple[_Node, ...]


@dataclass(frozen=True)
class _Not:
    member: _Node


_Node = _Cond | _Group | _Not


def _describe(raw: object) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str | int | float):
        return repr(raw)
    if isinstance(raw, list):
        return "a list" if raw else "an empty list"
    if isinstance(raw, dict):
        return "an object"
    return type(raw).__name__


def _text(raw: object) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError(f"expected text, got {_describe(raw)}")
    text = clean(raw)
    # A NUL or a lone surrogate can be compared with nothing the database holds,
    # and PostgreSQL refuses the parameter outright.
    check_storable(text)
    return text


def _code(raw: object) -> str:
    code = clean_code(_text(raw))
    if not code:
        raise ValueError("has only invisible characters")
    return code


def _coerce_int(raw: object) -> int:
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and re.fullmatch(r"[+-]?\d{1,30}", clean(raw)):
        value = int(clean(raw))
    if value is None:
        raise ValueError(f"expected a whole number, got {_describe(raw)}")
    if not -(2**63) <= value < 2**63:
        # No column holds it, and the drivers cannot send it.
        raise ValueError(f"{value} is outside the 64-bit range")
    return value


def _coerce_money(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"expected an amount in CNY like 2000000 or '200万', got {_describe(raw)}")
    amount = parse_budget(raw)
    assert amount is not None  # empty values were refused before
    return amount


def _coerce_date(raw: object) -> dt.date:
    if not isinstance(raw, str):
        raise ValueError(f"expected a date like '2024-01-02', got {_describe(raw)}")
    value = parse_date(raw)
    assert value is not None
    return value


def _coerce_datetime(raw: object, zone: ZoneInfo) -> dt.datetime:
    if not isinstance(raw, str):
        raise ValueError(f"expected an ISO date or date-time, got {_describe(raw)}")
    text = clean(raw)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            day = parse_date(text)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a date or date-time like '2024-01-02' or "
                "'2024-01-02T08:30:00+08:00'"
            ) from None
        assert day is not None
        value = dt.datetime.combine(day, dt.time())
    if value.tzinfo is None:
        # People write local business times; a bare date means its local midnight.
        value = value.replace(tzinfo=zone)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        raise ValueError(f"{text!r} is outside the dates a database keeps") from None


def _coerce_bool(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"expected true or false, got {_describe(raw)}")
    return raw


def _coerce_mobile(raw: object, op: str, region: str) -> str:
    if op != "contains":
        return normalise_mobile(_text(raw), region)
    fragment = _MOBILE_SEPARATORS.sub("", clean_code(_text(raw)))
    if not re.fullmatch(r"\+?\d+", fragment):
        raise ValueError(f"a mobile fragment has digits only, got {_describe(raw)}")
    return fragment


def _coerce(field: SegmentField, op: str, raw: object, ctx: _Context) -> Any:
    """One scalar value for ``field``; ValueError says why it does not fit."""
    if raw is None:
        raise ValueError("null is not a value to compare with; use op 'is_null'")
    if isinstance(raw, str) and not clean(raw):
        raise ValueError("empty text; use op 'is_null' to find missing values")
    kind = field.type
    if kind == "str":
        return _code(raw) if field.name in _CODE_FIELDS else _text(raw)
    if kind == "int":
        return _coerce_int(raw)
    if kind == "money":
        return _coerce_money(raw)
    if kind == "date":
        return _coerce_date(raw)
    if kind == "datetime":
        return _coerce_datetime(raw, ctx.zone)
    if kind == "bool":
        return _coerce_bool(raw)
    if kind == "stage":
        return parse_stage(_text(raw))
    if kind == "gender":
        return parse_gender(_text(raw))
    if kind == "persona":
        return parse_persona(_text(raw))
    if kind == "email":
        return _text(raw).lower() if op == "contains" else normalise_email(_text(raw))
    if kind == "mobile":
        return _coerce_mobile(raw, op, ctx.region)
    if kind == "id_card":
        return ctx.id_card_key(normalise_id_card(_text(raw)))
    if kind == "wechat_unionid":
        return normalise_wechat_unionid(_text(raw))
    raise AssertionError(f"unchecked field type {kind!r}")  # registration checks types


def _rank(field: SegmentField, value: Any) -> Any:
    return STAGE_RANK[value] if field.type == "stage" else value


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


class _Parser:
    def __init__(self, fields: Mapping[str, SegmentField], ctx: _Context) -> None:
        self.fields = fields
        self.ctx = ctx
        self.nodes = 0
        self.values = 0

    def node(self, raw: object, path: str, depth: int = 0) -> _Node:
        where = path or "segment"
        if depth > MAX_DEPTH:
            raise InvalidInput(where, f"nested deeper than {MAX_DEPTH} levels")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InvalidInput(
                where, f"more than {MAX_NODES} conditions and groups (use 'in' for a list "
                "of values)",
            )
        if not isinstance(raw, dict):
            raise InvalidInput(
                where,
                f"expected a condition {{\"field\", \"op\", \"value\"}} or a group "
                f"{{\"all\": [...]}}, {{\"any\": [...]}}, {{\"not\": ...}}; got {_describe(raw)}",
            )
        groups = [k for k in ("all", "any", "not") if k in raw]
        if groups:
            if len(raw) != 1:
                others = ", ".join(repr(k) for k in raw if k != groups[0])
                raise InvalidInput(
                    where, f"group {groups[0]!r} cannot have other keys (found {others})"
                )
            kind = groups[0]
            if kind == "not":
                return _Not(self.node(raw["not"], _join(path, "not"), depth + 1))
            members = raw[kind]
            if not isinstance(members, list):
                raise InvalidInput(
                    _join(path, kind), f"expected a list of conditions, got {_describe(members)}"
                )
            return _Group(
                kind,
                tuple(
                    self.node(m, f"{_join(path, kind)}[{i}]", depth + 1)
                    for i, m in enumerate(members)
                ),
            )
        return self.condition(raw, path)

    def condition(self, raw: dict[str, Any], path: str) -> _Cond:
        unknown = [k for k in raw if k not in ("field", "op", "value")]
        if unknown:
            raise InvalidInput(
                path or "segment",
                f"unknown key {unknown[0]!r} (a condition has field, op, value; "
                "groups are all, any, not)",
            )
        for key in ("field", "op", "value"):
            if key not in raw:
                raise InvalidInput(_join(path, key), "missing")
        name, op = raw["field"], raw["op"]
        if not isinstance(name, str):
            raise InvalidInput(_join(path, "field"), f"expected a name, got {_describe(name)}")
        field = self.fields.get(name)
        if field is None:
            close = difflib.get_close_matches(name, list(self.fields), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InvalidInput(
                _join(path, "field"),
                f"unknown field {name!r} ({hint}known: {', '.join(self.fields)})",
            )
        if not isinstance(op, str) or op not in OPS:
            raise InvalidInput(
                _join(path, "op"), f"unknown op {_describe(op)} (known: {', '.join(OPS)})"
            )
        if op not in field.allowed_ops:
            raise InvalidInput(
                _join(path, "op"),
                f"op {op!r} does not apply to field {name!r} of type {field.type} "
                f"(allowed: {', '.join(field.allowed_ops)})",
            )
        return _Cond(field, op, self.value(field, op, raw["value"], _join(path, "value")))

    def value(self, field: SegmentField, op: str, raw: object, path: str) -> Any:
        if op == "is_null":
            if not isinstance(raw, bool):
                raise InvalidInput(path, f"is_null takes true or false, got {_describe(raw)}")
            return raw
        if op in ("in", "not_in"):
            if not isinstance(raw, list) or not raw:
                raise InvalidInput(path, f"{op} takes a non-empty list, got {_describe(raw)}")
            self.values += len(raw)
            if self.values > MAX_VALUES:
                raise InvalidInput(path, f"more than {MAX_VALUES} values in the definition's "
                                   "lists")
            values = [self.scalar(field, op, v, f"{path}[{i}]") for i, v in enumerate(raw)]
            return list(dict.fromkeys(values))
        if op == "between":
            if not isinstance(raw, list) or len(raw) != 2:
                raise InvalidInput(path, f"between takes [low, high], got {_describe(raw)}")
            low = self.scalar(field, op, raw[0], f"{path}[0]")
            high = self.scalar(field, op, raw[1], f"{path}[1]")
            if _rank(field, low) > _rank(field, high):
                raise InvalidInput(path, f"low {raw[0]!r} is above high {raw[1]!r}")
            return (low, high)
        if isinstance(raw, list | dict):
            raise InvalidInput(path, f"{op} takes a single value, got {_describe(raw)}")
        return self.scalar(field, op, raw, path)

    def scalar(self, field: SegmentField, op: str, raw: object, path: str) -> Any:
        try:
            return _coerce(field, op, raw, self.ctx)
        except ValueError as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            raise InvalidInput(path, f"{reason} (field {field.name!r})") from None


# -- SQL generation ------------------------------------------------------------------------------


def _is_link(node: _Node) -> bool:
    """Whether ``node`` describes one customer-project relationship."""
    if isinstance(node, _Cond):
        return isinstance(node.field, _LinkField)
    if isinstance(node, _Group):
        return bool(node.members) and all(_is_link(m) for m in node.members)
    return False


def _combine(kind: str, parts: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    if not parts:
        return true() if kind == "all" else false()
    if len(parts) == 1:
        return parts[0]
    if len(parts) > _GROUP_FAN_OUT:
        # SQLite parses a flat "a OR b OR ..." into a chain as deep as it is long;
        # parenthesised sub-groups keep the tree about log(n) deep.
        size = -(-len(parts) // _GROUP_FAN_OUT)
        parts = [_parenthesised(_combine(kind, parts[i : i + size]))
                 for i in range(0, len(parts), size)]
    return and_(*parts) if kind == "all" else or_(*parts)


class _parenthesised(FunctionElement[bool]):
    """Its one clause in parentheses that SQLAlchemy keeps: it drops a Grouping of
    an OR inside an OR, since the result means the same."""

    type = Boolean()
    inherit_cache = True
    name = "parenthesised"


@compiles(_parenthesised)
def _parenthesised_sql(element: _parenthesised, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)})"


class _ValueList(TypeDecorator[list[Any]]):
    """A list of values as one bound parameter: an array on PostgreSQL, a JSON array
    on SQLite (read back with ``json_each``), each item converted as ``item_type``
    converts a single value. One parameter whatever the length, where an IN list
    takes one per value and the drivers stop at 32,766 (SQLite) or 65,535."""

    impl = Text
    cache_ok = True

    def __init__(self, item_type: TypeEngine[Any]) -> None:
        super().__init__()
        self.item_type = item_type

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(self.item_type))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: list[Any] | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        process = self.item_type._cached_bind_processor(dialect)
        return json.dumps([process(v) for v in value] if process else value,
                          ensure_ascii=False)


class _in_values(FunctionElement[bool]):
    """``x IN values`` with the values in one :class:`_ValueList` parameter."""

    type = Boolean()
    inherit_cache = True
    name = "in_values"


@compiles(_in_values)
def _in_values_default(element: _in_values, compiler: SQLCompiler, **kw: Any) -> str:
    x, values = (compiler.process(c, **kw) for c in element.clauses)
    return f"({x} = ANY({values}))"


@compiles(_in_values, "sqlite")
def _in_values_sqlite(element: _in_values, compiler: SQLCompiler, **kw: Any) -> str:
    x, values = (compiler.process(c, **kw) for c in element.clauses)
    return f"({x} IN (SELECT value FROM json_each({values})))"


def _in(x: ColumnElement[Any], values: list[Any]) -> ColumnElement[bool]:
    if len(values) <= _INLINE_VALUES:
        return x.in_(values)
    item_type = x.type if not isinstance(x.type, NullType) else _item_type(values[0])
    return _in_values(x, bindparam(None, values, type_=_ValueList(item_type)))


def _item_type(value: Any) -> TypeEngine[Any]:
    # A plugin expression of unknown type: the coerced values say what they are.
    if isinstance(value, dt.datetime):
        return UTCDateTime()
    if isinstance(value, dt.date):
        return Date()
    if isinstance(value, int):
        return BigInteger()
    return Text()


def _predicate(field: SegmentField, x: ColumnElement[Any], op: str, value: Any
               ) -> ColumnElement[bool]:
    """``op`` applied to one value ``x`` (NULL satisfies only ne, not_in, is_null true)."""
    if op == "is_null":
        return x.is_(None) if value else x.is_not(None)
    if field.type == "bool":
        wanted = value if op == "eq" else not value
        # IS TRUE, not = TRUE: a missing flag counts as false, never as unknown.
        return x.is_(true()) if wanted else x.is_not(true())
    if field.type == "stage" and op in _ORDER_OPS:
        # Funnel order, as an IN list over the stage names, so the index still helps.
        first, last = 0, len(STAGES) - 1
        low, high = (value[0], value[1]) if op == "between" else (value, value)
        bounds = {
            "gt": (STAGE_RANK[low] + 1, last),
            "gte": (STAGE_RANK[low], last),
            "lt": (first, STAGE_RANK[low] - 1),
            "lte": (first, STAGE_RANK[low]),
            "between": (STAGE_RANK[low], STAGE_RANK[high]),
        }[op]
        return x.in_([s for s in STAGES if bounds[0] <= STAGE_RANK[s] <= bounds[1]])
    result: ColumnElement[bool]
    if op == "eq":
        result = x == value
    elif op == "ne":
        result = x.is_distinct_from(value)
    elif op == "in":
        result = _in(x, value)
    elif op == "not_in":
        result = or_(x.is_(None), not_(_in(x, value)))
    elif op == "gt":
        result = x > value
    elif op == "gte":
        result = x >= value
    elif op == "lt":
        result = x < value
    elif op == "lte":
        result = x <= value
    elif op == "between":
        result = x.between(value[0], value[1])
    elif op == "contains":
        result = _position(x, value) > 0
    else:
        raise AssertionError(f"unhandled op {op!r}")
    return result


def _scalar(expression: ColumnElement[Any] | Select[Any]) -> ColumnElement[Any]:
    # Forgiving a forgotten .scalar_subquery() in a plugin's expression.
    return expression.scalar_subquery() if isinstance(expression, Select) else expression


def _many(field: SegmentField, cid: ColumnElement[int], op: str, value: Any
          ) -> ColumnElement[bool]:
    values = field.expression(cid)
    if not isinstance(values, Select):
        raise ConfigError(f"segment field {field.name!r} has many=True but its "
                          "expression did not return a Select")
    column = values.selected_columns[0]
    if op == "is_null":
        some = values.where(column.is_not(None)).exists()
        return not_(some) if value else some
    if op in ("ne", "not_in"):
        positive = "eq" if op == "ne" else "in"
        return not_(values.where(_predicate(field, column, positive, value)).exists())
    return values.where(_predicate(field, column, op, value)).exists()


def _link_sql(node: _Node, cid: ColumnElement[int]) -> ColumnElement[bool]:
    """A link-only node, evaluated on the relationship row of the enclosing EXISTS."""
    if isinstance(node, _Cond):
        return _predicate(node.field, _scalar(node.field.expression(cid)), node.op, node.value)
    assert isinstance(node, _Group)
    return _combine(node.kind, [_link_sql(m, cid) for m in node.members])


def _link_exists(condition: ColumnElement[bool], cid: ColumnElement[int],
                 correlated: bool = False) -> ColumnElement[bool]:
    """Some relationship of the customer satisfies ``condition``.

    As ``id IN (the customers of the matching relationships)`` by default: link
    conditions never mention the customer, so the subquery runs once (a hash or an
    index of ids) where a correlated EXISTS runs once per customer (5x slower on a
    million customers for a segment on project fields alone). ``correlated`` for an
    ``all`` group whose customer conditions narrow the candidates first: then one
    index probe per remaining customer beats collecting every matching relationship
    (2x on SQLite, measured in bench/segment_bench.py). ``correlate(None)``: the IN
    subquery stays whole inside a query that joins ``customer_projects`` itself.
    """
    if correlated:
        return exists().where(
            CustomerProjectRow.customer_id == cid,
            ProjectRow.id == CustomerProjectRow.project_id,
            condition,
        )
    return cid.in_(
        select(CustomerProjectRow.customer_id)
        .join(ProjectRow, ProjectRow.id == CustomerProjectRow.project_id)
        .where(condition)
        .correlate(None)
    )


def _customer_sql(node: _Node, cid: ColumnElement[int]) -> ColumnElement[bool]:
    if _is_link(node):
        return _link_exists(_link_sql(node, cid), cid)
    if isinstance(node, _Not):
        # Leaves may be NULL (unknown) and NOT NULL is NULL; IS NOT TRUE is the exact
        # two-valued complement (and nests less deeply in SQLite's parser than
        # NOT coalesce(...)).
        return _customer_sql(node.member, cid).is_not(true())
    if isinstance(node, _Group):
        links = [m for m in node.members if _is_link(m)]
        parts = [_customer_sql(m, cid) for m in node.members if not _is_link(m)]
        if links:
            # Siblings in one group describe the same relationship: one EXISTS.
            inner = _combine(node.kind, [_link_sql(m, cid) for m in links])
            parts.append(_link_exists(inner, cid, correlated=node.kind == "all" and bool(parts)))
        return _combine(node.kind, parts)
    if node.field.many:
        return _many(node.field, cid, node.op, node.value)
    return _predicate(node.field, _scalar(node.field.expression(cid)), node.op, node.value)


# -- reading a definition from JSON text -------------------------------------------------------


def parse_definition(text: str) -> dict[str, Any]:
    """The definition held by JSON ``text`` (a command-line argument, a file, a saved
    segment), checked for the depth limit *before* decoding: ``json.loads`` recurses
    once per bracket, so a definition nested a thousand levels deep would exhaust the
    stack before the parser could refuse it. InvalidInput says what is wrong."""
    if len(text) > MAX_DEFINITION_BYTES:
        raise InvalidInput("segment", f"longer than {MAX_DEFINITION_BYTES // 2**20} MiB")
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        bracket = token.group()
        if bracket in ("{", "["):
            depth += 1
            if depth > _MAX_JSON_DEPTH:
                raise InvalidInput("segment", f"nested deeper than {MAX_DEPTH} levels")
        elif bracket in ("}", "]"):
            depth -= 1
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput("segment", f"not valid JSON: {exc.msg} at line {exc.lineno}") \
            from None
    except ValueError:  # a number of more than 4,300 digits
        raise InvalidInput("segment", "not valid JSON: a number is too long") from None
    if not isinstance(data, dict):
        raise InvalidInput("segment", "a segment definition is a JSON object")
    return data


# -- the service --------------------------------------------------------------------------------


def _check_plugin_field(
    plugin: str, item: object, owners: Mapping[str, str | None]
) -> SegmentField:
    """What ``plugin`` registered, checked; ``owners`` maps the fields known so far to
    the plugin that registered each (``None``: the core)."""
    if not isinstance(item, SegmentField):
        raise ConfigError(
            f"plugin {plugin!r}: recrm_segment_fields: register() takes a SegmentField, "
            f"got {type(item).__name__}"
        )
    name = item.name
    if not isinstance(name, str) or not _PLUGIN_FIELD_NAME.fullmatch(name):
        raise ConfigError(
            f"segment field {name!r}: a plugin field is named '<plugin>.<field>' "
            "(letters, digits, underscores)"
        )
    if name.split(".", 1)[0] == "consent":
        raise ConfigError(f"segment field {name!r}: the 'consent.' prefix is the core's")
    if name in owners:
        first = owners[name]
        by = "the core" if first is None else f"plugin {first!r}"
        raise ConfigError(
            f"segment field {name!r} is registered twice: by {by} and by plugin {plugin!r}"
        )
    if not name.startswith(f"{plugin}."):
        raise ConfigError(
            f"segment field {name!r} of plugin {plugin!r}: its name must start with "
            f"'{plugin}.', the plugin's name"
        )
    if item.type not in TYPE_OPS:
        raise ConfigError(
            f"segment field {name!r}: unknown type {item.type!r} (known: {', '.join(TYPE_OPS)})"
        )
    if item.ops is not None:
        bad = [op for op in item.ops if op not in TYPE_OPS[item.type]]
        if bad or not item.ops:
            raise ConfigError(
                f"segment field {name!r}: ops {bad or '()'} do not apply to type {item.type} "
                f"(allowed: {', '.join(TYPE_OPS[item.type])})"
            )
    if not callable(item.expression):
        raise ConfigError(f"segment field {name!r}: expression is not callable")
    if isinstance(item, _LinkField):
        raise ConfigError(f"segment field {name!r}: project-relationship fields are the core's")
    return item


class SegmentService:
    """Compile segment definitions and count or stream the customers they match.

    ``crm.segments.count({"field": "persona", "op": "eq", "value": "investor"})``
    """

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self._fields: dict[str, SegmentField] | None = None
        self._fields_key: tuple[str, ...] = ()

    # -- fields ---------------------------------------------------------------------------
    def _registry(self) -> dict[str, SegmentField]:
        # Collected on first use and again whenever the set of plugins changes,
        # so a plugin registered after the CRM was built still contributes.
        key = tuple(sorted(name for name, _ in self.crm.pm.list_name_plugin()))
        if self._fields is None or key != self._fields_key:
            fields = {f.name: f for f in CORE_FIELDS}
            # consent.<channel>.<purpose> for the purposes plugins register too
            added = [p for p in self.crm.consent.purposes() if p not in PURPOSES]
            fields.update((f.name, f) for f in _consent_fields(added))
            owners: dict[str, str | None] = dict.fromkeys(fields)
            registered: list[tuple[str, object]] = []
            # Checked after the hook, so a bad field is a ConfigError, not the plugin's failure.
            self.crm.hooks.segment_fields(lambda plugin, item: registered.append((plugin, item)))
            for plugin, item in registered:
                field = _check_plugin_field(plugin, item, owners)
                fields[field.name], owners[field.name] = field, plugin
            self._fields, self._fields_key = fields, key
        return self._fields

    def fields(self) -> list[SegmentField]:
        """Every field definitions may use: the core's, then the plugins'."""
        return list(self._registry().values())

    # -- compiling ------------------------------------------------------------------------
    def compile(self, definition: Mapping[str, Any]) -> ColumnElement[bool]:
        """A boolean expression over the customers table (``CustomerRow``) matching
        ``definition``; merged-away customers never match. Raises InvalidInput naming
        the place in the definition that is wrong."""
        return _sql(self._parse(definition))

    def _parse(self, definition: Mapping[str, Any]) -> _Node:
        ctx = _Context(self.crm.config.default_region, self.crm.config.zone,
                       lambda number: match_value(self.crm.keys, number))
        return _Parser(self._registry(), ctx).node(
            dict(definition) if isinstance(definition, Mapping) else definition, ""
        )

    def _checked(
        self, definition: Mapping[str, Any], session: Session | None = None
    ) -> ColumnElement[bool]:
        """``compile``, and every project the definition names by code must exist
        (UnknownProject): a mistyped code would otherwise just match nobody."""
        node = self._parse(definition)
        codes = _named_projects(node)
        if session is not None:
            for code in codes:
                known_project_id(session, code)
        elif codes:
            with self.crm.unit_of_work(readonly=True) as uow:
                for code in codes:
                    known_project_id(uow.session, code)
        return _sql(node)

    def count(self, definition: Mapping[str, Any], actor: Actor | None = None) -> int:
        """How many customers match; an unknown project code is UnknownProject. A
        partner may not select by what they never see (``access.check_segment``)."""
        check_segment(actor, definition)
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            condition = self._checked(definition, uow.session)
            query = select(func.count()).select_from(CustomerRow).where(condition)
            return uow.session.scalar(query) or 0

    # -- streaming ------------------------------------------------------------------------
    def iter_ids(self, definition: Mapping[str, Any], batch_size: int = 1000) -> Iterator[int]:
        """Matching customer ids in id order, fetched ``batch_size`` at a time
        (keyset pagination: memory stays flat and no transaction stays open
        between batches). The definition is checked (projects too) before the first
        id."""
        condition = self._checked(definition)
        _check_batch_size(batch_size)
        return self._ids(condition, batch_size)

    def iter_customers(
        self, definition: Mapping[str, Any] | None, batch_size: int = 500,
        actor: Actor | None = None,
    ) -> Iterator[Customer]:
        """Matching customers (every active one for ``None``) as API models, in id
        order, ``batch_size`` at a time, as ``actor`` may see them (``crm.access``)."""
        condition = self._condition_for(definition, actor)
        _check_batch_size(batch_size)
        return self._customers(condition, batch_size, actor)

    def page(
        self, definition: Mapping[str, Any] | None, limit: int, after: int | None = None,
        actor: Actor | None = None,
    ) -> tuple[list[Customer], bool]:
        """Up to ``limit`` matching customers with ids above ``after``, in id order, and
        whether more follow: keyset pagination, so a page never shifts when customers
        are added meanwhile (they get higher ids) and no OFFSET is scanned."""
        condition = self._condition_for(definition, actor)
        _check_batch_size(limit)
        first = next(self._batches(condition, limit + 1, load=True, actor=actor,
                                   after=after), [])
        customers = cast(list[Customer], first)
        return customers[:limit], len(customers) > limit

    def _condition_for(self, definition: Mapping[str, Any] | None,
                       actor: Actor | None) -> ColumnElement[bool]:
        """The checked condition of ``definition`` (every active customer for None)."""
        check_segment(actor, definition)
        if definition is None:
            return and_(CustomerRow.merged_into.is_(None), CustomerRow.erased_at.is_(None))
        return self._checked(definition)

    def _batches(
        self, condition: ColumnElement[bool], size: int, load: bool = False,
        actor: Actor | None = None, after: int | None = None,
    ) -> Iterator[list[int] | list[Customer]]:
        last: int | None = after
        while True:
            query = select(CustomerRow.id).where(condition).order_by(CustomerRow.id).limit(size)
            if last is not None:
                query = query.where(CustomerRow.id > last)
            # One short transaction per batch, closed before the caller sees it,
            # so slow consumers hold no locks or snapshots between batches.
            with self.crm.unit_of_work(readonly=True) as uow:
                ids = list(uow.session.scalars(query))
                customers = load_customers(uow.session, ids) if load and ids else {}
                shown = self.crm.access.present(actor, [customers[cid] for cid in ids],
                                                uow.session) if load else []
            if ids:
                yield shown if load else ids
            if len(ids) < size:
                return
            last = ids[-1]

    def _ids(self, condition: ColumnElement[bool], size: int) -> Iterator[int]:
        for batch in self._batches(condition, size):
            yield from batch  # type: ignore[misc]

    def _customers(self, condition: ColumnElement[bool], size: int,
                   actor: Actor | None) -> Iterator[Customer]:
        for batch in self._batches(condition, size, load=True, actor=actor):
            yield from batch  # type: ignore[misc]


def _sql(node: _Node) -> ColumnElement[bool]:
    cid = CustomerRow.id.expression
    return and_(CustomerRow.merged_into.is_(None), CustomerRow.erased_at.is_(None),
                _customer_sql(node, cid))


def _named_projects(node: _Node) -> list[str]:
    """The project codes a definition names exactly (``eq``/``ne``/``in``/``not_in``
    on ``project``), in order, each once."""
    if isinstance(node, _Not):
        return _named_projects(node.member)
    if isinstance(node, _Group):
        return list(dict.fromkeys(c for m in node.members for c in _named_projects(m)))
    if node.field.name != "project" or node.op not in ("eq", "ne", "in", "not_in"):
        return []
    return list(node.value) if isinstance(node.value, list) else [node.value]


def _check_batch_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidInput("batch_size", f"must be a positive whole number, got {size!r}")
