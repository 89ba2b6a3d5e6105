"""Reading customer CSV files: encoding detection, streaming decoding, header mapping.

What Excel writes depends on the machine: UTF-8 with a BOM ("CSV UTF-8"), or
GB18030/GBK on Chinese Windows. The reader decides from the BOM or the first 64 KB,
then decodes line by line, so an undecodable line further down stops the import at
that row instead of at start-up or, worse, being silently replaced.

Row numbers are 1-based data rows: the header is not counted and neither are blank
lines (lines whose cells are all empty, such as ``,,,`` from Excel). Rejected-row
numbers, the summary's ``rows`` and decoding errors all use this numbering.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from .errors import RecrmError

#: how much of the file decides between UTF-8 and GB18030
SNIFF_BYTES = 64 * 1024

#: header (normalised: NFKC, trimmed, lower-case, spaces/dashes as ``_``) -> CustomerIn field
HEADER_ALIASES: dict[str, str] = {
    "name": "name",
    "mobile": "mobile",
    "id_card": "id_card",
    "email": "email",
    "gender": "gender",
    "birth_date": "birth_date",
    "source": "source",
    "project": "project",
    "persona": "persona",
    "budget": "budget",
    "owner_staff": "owner_staff",
    "external_id": "external_id",
    "source_system": "source_system",
    "姓名": "name",
    "客户姓名": "name",
    "手机": "mobile",
    "手机号": "mobile",
    "手机号码": "mobile",
    "联系电话": "mobile",
    "身份证": "id_card",
    "身份证号": "id_card",
    "身份证号码": "id_card",
    "证件号码": "id_card",
    "邮箱": "email",
    "电子邮箱": "email",
    "性别": "gender",
    "出生日期": "birth_date",
    "来源": "source",
    "项目": "project",
    "客户类型": "persona",
    "预算": "budget",
    "置业顾问": "owner_staff",
}

#: the names listed when a header is refused (English first, then Chinese)
KNOWN_HEADERS: tuple[str, ...] = tuple(HEADER_ALIASES)

_SEPARATORS = re.compile(r"[\s\-]+")


class ImportFileError(RecrmError):
    """The file cannot be imported at all (unreadable, no header, bad encoding name,
    a column given twice): a usage error, nothing was written."""

    exit_code = 2


class UnknownColumns(ImportFileError):
    """The header names columns the import does not know; nothing was written."""

    #: how many unknown names the message lists, and how much of each
    SHOWN = 10
    NAME_LIMIT = 40

    def __init__(self, unknown: list[str], known: list[str]) -> None:
        # A header of 100,000 columns must not become a message of 100,000 names.
        shown = ", ".join(
            name if len(name) <= self.NAME_LIMIT else name[: self.NAME_LIMIT - 1] + "…"
            for name in unknown[: self.SHOWN]
        )
        more = len(unknown) - self.SHOWN
        if more > 0:
            shown += f" and {more} more ({len(unknown)} in all)"
        super().__init__(f"unknown column(s): {shown}; known columns: {', '.join(known)}")
        self.unknown = unknown
        self.known = known


class ImportReadError(RecrmError):
    """A data row cannot be read (undecodable bytes, malformed CSV); the import stops
    there (exit 1). ``row`` is the data row, numbered like rejected rows."""

    def __init__(self, row: int, reason: str) -> None:
        where = "the header" if row == 0 else f"row {row}"
        super().__init__(f"{where}: {reason}")
        self.row = row
        self.reason = reason


def normalise_header(cell: str) -> str:
    """How a header cell is compared: NFKC, trimmed, lower-case, ``Birth Date`` ==
    ``birth_date``. A stray BOM (a UTF-8-with-BOM file read as plain UTF-8) is dropped."""
    text = unicodedata.normalize("NFKC", cell).replace("\ufeff", "").strip().lower()
    return _SEPARATORS.sub("_", text)


def sniff_encoding(head: bytes, complete: bool) -> str:
    """``utf-8-sig`` for a BOM; else UTF-8 when ``head`` decodes as UTF-8, else GB18030.

    ``head`` is the start of the file; unless ``complete`` (the whole file), its last
    character may be cut, which the incremental decoders tolerate.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode Text"; its lines cannot be split on b"\n" like the others.
        raise ImportFileError(
            "the file is UTF-16 (Excel 'Unicode Text'); save it as 'CSV UTF-8' and import that"
        )
    best, reached = "utf-8", -1
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)("strict").decode(head, final=complete)
        except UnicodeDecodeError as exc:
            # Neither fits: keep the one that got further; the read then stops
            # at the offending row with a clear message.
            if exc.start > reached:
                best, reached = encoding, exc.start
            continue
        return encoding
    return best


