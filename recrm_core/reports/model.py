"""What a report is: its options, its result and how its chart is drawn.

A report is registered (``recrm_reports`` hook) as a :class:`ReportSpec`; running it
with a :class:`ReportRequest` returns a :class:`Report`: a title, typed columns,
rows of plain values, and a :class:`Chart` saying how to draw it. The table, JSON,
CSV, XLSX, SVG/PNG and the dashboard are all made from that one model, so a plugin's
report gets every output for free.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..models import Actor

#: the period vocabulary every report (and every command from now on) uses
By = Literal["month", "quarter", "year", "all"]
BY_CHOICES: tuple[By, ...] = ("month", "quarter", "year", "all")

#: a cell: what a database aggregate returns, nothing richer (JSON, CSV and XLSX
#: carry each as it is)
Cell = str | int | float | Decimal | bool | dt.date | None

#: the standard options a report may accept; every report command has the same
#: spelling for them (``--project``, ``--from``, ``--to``, ``--by``)
StandardOption = Literal["project", "from", "to", "by"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ReportOption(_Model):
    """An option of a report beyond the standard ones (e.g. ``department``)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$",
                      description="the option's name: ``--name`` on the command line, "
                                  "``?name=`` in the API")
    help: str
    kind: Literal["text", "int", "date", "choice"] = "text"
    choices: tuple[str, ...] = ()
    default: str | None = None


class Column(_Model):
    """One column of a report's table."""

    key: str = Field(description="the row key holding this column's values")
    title: str = Field(description="the heading shown in tables, files and charts")
    kind: Literal["text", "int", "number", "percent", "money", "days", "hours",
                  "date", "bool"] = "text"


class Series(_Model):
    """One series of a chart: a numeric column drawn against the chart's ``x``."""

    column: str = Field(description="key of a numeric column")
    label: str | None = Field(default=None, description="legend text (default: the "
                                                        "column's title)")


class Chart(_Model):
    """How a report is drawn.

    - ``funnel``: one horizontal bar per row, widest first (``x`` names the stage);
    - ``bar``: grouped bars, one group per row, one bar per series;
    - ``line``: a trend, one point per row (``x`` is a period), one line per series,
      or one line per value of ``group`` when set (e.g. per project);
    - ``grid``: a scorecard: one cell per row, coloured by ``status`` (``ok``,
      ``behind``, ``none``) when the report has such a column.
    """

    kind: Literal["funnel", "bar", "line", "grid"]
    x: str = Field(description="key of the column giving the categories or periods")
    series: tuple[Series, ...] = ()
    group: str | None = Field(default=None, description="key of a column that splits "
                                                        "the rows into separate lines")
    title: str | None = None


class Report(BaseModel):
    """The result of running a report."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Cell]] = Field(default_factory=list)
    chart: Chart | None = None
    notes: list[str] = Field(default_factory=list,
                             description="lines shown under the table (targets, "
                                         "who is behind, what was left out)")
    parameters: dict[str, str] = Field(default_factory=dict,
                                       description="the options it ran with, as given")


class ReportRequest(_Model):
    """What a report is run with: the standard options and the report's own.

    ``start`` and ``end`` are both inclusive days; ``None`` is open-ended.
    """

    actor: Actor | None = None
    project: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    by: By = "all"
    options: dict[str, str] = Field(default_factory=dict)


class ReportSpec(_Model):
    """A registered report (see :func:`~recrm_core.hooks.specs.recrm_reports`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True,
                              defer_build=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$",
                      description="the core's are plain (``funnel``); a plugin's are "
                                  "``<plugin>.<name>``")
    title: str
    description: str
    standard: tuple[StandardOption, ...] = ("project", "from", "to", "by")
    options: tuple[ReportOption, ...] = ()
    run: Callable[[Any, ReportRequest], Report] = Field(
        description="``run(crm, request)`` returning the :class:`Report`")
    plugin: str | None = Field(default=None, description="who registered it; set by "
                                                         "the registry")

