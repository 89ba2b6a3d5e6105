"""Writing a customer list to a file a person opens in Excel: CSV or XLSX, streamed.

The format follows the extension (``.csv`` or ``.xlsx``, in any case)::

    with open_list_writer("customers.xlsx", ["name", "mobile"]) as out:
        for customer in customers:
            out.write_row([customer.name, customer.mobile])

Rows go to a temporary file in the output's directory, renamed onto the path only once
the file is complete: a crash or an error never leaves half an export under the name
asked for, and an existing file there is replaced by a complete one or not at all (a
symbolic link there is replaced too, not followed).
The file gets the permissions ``open()`` would give it (the umask decides).

- CSV is UTF-8 with a BOM (without it Excel reads Chinese names as mojibake), with
  CRLF line ends; every value is text.
- XLSX has one sheet, ``customers``, and every value is a text cell, so that Excel
  never turns a mobile into a number nor anything into a formula. A value is cut to
  Excel's limit on a cell, and the characters a workbook cannot hold (C0 control
  characters, lone surrogates) are removed. openpyxl streams the sheet's rows into its
  own temporary file (in the system's temporary directory) and zips them at close.

In both formats, text that a spreadsheet would run as a formula gets a leading
apostrophe (see :func:`spreadsheet_text`).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import IO, Any, Literal, Self

from .errors import InvalidInput
from .regularfile import output_refusal

#: the option that names the output file, which every refusal names as its field
OUT_FIELD = "--out"
#: the extensions understood, lower case
EXTENSIONS = (".csv", ".xlsx")
#: the title of the workbook's only sheet
SHEET_TITLE = "customers"
#: Excel's limit on the characters of a cell (which Excel counts in UTF-16 units)
MAX_CELL_CHARS = 32_767

# The characters that make Excel, LibreOffice or Google Sheets read a cell as a formula
# (OWASP "CSV injection"); TAB and CR because some importers strip them first.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A signed number or phone number (+8613812345678, -12.5) starts with + or - too, but
# evaluates to itself: quoting it would only spoil the data. [0-9], not \d: a
# full-width digit is not a number to Excel.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9][0-9 .]*")
# openpyxl's ILLEGAL_CHARACTERS_RE (C0 controls but TAB, LF, CR), plus what XML 1.0
# cannot hold either and would otherwise fail the save (or corrupt the file) at close:
# lone surrogates and U+FFFE/U+FFFF.
_NOT_IN_WORKBOOK = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def spreadsheet_text(value: object) -> str:
    """The text a spreadsheet shows for ``value``, safe from formula injection.

    None is ``""``, a date or date-time its ISO text, anything else ``str(value)``.
    Text starting with ``=``, ``+``, ``-``, ``@``, TAB or CR gets a leading ``'`` so
    that no spreadsheet runs it (``'=HYPERLINK(...)``), except a plain number or phone
    number such as ``+8613812345678`` or ``-12.5``, which stays as it is.
    """
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    if text.startswith(_FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def workbook_text(text: str) -> str:
    """``text`` as a workbook cell can hold it: without the characters XML refuses, and
    cut to :data:`MAX_CELL_CHARS` UTF-16 units (an emoji counts two, as in Excel)."""
    text = _NOT_IN_WORKBOOK.sub("", text)
    # Fewer characters than half the limit cannot exceed it whatever they are.
    if len(text) > MAX_CELL_CHARS // 2:
        units = text.encode("utf-16-le")
        if len(units) > 2 * MAX_CELL_CHARS:
            # "ignore" drops the high surrogate of a pair the cut split in two.
            text = units[: 2 * MAX_CELL_CHARS].decode("utf-16-le", errors="ignore")
    return text


def _cannot_write(path: str, why: str) -> InvalidInput:
    return InvalidInput(OUT_FIELD, f"cannot write {path!r}: {why}")


def _create_temporary(path: str) -> tuple[str, IO[bytes]]:
    """A new file next to ``path``, open for writing, and its name."""
    refusal = output_refusal(path)
    if refusal is not None:
        raise _cannot_write(path, refusal)
    directory, name = os.path.split(path)
    # A short stem: the temporary name must not exceed NAME_MAX where the path does not.
    stem = f".{name[:64]}."
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = os.path.join(directory, f"{stem}{secrets.token_hex(8)}.tmp")
        try:
            # 0o666 under the umask, as open() would create the export itself
            # (tempfile.mkstemp would make it 0o600 whatever the umask).
            fd = os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _cannot_write(path, exc.strerror or str(exc)) from None
        except ValueError:  # a NUL in the path
            raise _cannot_write(path, "not a valid path") from None
        return temporary, os.fdopen(fd, "wb")


def write_text_atomically(path: str | os.PathLike[str], text: str) -> None:
    """``text`` (UTF-8) at ``path``, whole or not at all: written beside it, then
    renamed into place; InvalidInput when it cannot be written."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """``data`` at ``path``, whole or not at all (see :func:`write_text_atomically`)."""
    target = os.fspath(path)
    if os.path.isdir(target):
        raise _cannot_write(target, "is a directory")
    temporary, handle = _create_temporary(target)
    try:
        with handle:
            handle.write(data)
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise _cannot_write(target, exc.strerror or str(exc)) from None


class ListWriter(ABC):
    """Writes rows of values under ``columns`` to ``path``; get one from
    :func:`open_list_writer`.

    :meth:`close` finishes the file and puts it at ``path``; :meth:`abort` removes
    what was written. As a context manager, a writer closes when its block ends and
    aborts when an exception leaves it. A failure to write (a full disk, a path that
    became a directory) aborts the writer and raises :class:`InvalidInput`.
    """

    def __init__(self, path: str, columns: Sequence[str]) -> None:
        self.path = path
        self.columns = tuple(columns)
        self._temporary, self._file = _create_temporary(path)
        self._state: Literal["open", "closed", "aborted"] = "open"
        self._guarded(self._start)

    def write_row(self, values: Sequence[object]) -> None:
        """Write one row: as many values as there are columns."""
        if self._state != "open":
            raise RuntimeError(f"write_row on a list writer that is {self._state}")
        if len(values) != len(self.columns):
            # A short or long row would shift every later column under the wrong header.
            raise ValueError(f"a row of {len(values)} values for {len(self.columns)} columns")
        self._guarded(self._write, values)

    def close(self) -> None:
        """Finish the file and rename it onto the path (again: nothing)."""
        if self._state == "closed":
            return
        if self._state == "aborted":
            raise RuntimeError("close on a list writer that was aborted")
        self._guarded(self._finish)

        def publish() -> None:
            self._file.flush()
            # On disk before the rename, or a crash could leave an empty file under
            # the final name.
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._temporary, self.path)

        self._guarded(publish)
        self._state = "closed"

    def abort(self) -> None:
        """Remove the partial file; a closed writer's file is kept."""
        if self._state != "open":
            return
        self._state = "aborted"
        with contextlib.suppress(Exception):
            self._discard()
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            os.remove(self._temporary)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _guarded(self, step: Callable[..., None], *args: object) -> None:
        """Run ``step``; should it fail, abort, an OSError as :class:`InvalidInput`."""
        try:
            step(*args)
        except OSError as exc:
            self.abort()
            raise _cannot_write(self.path, exc.strerror or str(exc)) from None
        except BaseException:
            self.abort()
            raise

    @abstractmethod
    def _start(self) -> None:
        """Write the header row."""

    @abstractmethod
    def _write(self, values: Sequence[object]) -> None:
        """Write one row of values."""

    @abstractmethod
    def _finish(self) -> None:
        """Write whatever the format puts after the rows, all into ``self._file``."""

    @abstractmethod
    def _discard(self) -> None:
        """Release what the format holds besides ``self._file`` (on abort)."""


class _CsvWriter(ListWriter):
    def _start(self) -> None:
        # "replace": a lone surrogate (which UTF-8 cannot encode) becomes "?" rather
        # than failing the export.
        self._text = io.TextIOWrapper(
            self._file, encoding="utf-8-sig", errors="replace", newline=""
        )
        self._csv = csv.writer(self._text, lineterminator="\r\n")
        self._csv.writerow([spreadsheet_text(column) for column in self.columns])

    def _write(self, values: Sequence[object]) -> None:
        self._csv.writerow([spreadsheet_text(value) for value in values])

    def _finish(self) -> None:
        self._text.flush()
        # Hands self._file back: closing the wrapper would close it before the fsync.
        self._text.detach()

    def _discard(self) -> None:
        # Nothing: the wrapper holds no file of its own, and closing self._file is enough.
        return


class _XlsxWriter(ListWriter):
    #: the title of the workbook's only sheet
    sheet_title = SHEET_TITLE

    def _start(self) -> None:
        # Here, not at the top: the CLI must start without loading openpyxl.
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font

        self._cell_type = WriteOnlyCell
        self._workbook = Workbook(write_only=True)
        self._sheet = self._workbook.create_sheet(self.sheet_title)
        bold = Font(bold=True)
        header = []
        for column in self.columns:
            cell = self._cell(column)
            cell.font = bold
            header.append(cell)
        self._sheet.append(header)

    def _cell(self, value: object) -> Any:
        text = workbook_text(spreadsheet_text(value))
        if not text:
            # An empty inline-string cell is not worth its XML: no cell reads as empty.
            return None
        cell = self._cell_type(self._sheet, value=text)
        # Text, whatever it looks like: openpyxl makes "=..." a formula (quoted
        # already, but this does not rely on it) and Excel would make "13812345678"
        # a number, losing the leading zeros of others.
        cell.data_type = "s"
        return cell

    def _write(self, values: Sequence[object]) -> None:
        self._sheet.append([self._cell(value) for value in values])

    def _finish(self) -> None:
        # Zips openpyxl's temporary sheet into self._file and removes it.
        self._workbook.save(self._file)

    def _discard(self) -> None:
        # openpyxl removes the sheet's temporary file when saving, or at interpreter
        # exit; a long-running process that aborts should not keep it until then.
        sheet = getattr(self, "_sheet", None)
        if sheet is None:
            return
        with contextlib.suppress(Exception):
            sheet.close()
        writer = getattr(sheet, "_writer", None)
        if writer is not None:
            writer.cleanup()


def open_list_writer(path: str | os.PathLike[str], columns: Sequence[str]) -> ListWriter:
    """A writer of a CSV or XLSX file at ``path``, by its extension, whose header row is
    ``columns``; see :class:`ListWriter`.

    Refuses with :class:`InvalidInput` (field ``--out``) a path whose extension is
    neither ``.csv`` nor ``.xlsx``, a directory, and a path that cannot be written
    (its directory missing or read-only).
    """
    path = os.fspath(path)
    lowered = path.lower()
    if lowered.endswith(".csv"):
        kind: type[ListWriter] = _CsvWriter
    elif lowered.endswith(".xlsx"):
        kind = _XlsxWriter
    else:
        raise InvalidInput(OUT_FIELD, f"{path!r} must end in .csv or .xlsx")
    if os.path.isdir(path):
        raise _cannot_write(path, "it is a directory")
    return kind(path, columns)
