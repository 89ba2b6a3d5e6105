"""Reading customer CSV files: encoding detection, streaming decoding, header mapping.

What Excel writes depends on the machine: UTF-8 with a BOM ("CSV UTF-8"), or
GB18030/GBK on Chinese Windows. The reader decides from the BOM or a sample (see
:func:`sniff_encoding`), then decodes line by line, so an undecodable line further
down stops the import at that row instead of at start-up or, worse, being silently
replaced. While the file is plain ASCII the choice does not matter (ASCII reads the
same in both), so a file whose first 64 KB are ASCII is decided at its first row
holding other bytes, without reading any row twice.

Whatever the file holds, memory stays bounded: only regular files are read, a line is
cut off at :data:`MAX_LINE_BYTES` while it is read, and a quoted field may run over
several lines (a multi-line address) only up to :data:`MAX_QUOTED_LINES` lines and
:data:`MAX_QUOTED_BYTES`, so that one unbalanced quote cannot swallow the file.

Row numbers are 1-based data rows: the header is not counted and neither are blank
lines (lines whose cells are all empty, such as ``,,,`` from Excel) nor the title rows
before the header (see :func:`find_header`). Rejected-row numbers, the summary's
``rows`` and decoding errors all use this numbering.

Which columns a table may have is a :class:`Vocabulary`; :data:`CUSTOMER_COLUMNS` is
the customer import's, and a plugin reading its own lists passes its own. Workbooks
are read by :mod:`recrm_core.xlsxsource` under the same header and row rules;
:func:`recrm_core.tabular.open_table` picks the reader from the file's bytes.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Self

from .errors import RecrmError
from .models import RejectedRow
from .regularfile import open_regular

#: how much of the file decides between UTF-8 and GB18030
SNIFF_BYTES = 64 * 1024
#: a sample with this share of valid multi-byte sequences is UTF-8 with a few bad rows
UTF8_VALID_SHARE = 0.95
#: the longest line read; longer ones stop the import at their row
MAX_LINE_BYTES = 1024 * 1024
#: how far a quoted field may run over line breaks before it counts as never closed
MAX_QUOTED_LINES = 100
MAX_QUOTED_BYTES = 64 * 1024
#: the csv module's limit on a field's characters while a row is read: no field within
#: the limits above reaches it (its own default, 128K, would stop the import at a long
#: cell with no way to resume; the value rules reject its row instead)
FIELD_CHARS = MAX_LINE_BYTES + MAX_QUOTED_BYTES
#: how much of the file's start tells UTF-16 without a BOM, and the share of its NUL
#: bytes that must fall on one side (odd places: little-endian, even: big-endian)
UTF16_SNIFF_BYTES = 4096
UTF16_NUL_SHARE = 0.9
#: the reason of a row rejected for invalid bytes in a mostly-UTF-8 file
INVALID_UTF8 = "not valid UTF-8"
#: how many title rows (report title, banner, export date) may precede the header
MAX_TITLE_ROWS = 10

#: header (compared as :func:`normalise_header` does) -> CustomerIn field
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
    "wechat_unionid": "wechat_unionid",
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
    "生日": "birth_date",
    "出生年月日": "birth_date",
    "来源": "source",
    "项目": "project",
    "客户类型": "persona",
    "预算": "budget",
    "置业顾问": "owner_staff",
    "微信unionid": "wechat_unionid",
}

#: the names listed when a header is refused (English first, then Chinese)
KNOWN_HEADERS: tuple[str, ...] = tuple(HEADER_ALIASES)

#: what a header may hold that does not count: spaces (ASCII, and the ideographic
#: U+3000 and NBSP, which NFKC makes ASCII), dashes, underscores, a stray BOM (a
#: UTF-8-with-BOM file read as plain UTF-8)
_NOT_COUNTED = re.compile("[\\s\\-_\ufeff]+")
#: a trailing "(unit)" of a normalised header (NFKC has made full-width brackets ASCII)
_UNIT = re.compile(r"(.+?)\(([^()]+)\)")

#: the units a :class:`Vocabulary` may give a field (``units``), and how a header may
#: spell each after NFKC (which makes ㎡ and m² "m2"): amounts in 元, areas in square
#: metres, prices per square metre. A header so labelled is the field's own column.
UNIT_SPELLINGS: dict[str, frozenset[str]] = {
    "元": frozenset({"元"}),
    "m2": frozenset({"m2", "平方米", "平米"}),
    "元/m2": frozenset({"元/m2", "元/平方米", "元/平米"}),
}
#: unit -> the labels that scale it, and by how much: figures so labelled, read in
#: the unit, would be that many times too small, so the file is refused
SCALED_UNITS: dict[str, dict[str, str]] = {
    "元": {"万元": "10,000", "万": "10,000", "千元": "1,000", "亿元": "100,000,000",
          "亿": "100,000,000"},
    "元/m2": {"万元/m2": "10,000", "万元/平方米": "10,000", "万元/平米": "10,000"},
}


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
    there (exit 1). ``row`` is the data row, numbered like rejected rows; the rows
    before ``stopped_at`` (``row`` unless said otherwise) can be imported."""

    def __init__(self, row: int, reason: str, stopped_at: int | None = None) -> None:
        where = "the header" if row == 0 else f"row {row}"
        super().__init__(f"{where}: {reason}")
        self.row = row
        self.reason = reason
        self.stopped_at = row if stopped_at is None else stopped_at


