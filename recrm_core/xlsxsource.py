"""Reading Excel workbooks (.xlsx) under the CSV reader's rules.

A sheet is streamed with openpyxl in read-only mode (imported only when a workbook is
read: the CLI starts without it). Headers, title rows, blank rows and row numbers
follow :mod:`recrm_core.csvsource`; cells are turned into the text a person would
type, so that the very same value rules apply:

- a number is its digits: a mobile stored as ``13812345678.0`` is ``13812345678``;
  other numbers show 15 significant digits, as Excel does;
- a date or date-time cell is its date (``2024-01-02``);
- a number in a column of the vocabulary's ``text_only`` fields (the ID card) has
  already lost digits, so its row is rejected with :data:`STORED_AS_NUMBER`;
- a formula counts with the result saved with it; a formula without one (a workbook a
  program wrote and Excel never saved) rejects its row with :data:`UNSAVED_FORMULA`,
  rather than importing it without that value.

A workbook is a zip archive, and a hostile one must not exhaust memory: before
openpyxl reads it, every member that would inflate more than :data:`MAX_INFLATION`
times (beyond :data:`INFLATION_FLOOR`) is refused as a zip bomb, and the shared
strings, which openpyxl holds in memory, may be :data:`MAX_SHARED_STRINGS_BYTES` at
most (zipfile never inflates a member beyond its declared size). A sheet's declared
dimension is ignored (a forged ``A1:XFD1048576`` would pad every row), rows are read
only as wide as the header, and a cell longer than Excel's own limit of
:data:`MAX_CELL_CHARS` characters stops the import at its row, like an over-long CSV
line.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Generator, Iterator
from typing import IO, Any
from xml.etree.ElementTree import ParseError

from .csvsource import (
    CUSTOMER_COLUMNS,
    FileSource,
    Header,
    ImportFileError,
    ImportReadError,
    Vocabulary,
    find_header,
)
from .models import RejectedRow

#: Excel's own limit on the characters of a cell
MAX_CELL_CHARS = 32_767
#: how many times a member may inflate before it counts as a zip bomb...
MAX_INFLATION = 100
#: ...once it inflates beyond this many bytes (small members compress as they like)
INFLATION_FLOOR = 16 * 1024 * 1024
#: the largest shared-strings table read (openpyxl keeps it in memory)
MAX_SHARED_STRINGS_BYTES = 128 * 1024 * 1024
#: the reason of a row whose ID card (a ``text_only`` field) is a number cell
STORED_AS_NUMBER = "stored as a number in Excel, which drops digits; format the column as text"
#: the reason of a row whose cell holds a formula with no saved result (a workbook
#: written by a program, not saved by Excel or WPS, which compute and save results)
UNSAVED_FORMULA = ("holds a formula with no saved value: open and save the workbook in"
                   " Excel/WPS")
#: how many sheet names a refused --sheet lists
LISTED_SHEETS = 10

# A merged range of the sheet (after its rows in the XML): ``<mergeCell ref="A3:A5"/>``.
_MERGE_CELL = re.compile(
    rb'<(?:\w+:)?mergeCell\b[^>]*?\bref="([A-Z]{1,3})([0-9]{1,7}):([A-Z]{1,3})([0-9]{1,7})"')
#: {column: [(first row, last row)]}: the ranges merged down one column
ColumnMerges = dict[int, list[tuple[int, int]]]

# Exceptions whose text describes the archive or its XML, never a cell's content.
_STRUCTURAL = (zipfile.BadZipFile, zlib.error, ParseError, EOFError)


class XlsxSource(FileSource):
    """One sheet of an Excel workbook, read as a stream of ``(row, {field: text})``.

    Opening refuses anything but a regular file and anything but a readable .xlsx
    workbook, picks the sheet (``sheet``, else the first visible one) and reads and
    maps the header, raising the exit-2 errors before anything is written. Iterating
    raises :class:`ImportReadError` at the first row that cannot be read; a row whose
    ``text_only`` cell is a number comes as ``(row, RejectedRow)``. ``sheet_row`` is
    the sheet row (as Excel numbers it) of the row last yielded.
    """

    kind = "xlsx"

    def __init__(
        self,
        path: str | os.PathLike[str],
        sheet: str | None = None,
        *,
        vocabulary: Vocabulary = CUSTOMER_COLUMNS,
        file: IO[bytes] | None = None,
    ) -> None:
        super().__init__(path, vocabulary, file)
        self._workbook: Any = None
        self.rows_read = 0
        #: the sheet row last read (0 before the first)
        self.sheet_row = 0
        self._header_done = False
        try:
            try:
                self.total_bytes = os.fstat(self._fh.fileno()).st_size
                self._fh.seek(0)
                _check_archive(self._fh, self.path)
                self._fh.seek(0)
            except OSError as exc:
                raise ImportFileError(f"cannot read {self.path!r}: {exc.strerror}") from None
            self._workbook = _load(self._fh, self.path)
            worksheet = _pick_sheet(self._workbook, sheet, self.path)
            #: the name of the sheet being read
            self.sheet: str = worksheet.title
            # A forged dimension would make openpyxl pad each row to its width.
            worksheet.reset_dimensions()
            self._worksheet = worksheet
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    @property
    def bytes_read(self) -> int:
        """How far into the file reading has got (the sheet's compressed bytes)."""
        try:
            return min(self._fh.tell(), self.total_bytes)
        except (OSError, ValueError):  # closed
            return self.total_bytes

    # -- rows of the sheet ----------------------------------------------------------------
    def _sheet_rows(
        self, first: int, width: int | None, merges: ColumnMerges | None = None
    ) -> Generator[tuple[Any, ...], None, None]:
        """Non-blank rows from sheet row ``first`` on, ``width`` cells wide (None: as
        wide as each row is), with ``merges`` filled in, counting ``sheet_row``;
        ImportReadError when unreadable."""
        rows = _value_rows(self._workbook, self._worksheet, first, width, merges)
        self.sheet_row = first - 1
        try:
            while True:
                try:
                    with warnings.catch_warnings():
                        # openpyxl warns about parts it drops (extensions, legacy
                        # drawings) on stderr; the import has nothing to say about them.
                        warnings.simplefilter("ignore")
                        self.sheet_row, cells = next(rows)
                except StopIteration:
                    return
                except Exception as exc:  # a damaged sheet can make openpyxl raise anything
                    raise self._read_error(f"cannot be read ({_why(exc)})") from None
                if cells.count(None) == len(cells):
                    continue
                blank = True
                for cell in cells:
                    if isinstance(cell, str):
                        if len(cell) > MAX_CELL_CHARS:
                            raise self._read_error(
                                f"has a cell longer than {MAX_CELL_CHARS} characters"
                                f" (sheet row {self.sheet_row})"
                            )
                        if blank and cell.strip():
                            blank = False
                    elif cell is not None:
                        blank = False
                if not blank:
                    yield cells
        finally:
            rows.close()  # closes the sheet's stream in the archive

    def _read_error(self, reason: str) -> ImportReadError:
        if not self._header_done:
            return ImportReadError(0, reason)
        if "(sheet row" not in reason:
            reason = f"{reason} (sheet row {self.sheet_row + 1})"
        return ImportReadError(self.rows_read + 1, reason)

    def _read_header(self) -> Header:
        rows = self._sheet_rows(1, None)
        taken = 0

        def texts() -> Iterator[list[str]]:
            nonlocal taken
            for cells in rows:
                taken += 1
                yield [cell_text(c) for c in cells]

        try:
            header = find_header(texts(), self.vocabulary)
        except ImportReadError as exc:
            # Nothing was imported and nothing could be: the file is unusable (exit 2).
            raise ImportFileError(f"{self.path!r}: the header {exc.reason}") from None
        except ImportFileError:
            if taken:
                raise
            raise self._empty_sheet() from None
        finally:
            rows.close()
        self._header_row = self.sheet_row
        self._header_done = True
        return header

    def _empty_sheet(self) -> ImportFileError:
        """The refusal of a sheet without a single non-blank row, naming the others."""
        message = f"{self.path!r}: sheet {self.sheet!r} is empty (no header row)"
        others = [s.title for s in self._workbook.worksheets if s.title != self.sheet]
        if not others:
            return ImportFileError(f"{message}, and the workbook has no other sheet")
        return ImportFileError(
            f"{message}; choose another with --sheet NAME: {_listed(others)}")

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any] | RejectedRow]]:
        header = self.header
        values = header.values
        text_only = self.vocabulary.text_only
        guarded = [(i, name) for i, name in header.fields.items() if name in text_only]
        width = header.width
        try:
            merges = _column_merges(self._workbook, self._worksheet)
        except Exception as exc:  # a damaged sheet can make the archive raise anything
            raise self._read_error(f"cannot be read ({_why(exc)})") from None
        # The whole row is read, so that a value right of the header is seen.
        for cells in self._sheet_rows(self._header_row + 1, None, merges):
            self.rows_read += 1
            shifted = header.beyond(self.rows_read, cells, self.sheet_row)
            if shifted is not None:
                yield self.rows_read, shifted
                continue
            if len(cells) < width:
                cells = cells + (None,) * (width - len(cells))
            unsaved = _unsaved_formula(cells, header.fields, width)
            if unsaved is not None:
                yield self.rows_read, RejectedRow(
                    row=self.rows_read, field=unsaved,
                    reason=f"column {unsaved} {UNSAVED_FORMULA}",
                    sheet_row=self.sheet_row,
                )
                continue
            for index, name in guarded:
                if _is_number(cells[index]):
                    yield self.rows_read, RejectedRow(
                        row=self.rows_read, field=name, reason=STORED_AS_NUMBER,
                        sheet_row=self.sheet_row,
                    )
                    break
            else:
                yield self.rows_read, values([cell_text(c) for c in cells])

    def close(self) -> None:
        if self._workbook is not None:
            self._workbook.close()
            self._workbook = None
        super().close()


