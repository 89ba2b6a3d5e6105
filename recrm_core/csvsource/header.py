"""Finding a table's header under its title rows, and mapping its cells to fields."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter
from typing import Any

from ..models import RejectedRow
from .failures import ImportFileError, UnknownColumns
from .vocabulary import CUSTOMER_COLUMNS, Vocabulary, normalise_header

#: how many title rows (report title, banner, export date) may precede the header
MAX_TITLE_ROWS = 10
#: what no column's name holds but a customer's values do: a mobile, ID or phone
#: number (seven digits in a row) or an email address
_PERSONAL_VALUE = re.compile(r"\d{7}|@")
_second = itemgetter(1)


@dataclass
class Header:
    """The mapped header: which cell feeds which field."""

    #: (column index, field) of each field fed by one column
    columns: list[tuple[int, str]]
    #: list name -> the column indexes feeding it (a field fed by several columns)
    lists: dict[str, list[int]] = field(default_factory=dict)
    #: column index -> the field it feeds, for every mapped column
    fields: dict[int, str] = field(default_factory=dict)

    @cached_property
    def width(self) -> int:
        """How many leading cells of a row hold mapped columns (a header is not changed
        once mapped: read once, not on every row)."""
        return max(self.fields, default=-1) + 1

    def field_at(self, index: int) -> str:
        """The field column ``index`` feeds ("" for none), to name in a rejected row."""
        return self.fields.get(index, "")

    def beyond(self, row: int, cells: Sequence[Any], sheet_row: int | None = None
               ) -> RejectedRow | None:
        """The rejection of a row holding a value to the right of the header's last
        column (a cell no column names: the row's cells are likely shifted, e.g. by an
        unquoted comma), else None. Importing the rest would drop that value unseen."""
        width = self.width
        for index in range(width, len(cells)):
            cell = cells[index]
            if cell is not None and (not isinstance(cell, str) or cell.strip()):
                return RejectedRow(
                    row=row, field="",
                    reason=f"a value in column {index + 1}, right of the header's last "
                           f"column ({width}): the row's cells may be shifted",
                    sheet_row=sheet_row)
        return None

    @cached_property
    def _pairs(self) -> tuple[tuple[str, ...], Callable[[Sequence[str]], Iterator[str]]]:
        """The fields of :attr:`columns`, and what takes their cells from a full row
        in the same order."""
        names = tuple(name for _index, name in self.columns)
        indexes = tuple(index for index, _name in self.columns)
        if indexes == tuple(range(len(indexes))):  # the columns as the file has them
            return names, iter
        return names, lambda cells: map(cells.__getitem__, indexes)

    def values(self, cells: Sequence[str]) -> dict[str, Any]:
        """A row's non-empty cells by field (see :meth:`beyond` for cells to the right
        of the header)."""
        width = len(cells)
        values: dict[str, Any]
        if width >= self.width:  # a full row (CSV rows mostly are): no index to check
            # (field, cell) pairs, the empty ones filtered out, made into a dict in C:
            # the comprehension's loop was ~4 % of the import worker's time (a row may
            # run on past the mapped columns: its empty cells there are not taken)
            names, taken = self._pairs
            values = dict(filter(_second, zip(names, taken(cells), strict=False)))
        else:
            values = {}
            for index, name in self.columns:
                if index < width:
                    value = cells[index]
                    if value:
                        values[name] = value
        for name, indexes in self.lists.items():
            values[name] = [cells[i] for i in indexes if i < width and cells[i]]
        return values


def map_header(cells: Sequence[str], vocabulary: Vocabulary = CUSTOMER_COLUMNS) -> Header:
    """Map header cells to fields; raise UnknownColumns / ImportFileError (exit 2).

    Empty cells before the first name are a margin (a sheet laid out from column B, an
    unlabelled 序号), not columns; an empty cell between names is a column whose name
    was lost, and is reported."""
    named = [i for i, c in enumerate(cells) if normalise_header(c)]
    if not named:
        raise ImportFileError("the file has no header row")
    first, last = named[0], named[-1]
    columns: list[tuple[int, str]] = []
    repeated: dict[str, list[int]] = {}
    unknown: list[str] = []
    seen: dict[str, str] = {}
    fields: dict[int, str] = {}
    for index, cell in enumerate(cells[first : last + 1], start=first):
        target = vocabulary.field_of(cell)
        if target is None:
            unknown.append(cell.strip() or f"(empty header, column {index + 1})")
            continue
        fields[index] = target
        if target in vocabulary.lists:
            repeated.setdefault(target, []).append(index)
            continue
        if target in seen:
            raise ImportFileError(
                f"columns {seen[target]!r} and {cell.strip()!r} both hold {target}"
            )
        seen[target] = cell.strip()
        columns.append((index, target))
    if unknown:
        raise UnknownColumns(unknown, list(vocabulary.known))
    lists: dict[str, list[int]] = {}
    for target, indexes in repeated.items():
        if len(indexes) == 1:
            columns.append((indexes[0], target))
        else:
            lists[vocabulary.lists[target]] = indexes
    return Header(columns=columns, lists=lists, fields=fields)


def find_header(rows: Iterable[Sequence[str]], vocabulary: Vocabulary = CUSTOMER_COLUMNS) -> Header:
    """The header of a table whose non-blank ``rows`` are read from its top.

    The header is the first row whose non-empty cells all name known columns; up to
    :data:`MAX_TITLE_ROWS` rows before it (a report title, a merged banner, an export
    date) are skipped. When none of those rows qualifies, the first one naming any
    known column (else the first row) is the header that was meant, and its unknown
    names are what :class:`UnknownColumns` reports. ``rows`` is left just after the
    header, so the data rows follow.
    """
    meant: Sequence[str] | None = None
    first: Sequence[str] | None = None
    for taken, cells in enumerate(rows):
        named = [vocabulary.field_of(c) for c in cells if normalise_header(c)]
        if named and None not in named:
            return map_header(cells, vocabulary)
        if first is None:
            first = cells
        if meant is None and any(named):
            meant = cells
        if taken == MAX_TITLE_ROWS:
            break
    if first is None:
        raise ImportFileError("the file has no header row")
    if meant is None and any(_PERSONAL_VALUE.search(cell) for cell in first):
        # A file saved without its header: its first row would be "unknown columns",
        # a person's name, mobile and ID number in an error line (and a log).
        raise ImportFileError(
            "the file has no header row: its first row holds values (a mobile, an ID"
            " number or an email), not column names; add a header naming its columns"
            f" ({', '.join(vocabulary.known)})")
    return map_header(meant or first, vocabulary)
