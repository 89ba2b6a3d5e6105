"""``recrm_customers_imported``'s records, built on first access."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import overload

from ..models import ImportedCustomer


class _LazyRecords(Sequence[ImportedCustomer]):
    """``recrm_customers_imported``'s records, built on first access (read-only).

    A batch's records cost ~10 % of the importing process, and the core's own
    webhooks implement the hook whether or not a subscription wants its events; an
    implementation that does not read them pays nothing. Its length is known without
    building them. Equal to any sequence of the same records (e.g. a list).
    """

    __slots__ = ("_build", "_items", "_len")

    def __init__(self, build: Callable[[], list[ImportedCustomer]], length: int) -> None:
        self._build: Callable[[], list[ImportedCustomer]] | None = build
        self._items: list[ImportedCustomer] = []
        self._len = length

    def _all(self) -> list[ImportedCustomer]:
        if self._build is not None:
            self._items, self._build = self._build(), None
        return self._items

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> ImportedCustomer: ...
    @overload
    def __getitem__(self, index: slice) -> list[ImportedCustomer]: ...
    def __getitem__(self, index: int | slice) -> ImportedCustomer | list[ImportedCustomer]:
        return self._all()[index]

    def __iter__(self) -> Iterator[ImportedCustomer]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return self._all() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._all())
