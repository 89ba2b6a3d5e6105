"""Reports: a registry any plugin adds to (``recrm_reports``), the core's own
reports, and their outputs (table, JSON, CSV, XLSX, charts, the dashboard).

Cheap to import (the builtin plugin module lives here and loads with every CRM):
the model is imported on first use of a name below, the reports' queries when they
run, matplotlib only when drawing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import (
        BY_CHOICES,
        By,
        Cell,
        Chart,
        Column,
        Report,
        ReportInfo,
        ReportOption,
        ReportRequest,
        ReportSpec,
        Series,
    )

__all__ = ["BY_CHOICES", "By", "Cell", "Chart", "Column", "Report", "ReportInfo",
           "ReportOption", "ReportRequest", "ReportSpec", "Series"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