class _Unsaved:
    """The value of a formula cell whose result was never saved (read as empty
    otherwise, which would import the row without it)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSAVED"


UNSAVED = _Unsaved()


def _unsaved_formula(cells: tuple[Any, ...], fields: dict[int, str], width: int
                     ) -> str | None:
    """The field of the first mapped cell holding an unsaved formula, else None."""
    if UNSAVED not in cells:
        return None
    for index in range(min(width, len(cells))):
        if cells[index] is UNSAVED and index in fields:
            return fields[index]
    return None


def _column_merges(workbook: Any, worksheet: Any) -> ColumnMerges:
    """The sheet's ranges merged down one column and over several rows.

    openpyxl's read-only sheets do not read merged cells, and the sheet's XML lists
    them after its rows: its part is read once more, as bytes (inflating is cheap
    next to parsing), looking for ``<mergeCell>`` only."""
    from openpyxl.utils.cell import column_index_from_string

    found: set[tuple[bytes, ...]] = set()
    tail = b""
    with workbook._archive.open(worksheet._worksheet_path) as src:
        while chunk := src.read(1 << 20):
            data = tail + chunk
            if b"mergeCell" in data:
                found.update(m.groups() for m in _MERGE_CELL.finditer(data))
            tail = data[-256:]  # a reference cut by the chunk's end is read next time
    merges: ColumnMerges = {}
    for left, top, right, bottom in found:
        if left == right and int(bottom) > int(top):
            merges.setdefault(column_index_from_string(left.decode()), []).append(
                (int(top), int(bottom)))
    return merges


def _value_rows(workbook: Any, worksheet: Any, first: int, width: int | None,
                merges: ColumnMerges | None = None
                ) -> Generator[tuple[int, tuple[Any, ...]], None, None]:
    """``(sheet row, values)`` of the rows from ``first`` on that the sheet holds,
    ``width`` cells wide (None: as wide as each row is); a formula cell without a
    saved result is :data:`UNSAVED`.

    A cell inside a range of ``merges`` below the range's first row (on or after
    ``first``) reads as that first cell, as Excel shows it, in a row holding other
    values (a merged block running past the filled rows adds none).

    openpyxl's own read-only rows (``iter_rows``) read such a cell as None, like an
    empty one; this is the same loop over its sheet parser, which tells them apart.
    """
    from openpyxl.worksheet._reader import FORMULA_TAG, WorkSheetParser

    class Parser(WorkSheetParser):  # type: ignore[misc]
        def parse_row(self, row: Any) -> tuple[int, list[dict[str, Any]]]:
            index, cells = super().parse_row(row)
            # One look per row (most rows hold no formula), then per cell; openpyxl
            # makes a cell of each of the row's elements, in order.
            if next(row.iter(FORMULA_TAG), None) is not None:
                for cell, element in zip(cells, row, strict=True):
                    if cell["value"] is None and element.find(FORMULA_TAG) is not None:
                        cell["value"] = UNSAVED
            return index, cells

    with workbook._archive.open(worksheet._worksheet_path) as src:
        parser = Parser(src, worksheet._shared_strings, data_only=True,
                        epoch=workbook.epoch, date_formats=workbook._date_formats,
                        timedelta_formats=workbook._timedelta_formats)
        starts: dict[int, list[tuple[int, int]]] = {}
        for column, spans in (merges or {}).items():
            for top, bottom in spans:
                if top >= first:
                    starts.setdefault(top, []).append((column, bottom))
        #: column -> (the merged value, the range's last row), for the rows below its first
        shown: dict[int, tuple[Any, int]] = {}
        for index, row in parser.parse():
            if index < first or not row:
                continue
            size = width or row[-1]["column"]
            values: list[Any] = [None] * size
            for cell in row:
                column = cell["column"]
                if column <= size:
                    values[column - 1] = cell["value"]
            if shown:
                filled = any(v is not None for v in values)
                for column, (value, bottom) in list(shown.items()):
                    if index > bottom:
                        del shown[column]
                    elif filled and (width is None or column <= width):
                        values.extend([None] * (column - len(values)))
                        values[column - 1] = value
            for column, bottom in starts.get(index, ()):
                shown[column] = (values[column - 1] if column <= len(values) else None, bottom)
            yield index, tuple(values)


def cell_text(value: object) -> str:
    """A cell's value as the text a person would have typed for it."""
    if value is None or value is UNSAVED:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")  # what Excel shows
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_archive(fh: IO[bytes], path: str) -> None:
    """ImportFileError unless ``fh`` is a zip archive holding an .xlsx workbook that
    inflates within bounds."""
    try:
        with zipfile.ZipFile(fh) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise ImportFileError(f"{path!r} is a damaged workbook ({_why(exc)})") from None
    names = {m.filename.lower() for m in members}
    if "xl/workbook.xml" not in names:
        kind = "a binary .xlsb workbook" if "xl/workbook.bin" in names else "not a workbook"
        raise ImportFileError(
            f"{path!r} is a zip archive but {kind}; save it as .xlsx or CSV and import that"
        )
    for member in members:
        size = member.file_size
        if size > INFLATION_FLOOR and size > MAX_INFLATION * max(member.compress_size, 1):
            raise ImportFileError(
                f"{path!r} is not a workbook Excel writes: {member.filename!r} would inflate"
                f" {size // max(member.compress_size, 1)} times (a zip bomb)"
            )
        if member.filename.lower().endswith("sharedstrings.xml") \
                and size > MAX_SHARED_STRINGS_BYTES:
            raise ImportFileError(
                f"{path!r}: its shared strings take {size // 2**20} MB, more than the"
                f" {MAX_SHARED_STRINGS_BYTES // 2**20} MB read; save it as CSV and import that"
            )


