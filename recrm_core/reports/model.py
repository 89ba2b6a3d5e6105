"""What a report is: its options, its result and how its chart is drawn.

A report is registered (``recrm_reports`` hook) as a :class:`ReportSpec`; running it
with a :class:`ReportRequest` returns a :class:`Report`: a title, typed columns,
rows of plain values, and a :class:`Chart` saying how to draw it. The table, JSON,
CSV, XLSX, SVG/PNG and the dashboard are all made from that one model, so a plugin's
report gets every output for free.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..models import Actor
from ..roles import Role

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
                      description="the option's name: `--name` on the command line, "
                                  "`?name=` in the API")
    help: str = Field(description="one line for `--help` and the API's reference")
    kind: Literal["text", "int", "date", "choice"] = Field(
        default="text", description="what values it takes (checked before the report "
                                    "runs): text, a whole number, a day, or one of "
                                    "`choices`")
    choices: tuple[str, ...] = Field(default=(), description="the values of a choice")
    default: str | None = Field(default=None, description="the value when none is given "
                                                          "(filled in before it runs)")


class Column(_Model):
    """One column of a report's table."""

    key: str = Field(description="the row key holding this column's values")
    title: str = Field(description="the heading shown in tables, files and charts")
    kind: Literal["text", "int", "number", "percent", "money", "days", "hours",
                  "date", "bool"] = Field(
        default="text",
        description="how values are shown and typed in XLSX: `percent` holds a "
                    "fraction (0.25 shows as 25.0%), `money` yuan, `days` and "
                    "`hours` a number of them")


class Series(_Model):
    """One series of a chart: a numeric column drawn against the chart's ``x``."""

    column: str = Field(description="key of a numeric column")
    label: str | None = Field(default=None, description="legend text (default: the "
                                                        "column's title)")


class Chart(_Model):
    """How a report is drawn.

    - ``funnel``: one small funnel per value of ``facets`` (e.g. per project and
      period): a centred horizontal bar per stage (``x``), the first on top, each
      labelled with its share of the stage above in the same funnel;
    - ``bar``: grouped bars, one group per value of ``x``, one bar per series and
      value of ``group``; when the rows span several periods (``period``), a trend;
    - ``line``: a trend, periods (``x``) in time order, one line per series and value
      of ``group`` (e.g. per project);
    - ``grid``: a scorecard: one cell per row, coloured by ``status`` (``ok``,
      ``behind``, ``none``) when the report has such a column.
    """

    kind: Literal["funnel", "bar", "line", "grid"] = Field(
        description="funnel, bar, line or grid (above)")
    x: str = Field(description="key of the column giving the categories or periods")
    series: tuple[Series, ...] = Field(default=(), description="what is drawn against "
                                                               "`x`")
    group: str | None = Field(default=None, description="key of a column that splits "
                                                        "the rows into separate lines")
    title: str | None = Field(default=None, description="above the chart (default: the "
                                                        "report's title)")
    facets: tuple[str, ...] = Field(default=(), description="keys of columns splitting "
                                    "a funnel's rows into one funnel each (e.g. "
                                    "project and period)")
    period: str | None = Field(default=None, description="key of the column holding "
                               "each row's period (`--by`): bars of several periods "
                               "are drawn as a trend")