def check_encoding(name: str) -> str:
    """The canonical codec name for ``--encoding``, or ImportFileError (exit 2)."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ImportFileError(f"unknown encoding {name!r}") from None
    try:
        ascii_safe = "\n,\"".encode(info.name) == b"\n,\""
    except UnicodeError:
        ascii_safe = False
    if not ascii_safe:
        # Lines are split on b"\n" before decoding, so the encoding must keep ASCII as is.
        raise ImportFileError(
            f"encoding {name!r} is not supported for CSV (use UTF-8, GB18030 or GBK)"
        )
    return info.name


class _Undecodable(Exception):
    def __init__(self, error: UnicodeDecodeError) -> None:
        self.error = error


@dataclass
class Header:
    """The mapped header: which cell feeds which CustomerIn field."""

    columns: list[tuple[int, str]]
    #: several columns can hold mobiles (手机 and 联系电话): they all become ``mobiles``
    mobile_columns: list[int] = field(default_factory=list)


def map_header(cells: list[str]) -> Header:
    """Map header cells to fields; raise UnknownColumns / ImportFileError (exit 2)."""
    last = max((i for i, c in enumerate(cells) if normalise_header(c)), default=-1)
    if last < 0:
        raise ImportFileError("the file has no header row")
    columns: list[tuple[int, str]] = []
    mobiles: list[int] = []
    unknown: list[str] = []
    seen: dict[str, str] = {}
    for index, cell in enumerate(cells[: last + 1]):
        key = normalise_header(cell)
        target = HEADER_ALIASES.get(key)
        if target is None:
            unknown.append(cell.strip() or f"(empty header, column {index + 1})")
            continue
        if target == "mobile":
            mobiles.append(index)
            continue
        if target in seen:
            raise ImportFileError(
                f"columns {seen[target]!r} and {cell.strip()!r} both hold {target}"
            )
        seen[target] = cell.strip()
        columns.append((index, target))
    if unknown:
        raise UnknownColumns(unknown, list(KNOWN_HEADERS))
    if len(mobiles) == 1:
        columns.append((mobiles[0], "mobile"))
        mobiles = []
    return Header(columns=columns, mobile_columns=mobiles)


class CsvSource:
    """A customer CSV file, read as a stream of ``(row, {field: text})``.

    Opening reads and maps the header (raising the exit-2 errors before anything is
    written); iterating decodes line by line and raises :class:`ImportReadError` at
    the first row that cannot be read.
    """

    def __init__(self, path: str | os.PathLike[str], encoding: str | None = None) -> None:
        self.path = os.fspath(path)
        try:
            self._fh: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - closed by close()
            self.total_bytes = os.fstat(self._fh.fileno()).st_size
            head = self._fh.read(SNIFF_BYTES)
            self._fh.seek(0)
        except IsADirectoryError:
            raise ImportFileError(f"cannot read {self.path!r}: it is a directory") from None
        except OSError as exc:
            raise ImportFileError(f"cannot read {self.path!r}: {exc.strerror}") from None
        try:
            if encoding is not None:
                self.encoding = check_encoding(encoding)
            else:
                self.encoding = sniff_encoding(head, complete=len(head) < SNIFF_BYTES)
            self.bytes_read = 0
            self.rows_read = 0
            self._lines = self._decoded_lines()
            self._reader: Iterator[list[str]] | None = None
            self.header = self._read_header()
        except BaseException:
            self._fh.close()
            raise

    # -- decoding ---------------------------------------------------------------------
    def _decoded_lines(self) -> Iterator[str]:
        # b"\n" never occurs inside a UTF-8 or GB18030 multi-byte character, so the
        # file can be split into lines first and each line decoded on its own; the
        # decoder's state still carries over for safety.
        decode = codecs.getincrementaldecoder(self.encoding)("strict").decode
        for raw in self._fh:
            self.bytes_read += len(raw)
            try:
                yield decode(raw)
            except UnicodeDecodeError as exc:
                raise _Undecodable(exc) from None
        try:
            tail = decode(b"", True)
        except UnicodeDecodeError as exc:
            raise _Undecodable(exc) from None
        if tail:
            yield tail

    def _records(self) -> Iterator[list[str]]:
        """Non-blank CSV records; ImportReadError numbered like data rows."""
        assert self._reader is not None
        while True:
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except _Undecodable as exc:
                raise ImportReadError(
                    self.rows_read + 1 if self._header_done else 0,
                    f"cannot be decoded as {self.encoding} "
                    f"(byte 0x{exc.error.object[exc.error.start]:02x}); "
                    "fix the file or pass --encoding",
                ) from None
            except csv.Error as exc:
                raise ImportReadError(self.rows_read + 1, f"malformed CSV: {exc}") from None
            # Excel writes ",,,," for rows it considers used; such rows are blank too.
            if not cells or not "".join(cells).strip():
                continue
            yield cells

    def _read_header(self) -> Header:
        try:
            first = next(self._lines, None)
            while first is not None and not first.strip():
                first = next(self._lines, None)
        except _Undecodable:
            # Nothing was imported and nothing could be: an unreadable file (exit 2).
            raise ImportFileError(
                f"{self.path!r}: the header cannot be decoded as {self.encoding}; "
                "is it a CSV file? pass --encoding if it is"
            ) from None
        if first is None:
            raise ImportFileError(f"{self.path!r} is empty: no header row")
        delimiter = ","
        if "," not in first:
            for candidate in ("\t", ";"):
                if candidate in first:
                    delimiter = candidate
                    break

        def lines() -> Iterator[str]:
            yield first
            yield from self._lines

        self._header_done = False
        self._reader = csv.reader(lines(), delimiter=delimiter)
        for cells in self._records():
            self._header_done = True
            return map_header(cells)
        raise ImportFileError(f"{self.path!r} has no header row")

    # -- rows -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        columns = self.header.columns
        mobile_columns = self.header.mobile_columns
        for cells in self._records():
            self.rows_read += 1
            width = len(cells)
            values: dict[str, Any] = {}
            for index, name in columns:
                if index < width:
                    value = cells[index]
                    if value:
                        values[name] = value
            if mobile_columns:
                values["mobiles"] = [cells[i] for i in mobile_columns if i < width and cells[i]]
            yield self.rows_read, values

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CsvSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
