"""The errors file: one CSV line per rejected row, for a person to fix and re-import.

UTF-8 with a BOM, so that Excel shows Chinese reasons. The columns are
``row,field,reason``; for a workbook also ``sheet_row``, the row number Excel shows
(``row`` counts data rows only, as every rejected row and the summary do). Each line
is flushed as it is written, so the file is complete up to the last committed batch
even when an import stops.
"""

from __future__ import annotations

import csv
import os
from typing import IO

from .csvsource import ImportFileError
from .models import RejectedRow
from .regularfile import output_refusal

#: the columns of every errors file; a workbook's adds SHEET_ROW
COLUMNS = ("row", "field", "reason")
SHEET_ROW = "sheet_row"


class ErrorsFile:
    """Writes rejected rows to ``path``; use as a context manager::

        with ErrorsFile("rejected.csv", sheet_rows=True) as errors:
            errors.write(RejectedRow(row=3, field="mobile", reason="...", sheet_row=5))

    Opening truncates ``path`` and writes the header line; a path that cannot be
    written, or that is (or links to) ``reading``, the file the rows come from, is
    :class:`~recrm_core.ImportFileError` (exit 2). With ``sheet_rows``, each line also
    gives the row's ``sheet_row`` (empty when unknown).
    """

    def __init__(self, path: str | os.PathLike[str], *, sheet_rows: bool = False,
                 reading: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path)
        self.sheet_rows = sheet_rows
        self.reading = reading
        self._fh: IO[str] | None = None

    def __enter__(self) -> ErrorsFile:
        refusal = output_refusal(self.path)
        if refusal is not None:  # opening a FIFO would wait for a reader forever
            raise ImportFileError(f"cannot write {self.path!r}: {refusal}")
        if self.reading is not None and _same_file(self.reading, self.path):
            # Opening the errors file for writing would truncate the file being read;
            # every import (customers, a plugin's lists) opens its errors file here.
            raise ImportFileError(f"the errors file {self.path!r} is the file being imported")
        try:
            self._fh = open(self.path, "w", encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise ImportFileError(f"cannot write {self.path!r}: {exc.strerror}") from None
        self._writer = csv.writer(self._fh)
        self._writer.writerow([*COLUMNS, SHEET_ROW] if self.sheet_rows else COLUMNS)
        self._fh.flush()
        return self

    def write(self, rejected: RejectedRow) -> None:
        if self._fh is None:
            raise RuntimeError("ErrorsFile.write outside its with block")
        line: list[object] = [rejected.row, rejected.field, rejected.reason]
        if self.sheet_rows:
            line.append("" if rejected.sheet_row is None else rejected.sheet_row)
        self._writer.writerow(line)
        self._fh.flush()

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # the errors file does not exist yet
        return False
