"""Compiling a parsed definition to one SQLAlchemy boolean expression over the
customers table (never string-built SQL)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Literal

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
    false,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType, TypeEngine

from ..db import UTCDateTime
from ..errors import ConfigError
from ..tables import CustomerProjectRow, CustomerRow, ProjectRow
from ..values import STAGE_RANK, STAGES
from .fields import SegmentField, _LinkField
from .parsing import _Cond, _Group, _Node, _Not

_ORDER_OPS = ("gt", "gte", "lt", "lte", "between")
# Short lists stay inline (one parameter per value); so many of them that MAX_NODES
# lists of this length stay under SQLite's usual 32,766 parameters (PostgreSQL's
# driver stops at 65,535): 99 lists of 1000 values failed there.
_INLINE_VALUES = 300
# A group's members are combined in balanced sub-groups of this many, so that a
# wide `any` stays inside SQLite's expression-depth limit (1000).
_GROUP_FAN_OUT = 32


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


def _mentions_links(node: _Node) -> bool:
    """Whether a link condition appears anywhere in ``node``."""
    if isinstance(node, _Cond):
        return isinstance(node.field, _LinkField)
    if isinstance(node, _Not):
        return _mentions_links(node.member)
    return any(_mentions_links(m) for m in node.members)


def _on_projects(node: _Node) -> bool:
    """Whether a link-only node reads the projects table alone (code, name)."""
    if isinstance(node, _Cond):
        column = node.field.expression(CustomerRow.id.expression)
        return getattr(column, "table", None) is ProjectRow.__table__
    return isinstance(node, _Group) and all(_on_projects(m) for m in node.members)


def _link_columns(node: _Node, cid: ColumnElement[int]) -> ColumnElement[bool]:
    """A link-only node on the columns of one relationship row and its project row."""
    if isinstance(node, _Cond):
        return _predicate(node.field, _scalar(node.field.expression(cid)), node.op, node.value)
    assert isinstance(node, _Group)
    return _combine(node.kind, [_link_columns(m, cid) for m in node.members])


def _link_sql(node: _Node, cid: ColumnElement[int]) -> ColumnElement[bool]:
    """A link-only node over ``customer_projects`` alone: what it asks of the project
    becomes ``project_id IN (the matching projects)``, evaluated once per statement,
    where a join inside a correlated subquery looked the project up again for every
    customer. Exact: every relationship has its one project (NOT NULL, foreign
    key), and link nodes combine with AND/OR only, under which a NULL leaf read as
    false leaves what is true unchanged."""
    if _on_projects(node):
        return CustomerProjectRow.project_id.in_(
            select(ProjectRow.id).where(_link_columns(node, cid)).correlate(None))
    if isinstance(node, _Cond):
        return _link_columns(node, cid)
    assert isinstance(node, _Group)
    on_projects = [m for m in node.members if _on_projects(m)]
    parts = [_link_sql(m, cid) for m in node.members if not _on_projects(m)]
    if on_projects:
        parts.append(_link_sql(_Group(node.kind, tuple(on_projects)), cid))
    return _combine(node.kind, parts)


#: How link conditions reach the customer (see :func:`_sql`).
Form = Literal["stream", "whole", "whole_join"]


def _link_exists(condition: ColumnElement[bool], cid: ColumnElement[int], form: Form,
                 after: int | None) -> ColumnElement[bool]:
    """Some relationship of the customer satisfies ``condition``.

    ``stream``: a correlated EXISTS, one index probe per customer read, so a scan
    in id order that stops at a page's LIMIT pays only for the customers it reads.
    Otherwise ``id IN (the customers of the matching relationships)``, evaluated
    once per statement (SQLite builds an index of the ids, PostgreSQL a hashed
    subplan or a semi-join): the cheaper form for a whole set, and the dearer for
    a page, which builds it whole again. ``correlate(None)``: the subquery stays
    whole inside a query that joins ``customer_projects`` itself.

    ``after``: the page starts after that customer id. The probe says so too,
    though it follows from ``customer_id = id``: PostgreSQL does not carry a range
    across that equality, and its merge semi-join read the relationships from the
    first customer for every page (0.45 s a page of ``project = P2`` after id
    500,000 on 1M customers; 12 ms bounded)."""
    if form == "stream":
        probe: Select[Any] = select(literal_column("1")).where(
            CustomerProjectRow.customer_id == cid, condition)
        if after is not None:
            probe = probe.where(CustomerProjectRow.customer_id > after)
        return probe.exists()
    return cid.in_(select(CustomerProjectRow.customer_id).where(condition).correlate(None))


def _customer_sql(node: _Node, cid: ColumnElement[int], form: Form, after: int | None
                  ) -> ColumnElement[bool]:
    if _is_link(node):
        return _link_exists(_link_sql(node, cid), cid, form, after)
    if isinstance(node, _Not):
        # Leaves may be NULL (unknown) and NOT NULL is NULL; IS NOT TRUE is the exact
        # two-valued complement (and nests less deeply in SQLite's parser than
        # NOT coalesce(...)).
        return _customer_sql(node.member, cid, form, after).is_not(true())
    if isinstance(node, _Group):
        links = [m for m in node.members if _is_link(m)]
        customer = [m for m in node.members if not _is_link(m)]
        parts = [_customer_sql(m, cid, form, after) for m in customer]
        if not links:
            return _combine(node.kind, parts)
        # Siblings in one group describe the same relationship: one subquery.
        inner = _link_sql(_Group(node.kind, tuple(links)), cid)
        if form == "whole_join" and node.kind == "all" and parts and not any(
            _mentions_links(m) for m in customer
        ):
            # SQLite: the customer conditions join the relationships inside the
            # subquery, which SQLite plans as a join (from whichever side is
            # narrower); beside it, neither a probe per customer nor the ids of
            # every matching relationship is near the best hand-written SQL
            # whatever the conditions select (bench/README, session 7).
            # ``customers`` inside shadows the outer one, so ``parts`` (built on
            # ``CustomerRow``) read the joined row. Only beside customer conditions
            # with no link of their own: nested, each level would put its
            # subquery inside the next, past SQLite's parser stack at MAX_DEPTH.
            return cid.in_(
                select(CustomerRow.id)
                .join(CustomerProjectRow, CustomerProjectRow.customer_id == CustomerRow.id)
                .where(_combine("all", parts), inner)
                .correlate(None))
        return _combine(node.kind, [*parts, _link_exists(inner, cid, form, after)])
    if node.field.many:
        return _many(node.field, cid, node.op, node.value)
    return _predicate(node.field, _scalar(node.field.expression(cid)), node.op, node.value)


def _sql(node: _Node, form: Form = "stream", after: int | None = None) -> ColumnElement[bool]:
    """``node`` over the active customers. ``form`` says how link conditions are
    read: ``stream`` (a probe per customer) for pages in id order; ``whole`` (each
    link subquery once) for a whole set, such as a count; ``whole_join`` on SQLite,
    where an ``all`` group's customer conditions also join the relationships inside
    that subquery. ``after``: only customers with higher ids are asked about (a
    keyset page); the caller still says ``id > after`` itself."""
    cid = CustomerRow.id.expression
    return and_(CustomerRow.merged_into.is_(None), CustomerRow.erased_at.is_(None),
                _customer_sql(node, cid, form, after))
