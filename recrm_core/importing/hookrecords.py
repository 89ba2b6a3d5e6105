"""The import's hook payloads (``recrm_customers_imported``'s records,
``recrm_owners_changed``'s changes), built on first access."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar, overload

from ..models import ImportedCustomer, OwnerChange

_T = TypeVar("_T")


class _Lazy(Sequence[_T]):
    """A read-only sequence of models built on first access.

    The core implements both import hooks itself (webhooks, follow-ups), so they are
    called for every batch whether or not anything reads every model: an
    implementation that does not read them pays nothing. Its length is known without
    building them. Equal to any sequence of the same models (e.g. a list).
    """

    __slots__ = ("_build", "_items", "_len")

    def __init__(self, build: Callable[[], list[_T]], length: int) -> None:
        self._build: Callable[[], list[_T]] | None = build
        self._items: list[_T] = []
        self._len = length

    def _all(self) -> list[_T]:
        if self._build is not None:
            self._items, self._build = self._build(), None
        return self._items

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> _T: ...
    @overload
    def __getitem__(self, index: slice) -> list[_T]: ...
    def __getitem__(self, index: int | slice) -> _T | list[_T]:
        return self._all()[index]

    def __iter__(self) -> Iterator[_T]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return self._all() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._all())


class _LazyRecords(_Lazy[ImportedCustomer]):
    """``recrm_customers_imported``'s records: a batch's cost ~10 % of the importing
    process; the core's webhooks read them only when a subscription wants them."""

    __slots__ = ()


class _LazyChanges(_Lazy[OwnerChange]):
    """``recrm_owners_changed``'s changes of an import batch, which also tell their
    ``reasons`` unbuilt: the core's follow-ups act only on owners filled, reassigned
    or merged, never on the first links that are nearly all of an import's changes
    (one model per new customer with an owner: ~4 % of the importing process)."""

    __slots__ = ("reasons",)

    def __init__(self, build: Callable[[], list[OwnerChange]], length: int,
                 reasons: frozenset[str]) -> None:
        super().__init__(build, length)
        self.reasons = reasons
