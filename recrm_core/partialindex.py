"""A partial index on both backends that does not import the PostgreSQL dialect.

``Index(..., postgresql_where=...)`` makes SQLAlchemy validate the keyword by
importing ``sqlalchemy.dialects.postgresql`` with every driver module (~130 M
instructions, a third of what ``recrm customers count`` pays beyond its floor on
SQLite). :class:`PartialIndex` hands PostgreSQL its options when something asks for
them: its DDL compiler, Alembic's comparison or rendering, ``Table.to_metadata``
(each of which reads or lists the index's dialect options, so each sees the
predicate exactly as ``postgresql_where`` would give it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import Index, TextClause, text
from sqlalchemy.util import PopulateDict, memoized_property

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values

#: the dialects whose options are handed over on first use rather than validated
_DEFERRED = ("postgresql",)
#: whether this SQLAlchemy makes an element's options per dialect as 2.0/2.1 do (a
#: private method): if a release changes that, the index takes ``postgresql_where``
#: as any index does — correct, only the dialect's import is no longer saved
#: (``tests/test_startup.py`` then fails on that import, not the app)
_DEFERRABLE = callable(getattr(Index, "_kw_reg_for_dialect_cls", None))


class _DeferredOptions(PopulateDict[str, Any]):
    """An index's options per dialect (SQLAlchemy's ``dialect_options``), with
    ``pending`` ones set when their dialect's entry is first made. Listing the
    entries makes the pending ones first, so a copy or a rendering misses none."""

    def __init__(self, creator: Callable[[str], Any], pending: dict[str, dict[str, Any]]):
        super().__init__(creator)
        self.pending = pending

    def __missing__(self, key: str) -> Any:
        options = super().__missing__(key)
        for name, value in self.pending.pop(key, {}).items():
            options[name] = value
        return options

    def _make_pending(self) -> None:
        for key in list(self.pending):
            self[key]  # made by __missing__

    def __iter__(self) -> Iterator[str]:
        self._make_pending()
        return super().__iter__()

    def __len__(self) -> int:
        self._make_pending()
        return super().__len__()

    def keys(self) -> dict_keys[str, Any]:
        self._make_pending()
        return super().keys()

    def values(self) -> dict_values[str, Any]:
        self._make_pending()
        return super().values()

    def items(self) -> dict_items[str, Any]:
        self._make_pending()
        return super().items()


class PartialIndex(Index):
    """``Index(name, *expressions, sqlite_where=where, postgresql_where=where)``."""

    def __init__(self, name: str, *expressions: Any, where: str | TextClause,
                 **dialect_kw: Any) -> None:
        clause = text(where) if isinstance(where, str) else where
        self._deferred = {dialect: {"where": clause} for dialect in _DEFERRED}
        if not _DEFERRABLE:
            dialect_kw.update({f"{dialect}_where": clause for dialect in _DEFERRED})
        super().__init__(name, *expressions, sqlite_where=clause, **dialect_kw)

    @memoized_property
    def dialect_options(self) -> Any:  # SQLAlchemy's type names a private class
        if not _DEFERRABLE:
            return super().dialect_options
        return _DeferredOptions(self._kw_reg_for_dialect_cls, self._deferred)