def _load(fh: IO[bytes], path: str) -> Any:
    from openpyxl import load_workbook  # only when a workbook is read: start-up time

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no default style" and the like
            return load_workbook(fh, read_only=True, data_only=True)
    except Exception as exc:  # a damaged workbook can make openpyxl raise anything
        raise ImportFileError(f"{path!r} is a damaged workbook ({_why(exc)})") from None


def _pick_sheet(workbook: Any, name: str | None, path: str) -> Any:
    sheets = list(workbook.worksheets)  # sheets of cells: chart sheets are not among them
    if not sheets:
        raise ImportFileError(f"{path!r} has no sheet of cells")
    if name is None:
        return next((s for s in sheets if s.sheet_state == "visible"), sheets[0])
    # Excel itself takes sheet names case-insensitively.
    found = next((s for s in sheets if s.title == name), None) or next(
        (s for s in sheets if s.title.casefold() == name.casefold()), None
    )
    if found is not None:
        return found
    raise ImportFileError(
        f"no sheet {name!r} in {path!r}; its sheets: {_listed([s.title for s in sheets])}")


def _listed(titles: list[str]) -> str:
    """Sheet names for a message: the first :data:`LISTED_SHEETS` and how many more."""
    more = len(titles) - LISTED_SHEETS
    shown = ", ".join(repr(title) for title in titles[:LISTED_SHEETS])
    return shown + (f" and {more} more" if more > 0 else "")


def _why(exc: BaseException) -> str:
    """A one-line cause that never quotes a cell: the text only of structural errors."""
    if isinstance(exc, _STRUCTURAL):
        text = str(exc).splitlines()[0][:200] if str(exc) else ""
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return type(exc).__name__
