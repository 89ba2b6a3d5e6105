"""The service: segment fields collected from the core and the plugins, definitions
checked and compiled, matching customers counted or streamed in batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from ..access import check_segment
from ..consent import PURPOSES
from ..customers import load_customers
from ..errors import InvalidInput
from ..idcards import match_value
from ..models import Actor, Customer
from ..projects import known_project_id
from ..tables import CustomerRow
from .fields import CORE_FIELDS, SegmentField, _check_plugin_field, _consent_fields
from .parsing import _Context, _Group, _Node, _Not, _Parser
from .sql import Form, _sql

if TYPE_CHECKING:
    from ..crm import CRM


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
        the place in the definition that is wrong. Shaped for reading customers in
        id order a page at a time (keyset pagination, as the newsletter's audience
        does): each page pays for the customers it reads."""
        return _sql(self._parse(definition))

    def _parse(self, definition: Mapping[str, Any]) -> _Node:
        ctx = _Context(self.crm.config.default_region, self.crm.config.zone,
                       lambda number: match_value(self.crm.keys, number))
        return _Parser(self._registry(), ctx).node(
            dict(definition) if isinstance(definition, Mapping) else definition, ""
        )

    def _checked(self, definition: Mapping[str, Any], session: Session | None = None) -> _Node:
        """The parsed definition, every project it names by code known
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
        return node

    def count(self, definition: Mapping[str, Any], actor: Actor | None = None) -> int:
        """How many customers match; an unknown project code is UnknownProject. A
        partner may not select by what they never see (``access.check_segment``)."""
        check_segment(actor, definition)
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            # A whole set: each link subquery once, not a probe per customer.
            form: Form = "whole_join" if self.crm.engine.dialect.name == "sqlite" else "whole"
            condition = _sql(self._checked(definition, uow.session), form)
            query = select(func.count()).select_from(CustomerRow).where(condition)
            return uow.session.scalar(query) or 0

    # -- streaming ------------------------------------------------------------------------
    def iter_ids(self, definition: Mapping[str, Any], batch_size: int = 1000) -> Iterator[int]:
        """Matching customer ids in id order, fetched ``batch_size`` at a time
        (keyset pagination: memory stays flat and no transaction stays open
        between batches). The definition is checked (projects too) before the first
        id."""
        condition = _paged(self._checked(definition))
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
                       actor: Actor | None) -> _Paged:
        """The checked condition of ``definition`` (every active customer for None)."""
        check_segment(actor, definition)
        if definition is None:
            return lambda _after: and_(CustomerRow.merged_into.is_(None),
                                       CustomerRow.erased_at.is_(None))
        return _paged(self._checked(definition))

    def _batches(
        self, condition: _Paged, size: int, load: bool = False,
        actor: Actor | None = None, after: int | None = None,
    ) -> Iterator[list[int] | list[Customer]]:
        last: int | None = after
        while True:
            query = (select(CustomerRow.id).where(condition(last))
                     .order_by(CustomerRow.id).limit(size))
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

    def _ids(self, condition: _Paged, size: int) -> Iterator[int]:
        for batch in self._batches(condition, size):
            yield from batch  # type: ignore[misc]

    def _customers(self, condition: _Paged, size: int,
                   actor: Actor | None) -> Iterator[Customer]:
        for batch in self._batches(condition, size, load=True, actor=actor):
            yield from batch  # type: ignore[misc]


#: the condition of a keyset page: customers after the given id (None: the first page)
_Paged = Callable[[int | None], ColumnElement[bool]]


def _paged(node: _Node) -> _Paged:
    """``node`` for pages read in id order: a probe per customer read, bounded by
    the page's start."""
    return lambda after: _sql(node, "stream", after)


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