class UndecodableSample(ImportReadError):
    """Neither UTF-8 nor GB18030 reads the sample that decides the encoding. The rows
    from ``stopped_at`` (the sample's first row) on may be mis-read, so none of them
    is imported; when that is the first batch, nothing is (exit 2)."""


def normalise_header(cell: str) -> str:
    """How a header cell is compared: NFKC, lower-case, without the spaces, dashes and
    underscores people pad and join words with (see :data:`_NOT_COUNTED`): ``Birth
    Date`` == ``birth_date``, ``姓　名`` == ``姓 名`` == ``姓名``."""
    return _NOT_COUNTED.sub("", unicodedata.normalize("NFKC", cell).lower())


@dataclass(frozen=True)
class EncodingGuess:
    """What a sample says about the file's encoding."""

    #: None: the sample is plain ASCII and the file goes on, so a later row decides
    encoding: str | None
    #: mostly UTF-8: each row holding an invalid sequence is rejected, not the file
    rejects_invalid: bool = False
    #: neither UTF-8 nor GB18030 reads the sample; ``encoding`` is the one that read
    #: further, so that the stop names the row of the first undecodable bytes
    undecodable: bool = False


_ESCAPED = re.compile("[\udc80-\udcff]+")  # undecodable bytes, as surrogateescape writes them
_MULTIBYTE = re.compile("[^\x00-\x7f\udc80-\udcff]")


def sniff_encoding(sample: bytes, complete: bool) -> EncodingGuess:
    """Decide the encoding from ``sample``: the start of the file or, when that is plain
    ASCII, the bytes from the first line holding anything else.

    A BOM means UTF-8; a UTF-16 BOM, or NUL bytes at every other place (UTF-16 saved
    without a BOM), is refused with advice. Otherwise UTF-8 when the sample decodes as
    UTF-8, or when at least :data:`UTF8_VALID_SHARE` of its non-ASCII sequences (each
    valid multi-byte character, each run of invalid bytes) are valid UTF-8: a few
    damaged rows do not make a UTF-8 file GB18030, which decodes almost any bytes and so
    proves nothing by itself. Then GB18030 when it decodes the sample; else the sample
    is undecodable. Unless ``complete`` (the sample ends the file), its last character
    may be cut, which is tolerated.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return EncodingGuess("utf-8-sig")
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _utf16_nuls(sample):
        # Excel's "Unicode Text"; its lines cannot be split on b"\n" like the others.
        raise ImportFileError(
            "the file is UTF-16 (Excel 'Unicode Text'); save it as 'CSV UTF-8' and import that"
        )
    if sample.isascii():
        return EncodingGuess("utf-8" if complete else None)
    utf8_stop = _decodes_to(sample, "utf-8", complete)
    if utf8_stop is None:
        return EncodingGuess("utf-8")
    text = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(sample, complete)
    invalid = len(_ESCAPED.findall(text))
    valid = len(_MULTIBYTE.findall(text))
    if valid >= UTF8_VALID_SHARE * (valid + invalid):
        return EncodingGuess("utf-8", rejects_invalid=True)
    gb_stop = _decodes_to(sample, "gb18030", complete)
    if gb_stop is None:
        return EncodingGuess("gb18030")
    return EncodingGuess("gb18030" if gb_stop > utf8_stop else "utf-8", undecodable=True)


def _utf16_nuls(sample: bytes) -> bool:
    """Whether ``sample`` is UTF-16 without a BOM: NUL bytes (the high byte of each
    comma, digit and line break) at every other place. UTF-8 and GB18030 text holds no
    NUL; a damaged file's stray ones fall on either side."""
    head = sample[:UTF16_SNIFF_BYTES]
    nuls = head.count(0)
    if nuls == 0 or nuls < len(head) // 16:
        return False
    return max(head[0::2].count(0), head[1::2].count(0)) >= UTF16_NUL_SHARE * nuls


