"""Tables as they arrive — CSV files and Excel workbooks — read under one set of rules.

:func:`open_table` decides what a file is from its bytes, never its name (a CSV named
``.xlsx`` is read as CSV, a workbook named ``.csv`` as a workbook), refuses old binary
workbooks, and returns a :class:`TableSource`: the header mapped through a
:class:`~recrm_core.csvsource.Vocabulary`, then ``(row, values)`` per data row. The
customer import is built on it; a plugin importing its own lists uses it with its own
vocabulary, and :class:`~recrm_core.errorsfile.ErrorsFile` to report rejected rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Protocol

from .csvsource import (
    CUSTOMER_COLUMNS,
    CsvSource,
    Header,
    ImportFileError,
    Vocabulary,
    open_regular_file,
)
from .models import RejectedRow

#: how a zip archive (so an .xlsx workbook) starts; the second is an empty archive
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: how an OLE2 compound file starts: Excel 97-2003 .xls, WPS .et, encrypted .xlsx
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: how files often picked by mistake start (a scan, a photo of a form, an archive):
#: named for what they are rather than read as CSV text of garbled column names
OTHER_FORMATS = ((b"%PDF-", "a PDF document"), (b"\x89PNG", "a PNG image"),
                 (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
                 (b"\x1f\x8b", "a gzip archive"), (b"Rar!", "a RAR archive"),
                 (b"7z\xbc\xaf", "a 7-Zip archive"), (b"\x7fELF", "a program"))
#: how a table saved as a web page starts (after a BOM and blank space, any case): many
#: systems export one named .xls, and Excel opens it, so it looks like a workbook
WEB_TABLES = ((b"<!doctype html", "a web page (HTML)"), (b"<html", "a web page (HTML)"),
              (b"<table", "a web page (HTML)"), (b"<meta", "a web page (HTML)"),
              (b"<?xml", "an XML file (such as Excel's XML Spreadsheet 2003)"),
              (b"mime-version:", "a web archive (MHTML)"))
#: bytes read to tell what a file is
SNIFF_BYTES = 512


def _web_table(start: bytes) -> str | None:
    """What ``start`` (a file's first bytes) is when it is a table saved as a web page
    or XML rather than a workbook or CSV, else None."""
    head = start.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return next((kind for mark, kind in WEB_TABLES if head.startswith(mark)), None)


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
    fh = open_regular_file(name)
    try:
        try:
            start = fh.read(SNIFF_BYTES)
            fh.seek(0)
        except OSError as exc:
            raise ImportFileError(f"cannot read {name!r}: {exc.strerror}") from None
        magic = start[:len(OLE2_MAGIC)]
        if magic == OLE2_MAGIC:
            raise ImportFileError(
                f"{name!r} is an Excel 97-2003 (.xls) or WPS (.et) workbook, or a"
                " password-protected one; save it as .xlsx (or CSV) and import that"
            )
        what = next((kind for start, kind in OTHER_FORMATS if magic.startswith(start)), None)
        if what is not None:
            raise ImportFileError(f"{name!r} is {what}, not a CSV file or an .xlsx workbook")
        web = _web_table(start)
        if web is not None:  # read as CSV, its markup was "unknown column(s): <html>…"
            raise ImportFileError(f"{name!r} is {web}, not a CSV file or an .xlsx workbook;"
                                  " open it in Excel or WPS, save it as .xlsx (or CSV) and"
                                  " import that")
        if magic.startswith(ZIP_MAGIC):
            if encoding is not None:
                raise ImportFileError(
                    f"{name!r} is an Excel workbook; an encoding applies to CSV files only"
                )
            from .xlsxsource import XlsxSource  # zipfile and XML only for workbooks

            return XlsxSource(name, sheet, vocabulary=vocabulary, file=fh)
        if sheet is not None:
            raise ImportFileError(f"{name!r} is a CSV file, which has no sheets")
        return CsvSource(name, encoding, vocabulary=vocabulary, file=fh)
    except BaseException:
        fh.close()
        raise


__all__ = ["OLE2_MAGIC", "ZIP_MAGIC", "TableSource", "open_table"]