class Report(BaseModel):
    """The result of running a report."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: str = Field(description="the registered report's name")
    title: str = Field(description="the heading of its table, chart and section")
    columns: list[Column] = Field(description="the table's columns, in order")
    rows: list[dict[str, Cell]] = Field(
        default_factory=list, description="one mapping of column key to value per row "
                                          "(aggregates: no personal data)")
    chart: Chart | None = Field(default=None, description="how to draw it (default: bars "
                                                          "of its first numeric column)")
    notes: list[str] = Field(default_factory=list,
                             description="lines shown under the table (targets, "
                                         "who is behind, what was left out)")
    parameters: dict[str, str] = Field(default_factory=dict,
                                       description="the options it ran with, as given")

    @model_validator(mode="after")
    def _consistent(self) -> Report:
        keys = {c.key for c in self.columns}
        if len(keys) != len(self.columns):
            raise ValueError(f"report {self.name!r}: two columns have the same key")
        if self.chart is not None:
            named = [self.chart.x, *(s.column for s in self.chart.series)]
            named += [k for k in (self.chart.group, self.chart.period) if k is not None]
            named += self.chart.facets
            unknown = [k for k in named if k not in keys]
            if unknown:
                raise ValueError(f"report {self.name!r}: its chart names "
                                 f"{', '.join(map(repr, unknown))}, not among its columns")
        kinds = {c.key: c.kind for c in self.columns}
        for row in self.rows:
            strangers = set(row) - keys
            if strangers:
                raise ValueError(f"report {self.name!r}: a row holds "
                                 f"{', '.join(map(repr, sorted(strangers)))}, not among "
                                 "its columns")
            for key, value in row.items():
                row[key] = _plain(value, kinds[key])
        return self


def _plain(value: Cell, kind: str) -> Cell:
    """One type per kind whatever the database: PostgreSQL's aggregates are Decimal
    where SQLite's are float (and JSON would make a Decimal a string), a whole
    ``int`` may come back as 3.0."""
    if isinstance(value, bool) or value is None:
        return value
    if kind == "int" and isinstance(value, Decimal | float) and math.isfinite(value) \
            and value == int(value):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


class ReportRequest(_Model):
    """What a report is run with: the standard options and the report's own.

    ``start`` and ``end`` are both inclusive days; ``None`` is open-ended.
    """

    actor: Actor | None = Field(default=None, description="who asks (None: the "
                                                          "integrator's code)")
    project: str | None = Field(default=None, description="only this project's (its code)")
    start: dt.date | None = Field(default=None, description="the first day (`--from`)")
    end: dt.date | None = Field(default=None, description="the last day (`--to`)")
    by: By = Field(default="all", description="one row per month, quarter, year, or all "
                                              "together")
    options: dict[str, str] = Field(default_factory=dict,
                                    description="the report's own options, by name")


class ReportSpec(_Model):
    """A registered report (see :func:`~recrm_core.hooks.specs.recrm_reports`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True,
                              defer_build=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$",
                      description="the core's are plain (`funnel`); a plugin's are "
                                  "`<plugin>.<name>`")
    title: str = Field(description="a few words (`recrm report list`)")
    description: str = Field(description="what it shows, in one line")
    standard: tuple[StandardOption, ...] = Field(
        default=("project", "from", "to", "by"),
        description="the standard options it takes (`--project`, `--from`, `--to`, "
                    "`--by`); a request with another is refused")
    options: tuple[ReportOption, ...] = Field(
        default=(), description="its own options (`--name value`, `?name=value`)")
    roles: tuple[Role, ...] = Field(
        default=("admin", "manager", "analyst"),
        description="who may run it (an actor of another role is refused; aggregates "
                    "of the whole company are for managers)")
    run: Callable[[Any, ReportRequest], Report] = Field(
        description="`run(crm, request)` returning the `Report`")
    plugin: str | None = Field(default=None, description="who registered it; set by "
                                                         "the registry")



class ReportInfo(_Model):
    """A registered report as ``recrm report list --json`` and ``GET /v1/reports``
    describe it (its spec without the function)."""

    name: str = Field(description="what to run: `recrm report NAME`, "
                                  "`GET /v1/reports/NAME`")
    title: str = Field(description="a few words")
    description: str = Field(description="what it shows, in one line")
    plugin: str | None = Field(description="the plugin that registered it (None: the core)")
    standard: tuple[StandardOption, ...] = Field(description="the standard options it takes")
    options: tuple[ReportOption, ...] = Field(description="its own options")
    roles: tuple[Role, ...] = Field(description="who may run it")

    @classmethod
    def of(cls, spec: ReportSpec) -> ReportInfo:
        return cls(**spec.model_dump(exclude={"run"}))