def _decodes_to(sample: bytes, encoding: str, complete: bool) -> int | None:
    """None when ``sample`` decodes, else the offset of its first undecodable byte."""
    try:
        codecs.getincrementaldecoder(encoding)("strict").decode(sample, complete)
    except UnicodeDecodeError as exc:
        return exc.start
    return None


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


class _Unreadable(Exception):
    """Raised while reading lines; :meth:`CsvSource._records`, which knows the row,
    turns it into ImportReadError. ``reason`` reads after "row N: "."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Vocabulary:
    """The columns a table may have: header names -> the field each one feeds.

    ``aliases`` maps every accepted header spelling to its field (several spellings
    may feed one field; names are compared as :func:`normalise_header` does, so
    ``Birth Date`` == ``birth_date``). A field named in ``lists`` may be fed by several
    columns (手机 and 联系电话): their values then come as one list under the name
    ``lists`` gives it, while a single such column comes as a plain value. A field in
    ``text_only`` holds digits a number-typed workbook cell has lost (Excel keeps 15
    significant digits), so such a cell rejects its row.

    ``units`` gives the unit a field's values are in (a key of :data:`UNIT_SPELLINGS`:
    ``{"list_price": "元", "gross_area": "m2"}``): a header naming the field may then
    end with that unit (``总价(元)``, ``建筑面积(㎡)``), and one ending with a unit
    that scales it (``总价(万元)``) refuses the file, naming the factor; any other
    field with a unit (``姓名(元)``) is an unknown column. A vocabulary that does not
    say (``units=None``) cannot tell which fields hold money or area, so each of its
    fields takes any of those units.
    """

    def __init__(
        self,
        aliases: Mapping[str, str],
        *,
        lists: Mapping[str, str] | None = None,
        text_only: Iterable[str] = (),
        units: Mapping[str, str] | None = None,
    ) -> None:
        self.aliases = {normalise_header(name): target for name, target in aliases.items()}
        #: the spellings listed when a header is refused, in the order given
        self.known: tuple[str, ...] = tuple(aliases)
        self.lists = dict(lists or {})
        self.text_only = frozenset(text_only)
        strange = sorted(set((units or {}).values()) - set(UNIT_SPELLINGS))
        if strange:
            raise ValueError(f"unknown unit(s) {strange}; a unit is one of "
                             f"{sorted(UNIT_SPELLINGS)}")
        self.units = None if units is None else dict(units)

    def field_of(self, cell: str) -> str | None:
        """The field a header cell names, or None when it names none; ImportFileError
        (exit 2) when it names a field in a unit that scales the field's values."""
        key = normalise_header(cell)
        found = self.aliases.get(key)
        labelled = _UNIT.fullmatch(key) if found is None else None
        if labelled is None:
            return found
        base, label = labelled.groups()
        found = self.aliases.get(base)
        if found is None:
            return None
        for unit in self._units_of(found):
            if label in UNIT_SPELLINGS[unit]:
                return found
            scale = SCALED_UNITS.get(unit, {}).get(label)
            if scale is not None:
                text = unicodedata.normalize("NFKC", cell).strip()
                name = text[: text.rindex("(")].strip()
                raise ImportFileError(
                    f"column {cell.strip()!r} is in {label}, but {name!r} holds {unit}:"
                    f" its figures would be read {scale} times too small; convert them"
                    f" to {unit} and name the column {name!r}")
        return None

    def _units_of(self, field: str) -> Iterable[str]:
        """The units a header naming ``field`` may end with."""
        if self.units is None:
            return UNIT_SPELLINGS
        unit = self.units.get(field)
        return () if unit is None else (unit,)


#: the customer import's columns
CUSTOMER_COLUMNS = Vocabulary(HEADER_ALIASES, lists={"mobile": "mobiles"},
                              text_only=["id_card", "wechat_unionid"],
                              units={"budget": "元"})


@dataclass
class Header:
    """The mapped header: which cell feeds which field."""

    #: (column index, field) of each field fed by one column
    columns: list[tuple[int, str]]
    #: list name -> the column indexes feeding it (a field fed by several columns)
    lists: dict[str, list[int]] = field(default_factory=dict)
    #: column index -> the field it feeds, for every mapped column
    fields: dict[int, str] = field(default_factory=dict)

    @property
    def width(self) -> int:
        """How many leading cells of a row hold mapped columns."""
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

    def values(self, cells: Sequence[str]) -> dict[str, Any]:
        """A row's non-empty cells by field (see :meth:`beyond` for cells to the right
        of the header)."""
        width = len(cells)
        values: dict[str, Any] = {}
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
    return map_header(meant or first, vocabulary)


