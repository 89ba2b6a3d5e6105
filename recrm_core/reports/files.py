"""A report written to a file: CSV and XLSX for Excel users, SVG and PNG charts.

Every file is written whole or not at all (beside its path, then renamed: the
machinery of :mod:`recrm_core.listexport`, whose formula-injection rule applies to the
text here too). CSV carries each value as written (UTF-8 with a BOM, CRLF); XLSX keeps
numbers and dates typed, shown in the column's format (a percent column holds
fractions shown as ``25.0%``), and puts the report's notes on a second sheet.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

from ..listexport import _CsvWriter, _XlsxWriter, spreadsheet_text, workbook_text
from ..listexport import write_bytes_atomically as write_bytes
from .cells import NUMERIC, XLSX_FORMATS
from .model import Report

__all__ = ["write_chart", "write_csv", "write_xlsx"]


def plain_text(value: object) -> str:
    """``value`` as text before :func:`spreadsheet_text` quotes it."""
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _rows(report: Report) -> list[list[object]]:
    keys = [c.key for c in report.columns]
    return [[row.get(key) for key in keys] for row in report.rows]


def write_csv(report: Report, path: str | os.PathLike[str]) -> None:
    """The report's table as CSV at ``path`` (headers are the columns' titles)."""
    with _CsvWriter(os.fspath(path), [c.title for c in report.columns]) as out:
        for values in _rows(report):
            out.write_row(values)


class _ReportXlsx(_XlsxWriter):
    """A sheet named after the report whose cells keep their types."""

    def __init__(self, path: str, report: Report) -> None:
        # Excel refuses []:*?/\ in a sheet title and more than 31 characters.
        self.sheet_title = re.sub(r"[\[\]:*?/\\]", "_", report.name)[:31] or "report"
        self.kinds = [c.kind for c in report.columns]
        self.notes = list(report.notes)
        super().__init__(path, [c.title for c in report.columns])

    def _write(self, values: Sequence[object]) -> None:
        self._sheet.append([self._typed(value, kind)
                            for value, kind in zip(values, self.kinds, strict=True)])

    def _typed(self, value: object, kind: str) -> Any:
        if isinstance(value, bool):
            return self._cell_type(self._sheet, value=value)
        if isinstance(value, int | float | Decimal) and kind in NUMERIC:
            cell = self._cell_type(self._sheet, value=float(value)
                                   if isinstance(value, Decimal) else value)
            cell.number_format = XLSX_FORMATS[kind]
            return cell
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            cell = self._cell_type(self._sheet, value=value)
            cell.number_format = XLSX_FORMATS["date"]
            return cell
        return self._text_cell(value)

    def _text_cell(self, value: object) -> Any:
        """Text as a string cell; formula-like text keeps its characters and gets the
        quotePrefix style instead of a visible ``'`` (a string cell is never run as a
        formula; the style also keeps Excel from making one of it when edited)."""
        cell = self._cell(value)
        if cell is None:
            return None
        quoted = spreadsheet_text(value)
        if quoted != plain_text(value):
            cell.value = workbook_text(quoted[1:])
            cell.data_type = "s"
            cell.quotePrefix = True
        return cell

    def _finish(self) -> None:
        if self.notes:
            sheet = self._workbook.create_sheet("notes")
            for note in self.notes:
                sheet.append([workbook_text(spreadsheet_text(note))])
        super()._finish()


def write_xlsx(report: Report, path: str | os.PathLike[str]) -> None:
    """The report's table as an Excel workbook at ``path``."""
    with _ReportXlsx(os.fspath(path), report) as out:
        for values in _rows(report):
            out.write_row(values)


def write_chart(report: Report, path: str | os.PathLike[str], fmt: Literal["svg", "png"],
                font_setting: str | None = None) -> None:
    """The report's chart at ``path``; a PNG needs a CJK font (``font_setting`` is
    ``[reports] font``; :class:`~recrm_core.reports.charts.NoCjkFont` without one)."""
    from .charts import find_cjk_font, render

    font = find_cjk_font(font_setting) if fmt == "png" else None
    write_bytes(path, render(report, fmt, font))
