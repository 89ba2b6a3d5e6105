"""Reading a definition: JSON text checked before it is decoded, then the tree
validated and its values coerced per field type, each error naming its place."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ..identity import (
    clean,
    clean_code,
    normalise_email,
    normalise_id_card,
    normalise_mobile,
    normalise_wechat_unionid,
)
from ..values import (
    STAGE_RANK,
    check_storable,
    code_value,
    parse_budget,
    parse_date,
    parse_gender,
    parse_persona,
    parse_stage,
)
from .fields import OPS, SegmentField

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

# Deep enough for any hand-written or UI-built segment, shallow enough that a
# hostile definition cannot exhaust the Python stack, nor SQLite's parser stack.
MAX_DEPTH = 32
#: conditions and groups in one definition: beyond a hand-built segment (a long list
#: of values is one ``in``). PostgreSQL's planning time grows steeply with the
#: EXISTS it joins: 100 conditions take ~1 s to plan, 256 more than 20 s.
MAX_NODES = 100
#: values in one definition, over all its lists; a list longer than sql._INLINE_VALUES
#: travels as one array parameter, so no backend's bind-parameter limit applies
MAX_VALUES = 100_000
# Brackets per level of the definition ({"all": [ ... ]}), plus a condition's
# list of values: deeper JSON is refused before json.loads, which recurses.
_MAX_JSON_DEPTH = 2 * MAX_DEPTH + 3
#: the longest definition text read (a list of MAX_VALUES long values fits)
MAX_DEFINITION_BYTES = 16 * 1024 * 1024
# A JSON string (skipped whole, so brackets inside it do not count) or a bracket.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
#: core text fields holding codes, matched as codes are stored (clean_code)
_CODE_FIELDS = frozenset({"project", "owner_staff", "source", "source_system", "external_id"})
_MOBILE_SEPARATORS = re.compile(r"[\s\-.()]")


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
    return code_value(_text(raw))


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