class FileSource:
    """What the CSV and the workbook readers share: the regular file they hold open
    (``file``, when already opened by :func:`open_regular_file`; ``with`` closes it)
    and the vocabulary naming the columns."""

    def __init__(
        self, path: str | os.PathLike[str], vocabulary: Vocabulary, file: IO[bytes] | None
    ) -> None:
        self.path = os.fspath(path)
        self.vocabulary = vocabulary
        self._fh = open_regular_file(self.path) if file is None else file

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CsvSource(FileSource):
    """A CSV file, read as a stream of ``(row, {field: text})``.

    Opening refuses anything but a regular file, reads and maps the header (raising
    the exit-2 errors before anything is written); iterating decodes line by line and
    raises :class:`ImportReadError` at the first row that cannot be read. A row
    holding invalid bytes in a mostly-UTF-8 file comes as ``(row, RejectedRow)``.
    ``vocabulary`` names the columns (the customer import's by default); ``file`` is
    the path already opened by :func:`open_regular_file`, which the source then owns.
    """

    kind = "csv"
    #: a CSV file has no sheet; see :class:`recrm_core.xlsxsource.XlsxSource`
    sheet: str | None = None
    sheet_row: int | None = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        encoding: str | None = None,
        *,
        vocabulary: Vocabulary = CUSTOMER_COLUMNS,
        file: IO[bytes] | None = None,
    ) -> None:
        super().__init__(path, vocabulary, file)
        try:
            try:
                self.total_bytes = os.fstat(self._fh.fileno()).st_size
                head = self._fh.read(SNIFF_BYTES)
            except OSError as exc:
                raise ImportFileError(f"cannot read {self.path!r}: {exc.strerror}") from None
            if encoding is not None:
                guess = EncodingGuess(check_encoding(encoding))
            else:
                guess = sniff_encoding(head, complete=len(head) < SNIFF_BYTES)
            self.bytes_read = 0
            self.rows_read = 0
            #: the file's encoding; None while every line so far was plain ASCII
            self.encoding: str | None = None
            self._codec = "ascii"
            self._rejects_invalid = False
            #: the row from which rows are held back: an undecodable sample starts there
            self._undecided_row: int | None = None
            #: set while reading a row with invalid bytes (or held back): not yielded
            self._hold = False
            self._header_done = False
            #: lines the reader had taken when it finished the last record
            self._record_end = 0
            bom = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
            if guess.encoding != "utf-8-sig":
                bom = 0  # an explicit --encoding utf-8 keeps it: the header drops it
            self._fh.seek(bom)
            self.bytes_read = bom
            self._decided(guess)
            self._reader = csv.reader(self._decoded_lines(), delimiter=_delimiter(head))
            self.header = self._read_header()
        except BaseException:
            self._fh.close()
            raise

    # -- decoding ---------------------------------------------------------------------
    def _decided(self, guess: EncodingGuess) -> None:
        if guess.encoding is None:
            return
        self.encoding = guess.encoding
        # The BOM was skipped: decoding each line as utf-8-sig would drop a U+FEFF
        # at the start of any line.
        self._codec = "utf-8" if guess.encoding == "utf-8-sig" else guess.encoding
        self._rejects_invalid = guess.rejects_invalid
        if guess.undecodable:
            self._undecided_row = self.rows_read + 1
            self._hold = True

    def _decoded_lines(self) -> Iterator[str]:
        # b"\n" never occurs inside a character of an ASCII-safe encoding (see
        # check_encoding), so the file is split into lines first and each line decoded
        # on its own; a character cut at the end of the file fails its own line.
        readline = self._fh.readline
        limit = MAX_LINE_BYTES + 1
        codec = self._codec
        taken = 0  # lines given to the reader
        record_bytes = 0  # bytes of the record being read, once it runs over lines
        while raw := readline(limit):
            size = len(raw)
            if size > MAX_LINE_BYTES:
                raise _Unreadable(f"has a line longer than {MAX_LINE_BYTES // 1024} KB")
            self.bytes_read += size
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError as exc:
                text = self._undecodable_line(raw, exc)
                codec = self._codec
            if taken > self._record_end:
                # The reader asks for another line before finishing its record: only an
                # open quoted field does that.
                record_bytes += size
                if taken - self._record_end >= MAX_QUOTED_LINES:
                    raise _Unreadable(
                        f"opens a quoted field that runs over more than {MAX_QUOTED_LINES}"
                        " lines; close the quote"
                    )
                if record_bytes > MAX_QUOTED_BYTES:
                    raise _Unreadable(
                        f"opens a quoted field longer than {MAX_QUOTED_BYTES // 1024} KB"
                        " over several lines; close the quote"
                    )
            else:
                record_bytes = size
            taken += 1
            yield text
        if taken > self._record_end:
            raise _Unreadable("opens a quoted field that is never closed; close the quote")

    def _undecodable_line(self, raw: bytes, exc: UnicodeDecodeError) -> str:
        """The text of a line its codec refused, or _Unreadable."""
        if self.encoding is None:
            # The first line that is not plain ASCII: it and the bytes after it are
            # the sample. They are peeked, then read as lines: no row is read twice.
            back = self._fh.tell()
            wanted = max(SNIFF_BYTES - len(raw), 0)
            more = self._fh.read(wanted)
            self._fh.seek(back)
            self._decided(sniff_encoding(raw + more, complete=len(more) < wanted))
            try:
                return raw.decode(self._codec)
            except UnicodeDecodeError as again:
                exc = again
        if self._rejects_invalid:
            self._hold = True
            return raw.decode(self._codec, "surrogateescape")
        codec = self.encoding if self._undecided_row is None else "UTF-8 or GB18030"
        raise _Unreadable(
            f"cannot be decoded as {codec} (byte 0x{raw[exc.start]:02x});"
            " fix the file or pass --encoding"
        )

    def _records(self) -> Iterator[list[str]]:
        """Non-blank CSV records; ImportReadError numbered like data rows."""
        reader = self._reader
        field_size_limit = csv.field_size_limit
        while True:
            try:
                # The limit is the process's: raised only while this reader reads.
                limit = field_size_limit(FIELD_CHARS)
                try:
                    cells = next(reader)
                finally:
                    field_size_limit(limit)
            except StopIteration:
                return
            except _Unreadable as exc:
                raise self._read_error(exc.reason) from None
            except csv.Error as exc:
                raise self._read_error(f"is not valid CSV ({exc})") from None
            self._record_end = reader.line_num
            # Excel writes ",,,," for rows it considers used; such rows are blank too.
            if not cells or not "".join(cells).strip():
                continue
            yield cells

    def _read_error(self, reason: str) -> ImportReadError:
        if not self._header_done:
            return ImportReadError(0, reason)
        row = self.rows_read + 1
        if self._undecided_row is not None:
            return UndecodableSample(row, reason, stopped_at=self._undecided_row)
        return ImportReadError(row, reason)

    def _read_header(self) -> Header:
        def readable() -> Iterator[list[str]]:
            for cells in self._records():
                if self._hold and self._undecided_row is None:
                    raise ImportReadError(0, f"is {INVALID_UTF8}")
                yield cells

        try:
            header = find_header(readable(), self.vocabulary)
        except ImportReadError as exc:
            # Nothing was imported and nothing could be: the file is unusable (exit 2).
            raise ImportFileError(f"{self.path!r}: the header {exc.reason}") from None
        self._header_done = True
        return header

    # -- rows -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[int, dict[str, Any] | RejectedRow]]:
        values, beyond, width = self.header.values, self.header.beyond, self.header.width
        for cells in self._records():
            self.rows_read += 1
            if self._hold:
                if self._undecided_row is not None:
                    # The sample cannot be decoded: read on to the row that fails.
                    continue
                self._hold = False
                yield self.rows_read, self._invalid_row(cells)
                continue
            yield self.rows_read, (beyond(self.rows_read, cells) if len(cells) > width
                                   else None) or values(cells)

    def _invalid_row(self, cells: list[str]) -> RejectedRow:
        """A row holding invalid bytes, rejected under the field of the first such cell."""
        field = next(
            (self.header.field_at(i) for i, cell in enumerate(cells) if _ESCAPED.search(cell)),
            "",
        )
        return RejectedRow(row=self.rows_read, field=field, reason=INVALID_UTF8)



def _delimiter(head: bytes) -> str:
    """``,`` unless the first line holding a delimiter (a title row may hold none) has
    no comma but a tab or a semicolon."""
    first = next((line for line in head.split(b"\n") if any(d in line for d in b",\t;")),
                 b"")
    if b"," not in first:
        for candidate in ("\t", ";"):
            if candidate.encode() in first:
                return candidate
    return ","


def open_regular_file(path: str) -> IO[bytes]:
    """Open ``path`` for reading, or ImportFileError (exit 2) unless it is (or links to)
    a regular file."""
    return open_regular(path, ImportFileError)
