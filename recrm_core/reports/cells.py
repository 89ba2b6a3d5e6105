"""How a report's values read: one rule per column kind, for the terminal table, the
dashboard and the charts' labels (JSON, CSV and XLSX carry the values themselves)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

from .model import Cell

#: Excel's number format per column kind (the XLSX cells stay numbers)
XLSX_FORMATS = {"int": "#,##0", "number": "#,##0.00", "percent": "0.0%",
                "money": "#,##0.00", "days": "0.0", "hours": "0.0", "date": "yyyy-mm-dd"}
#: the kinds whose values are numbers (drawn, summed by a spreadsheet)
NUMERIC = frozenset({"int", "number", "percent", "money", "days", "hours"})


def show(value: Cell, kind: str) -> str:
    """``value`` as a person reads it in a column of ``kind``: a percent column holds
    a fraction (0.253 reads 25.3%), money has thousands separators and two decimals,
    days and hours one decimal; a value that is not what its kind says reads as it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, int | float | Decimal) or kind not in NUMERIC:
        return str(value)
    if kind == "percent":
        return f"{value * 100:.1f}%"
    if kind == "money":
        return f"{value:,.2f}"
    if kind in ("days", "hours"):
        return f"{value:,.1f}"
    if isinstance(value, int) or (kind == "int" and math.isfinite(value) \
            and value == int(value)):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")
