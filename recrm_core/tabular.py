"""Tables as they arrive — CSV files and Excel workbooks — read under one set of rules.

:func:`open_table` decides what a file is from its bytes, never its name (a CSV named
``.xlsx`` is read as CSV, a workbook named ``.csv`` as a workbook), refuses old binary
workbooks, and returns a :class:`TableSource`: the header mapped through a
:class:`~recrm_core.csvsource.Vocabulary`, then ``(row, values)`` per data row. The
customer import is built on it; a plugin importing its own lists uses it with its own
vocabulary, and :class:`~recrm_core.errorsfile.ErrorsFile` to report rejected rows.

Whatever the vocabulary, a header cell is also read as people pad and label it (see
:class:`HeaderSpellings`): spaces inside it (``姓　名``, ``楼 层``) do not count, a unit
that leaves the value's scale alone (``建筑面积(㎡)``, ``总价（元）``) is dropped while
one that changes it (``总价(万元)``) refuses the file, and :data:`HEADER_SYNONYMS`
(``生日``) read as the spelling the vocabulary knows.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator
from typing import Any, Protocol

from .csvsource import (
    CUSTOMER_COLUMNS,
    CsvSource,
    Header,
    ImportFileError,
    Vocabulary,
    normalise_header,
    open_regular_file,
)
from .models import RejectedRow

#: how a zip archive (so an .xlsx workbook) starts; the second is an empty archive
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: how an OLE2 compound file starts: Excel 97-2003 .xls, WPS .et, encrypted .xlsx
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


#: header spellings read as the one a vocabulary knows (compared as
#: :func:`~recrm_core.csvsource.normalise_header` does)
HEADER_SYNONYMS: dict[str, str] = {
    "生日": "出生日期",
    "出生年月日": "出生日期",
}
#: units a header may end with that leave its values as they are read: amounts in 元,
#: areas in square metres, prices per square metre (NFKC has made ㎡ and m² "m2")
NEUTRAL_UNITS = frozenset({"元", "m2", "平方米", "平米", "元/m2", "元/平方米", "元/平米"})
#: units that scale the values, and by how much: read as 元 its figures would be
#: that many times too small
SCALED_UNITS: dict[str, str] = {"万元": "10,000", "万": "10,000", "千元": "1,000",
                                "亿元": "100,000,000", "亿": "100,000,000",
                                "万元/m2": "10,000", "万元/平方米": "10,000"}
#: a trailing "(unit)" of a header cell (NFKC has made full-width brackets ASCII)
_UNIT = re.compile(r"(.+?)\(([^()]+)\)")
_SPACES = re.compile(r"\s+")
_SYNONYMS = {normalise_header(name): known for name, known in HEADER_SYNONYMS.items()}


class HeaderSpellings(Vocabulary):
    """``vocabulary``, reading its header cells also as people pad and label them.

    A cell the vocabulary does not know is tried without its inner spaces (ASCII, the
    ideographic U+3000 and NBSP, which NFKC makes ASCII), then without a trailing
    unit in :data:`NEUTRAL_UNITS`, then through :data:`HEADER_SYNONYMS`; the first
    spelling the vocabulary knows is read. A known header with a unit in
    :data:`SCALED_UNITS` refuses the file (ImportFileError, exit 2): its figures are
    not in the unit the column holds, and nothing says so once they are imported. A
    cell none of these make known is left to ``vocabulary``, so that it is refused,
    or ignored by a vocabulary that ignores unknown columns, under its own name.
    """

    def __init__(self, vocabulary: Vocabulary) -> None:
        # not super().__init__: the tables are the wrapped vocabulary's own
        self.vocabulary = vocabulary
        self.aliases = vocabulary.aliases
        self.known = vocabulary.known
        self.lists = vocabulary.lists
        self.text_only = vocabulary.text_only

    def field_of(self, cell: str) -> str | None:
        return self.vocabulary.field_of(self.spelling(cell))

    def spelling(self, cell: str) -> str:
        """The spelling of ``cell`` the vocabulary knows, else ``cell``."""
        if normalise_header(cell) in self.aliases:
            return cell
        joined = _SPACES.sub("", unicodedata.normalize("NFKC", cell))
        known = self._known(joined)
        if known is not None:
            return known
        unit = _UNIT.fullmatch(joined)
        if unit is None:
            return cell
        base, label = unit.groups()
        known = self._known(base)
        if known is None:
            return cell
        if label.lower() in NEUTRAL_UNITS:
            return known
        scale = SCALED_UNITS.get(label)
        if scale is not None:
            raise ImportFileError(
                f"column {cell.strip()!r} is in {label}, but {known!r} holds 元: its"
                f" figures would be read {scale} times too small; convert them to 元 and"
                f" name the column {known!r}")
        return cell

    def _known(self, text: str) -> str | None:
        """``text`` or its synonym, whichever the vocabulary knows, else None."""
        for spelling in (text, _SYNONYMS.get(normalise_header(text))):
            if spelling is not None and normalise_header(spelling) in self.aliases:
                return spelling
        return None


class TableSource(Protocol):
    """What :func:`open_table` returns (a CsvSource or an XlsxSource)."""

    @property
    def path(self) -> str: ...
    #: "csv" or "xlsx"
    @property
    def kind(self) -> str: ...
    @property
    def header(self) -> Header: ...
    #: data rows read so far (numbered from 1 after the header, blank rows not counted)
    @property
    def rows_read(self) -> int: ...
    @property
    def bytes_read(self) -> int: ...
    @property
    def total_bytes(self) -> int: ...
    #: the sheet being read; None for a CSV file
    @property
    def sheet(self) -> str | None: ...
    #: the sheet row (as Excel numbers it) of the row last yielded; None for CSV
    @property
    def sheet_row(self) -> int | None: ...
    def __iter__(self) -> Iterator[tuple[int, dict[str, Any] | RejectedRow]]: ...
    def close(self) -> None: ...
    def __enter__(self) -> TableSource: ...
    def __exit__(self, *exc: object) -> None: ...


def open_table(
    path: str | os.PathLike[str],
    vocabulary: Vocabulary = CUSTOMER_COLUMNS,
    *,
    encoding: str | None = None,
    sheet: str | None = None,
) -> TableSource:
    """Open a CSV file or an .xlsx workbook and read its header.

    ``encoding`` is for CSV files (default: from the BOM or a sample), ``sheet`` for
    workbooks (default: the first visible sheet); giving either for the other kind is
    a usage error. Raises :class:`~recrm_core.ImportFileError` (exit 2) for whatever
    makes the file unreadable as a whole — not a regular file, an .xls/.et workbook, a
    damaged or hostile archive, a missing sheet, no header, a column given twice — and
    :class:`~recrm_core.UnknownColumns` for columns ``vocabulary`` does not know.
    """
    name = os.fspath(path)
    headers = HeaderSpellings(vocabulary)
    fh = open_regular_file(name)
    try:
        try:
            magic = fh.read(len(OLE2_MAGIC))
            fh.seek(0)
        except OSError as exc:
            raise ImportFileError(f"cannot read {name!r}: {exc.strerror}") from None
        if magic == OLE2_MAGIC:
            raise ImportFileError(
                f"{name!r} is an Excel 97-2003 (.xls) or WPS (.et) workbook, or a"
                " password-protected one; save it as .xlsx (or CSV) and import that"
            )
        if magic.startswith(ZIP_MAGIC):
            if encoding is not None:
                raise ImportFileError(
                    f"{name!r} is an Excel workbook; an encoding applies to CSV files only"
                )
            from .xlsxsource import XlsxSource  # zipfile and XML only for workbooks

            return XlsxSource(name, sheet, vocabulary=headers, file=fh)
        if sheet is not None:
            raise ImportFileError(f"{name!r} is a CSV file, which has no sheets")
        return CsvSource(name, encoding, vocabulary=headers, file=fh)
    except BaseException:
        fh.close()
        raise


__all__ = [
    "HEADER_SYNONYMS",
    "NEUTRAL_UNITS",
    "OLE2_MAGIC",
    "SCALED_UNITS",
    "ZIP_MAGIC",
    "HeaderSpellings",
    "TableSource",
    "open_table",
]
