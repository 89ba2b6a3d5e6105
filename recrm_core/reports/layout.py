"""What a chart draws, before anything is drawn: its panels, each with ordered
categories and named traces (plain data, no matplotlib; :mod:`.charts` draws it).

The rules that keep a chart right for any number of projects and periods:

- a ``funnel`` is one small funnel per value of the chart's ``facets`` (e.g. per
  project and period), shares taken within one funnel only;
- series of different kinds (customers and hours) never share an axis: each kind
  gets its own panel;
- a ``bar`` chart whose rows span several periods (its ``period`` column) becomes a
  trend: one line per value of its other dimensions and series;
- rows with the same category are never drawn on top of each other: each value of
  ``group`` (and, as a safety net, of any other text column that still tells two
  such rows apart) is its own bar or line;
- periods (``2026-03``, ``2026-Q1``, ``2026``) are ordered in time; other categories
  keep the rows' order;
- a single period ("all") on the axis gives way to what varies (the projects);
- at most :data:`MAX_FACETS` funnels, :data:`MAX_BARS` bars per panel (at least
  :data:`MAX_CATEGORIES` categories) and :data:`MAX_TRACES` bars or lines per
  category are drawn, with a note saying how
  many more the table holds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from .cells import show
from .model import Cell, Chart, Column, Report

MAX_FACETS = 12
MAX_CATEGORIES = 12
MAX_TRACES = 8
#: bars per panel: fewer categories are drawn when each has several bars
MAX_BARS = 36
#: a period label as every report writes it (``--by`` month, quarter, year)
PERIOD = re.compile(r"^\d{4}(-\d{2}|-Q[1-4])?$")


@dataclass
class Trace:
    """One bar series or line: its legend label and its value per category."""

    label: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class Panel:
    """One small chart: a funnel, bars or lines over ``categories``."""

    kind: Literal["funnel", "bar", "line"]
    title: str
    categories: list[str]
    traces: list[Trace]
    value_kind: str
    notes: list[str] = field(default_factory=list)


def number(value: Cell) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return math.nan
    return float(value)


def in_time_order(labels: list[str]) -> list[str]:
    """Period labels sorted (as text they sort in time); anything else as given."""
    if labels and all(PERIOD.match(label) for label in labels):
        return sorted(labels)
    return labels


def _more(count: int, what: str = "") -> str:
    return f"and {count} more {what + ' ' if what else ''}in the table"


def panels(report: Report, chart: Chart) -> tuple[list[Panel], list[str]]:
    """The chart's panels and the notes for what was left out (caps)."""
    columns = {c.key: c for c in report.columns}
    if chart.kind == "funnel":
        return _funnels(report, chart, columns)
    return _plots(report, chart, columns)


def _text(row: dict[str, Cell], key: str, columns: dict[str, Column]) -> str:
    """The cell as a category, a legend entry or a funnel's title names it."""
    return show(row.get(key), columns[key].kind) or "(none)"


def _funnels(report: Report, chart: Chart, columns: dict[str, Column]
             ) -> tuple[list[Panel], list[str]]:
    series = columns[chart.series[0].column] if chart.series else None
    facets: dict[tuple[str, ...], list[dict[str, Cell]]] = {}
    for row in report.rows:
        key = tuple(_text(row, k, columns) for k in chart.facets)
        facets.setdefault(key, []).append(row)
    found: list[Panel] = []
    for key, rows in list(facets.items())[:MAX_FACETS]:
        values = {_text(r, chart.x, columns): number(r.get(series.key)) if series else
                  math.nan for r in rows}
        label = series.title if series else ""
        found.append(Panel(kind="funnel", title=" · ".join(key),
                           categories=list(values), traces=[Trace(label, values)],
                           value_kind=series.kind if series else "number"))
    notes = [] if len(facets) <= MAX_FACETS else [
        f"first {MAX_FACETS} funnels; " + _more(len(facets) - MAX_FACETS)]
    return found, notes


def _plots(report: Report, chart: Chart, columns: dict[str, Column]
           ) -> tuple[list[Panel], list[str]]:
    periods = ({_text(r, chart.period, columns) for r in report.rows}
               if chart.period else set())
    trend = chart.kind == "line" or (chart.period is not None and len(periods) > 1)
    axis = chart.period if trend and chart.period else chart.x
    dims = [k for k in (chart.x, chart.group, chart.period) if k and k != axis]
    dims = list(dict.fromkeys(dims))
    dims += _hidden_dimensions(report, axis, dims, columns)
    varying = [k for k in dims if _varies(report, k, columns)]
    if varying and not _varies(report, axis, columns):
        # one period ("all") on the axis: the projects (or whatever varies) are the
        # categories, as bars; a line of one point would be a dot
        dims = [*(k for k in dims if k != varying[0]), axis]
        axis, trend = varying[0], False
    # split by kind: customers and hours on one axis would flatten one of them; a
    # trend of several projects (or departments) gets a panel per series, so that each
    # panel's legend names only them
    split_varies = any(_varies(report, k, columns) for k in dims)
    by_kind: dict[str, list[int]] = {}
    for i, s in enumerate(chart.series):
        key = str(i) if trend and split_varies else columns[s.column].kind
        by_kind.setdefault(key, []).append(i)
    categories = list(dict.fromkeys(_text(r, axis, columns) for r in report.rows))
    if trend:
        categories = in_time_order(categories)
    notes: list[str] = []
    shown = categories
    per_category = max(len(_labels(report, chart, indexes, dims, columns))
                       for indexes in by_kind.values()) if by_kind else 1
    cap = max(MAX_CATEGORIES, MAX_BARS // max(1, min(per_category, MAX_TRACES)))
    if len(categories) > cap and not trend:
        shown = categories[:cap]
        notes.append(f"first {cap} of {columns[axis].title.lower()}; "
                     + _more(len(categories) - cap))
    found: list[Panel] = []
    kind: Literal["bar", "line"] = "line" if trend else "bar"
    left_out = 0
    for indexes in by_kind.values():
        value_kind = _kind_of(chart, indexes, columns)
        traces: dict[str, Trace] = {}
        for row in report.rows:
            category = _text(row, axis, columns)
            if category not in shown:
                continue
            for i, label in zip(indexes, _row_labels(report, chart, row, indexes, dims,
                                                     columns), strict=True):
                traces.setdefault(label, Trace(label)).values[category] = number(
                    row.get(chart.series[i].column))
        kept = list(traces.values())
        left_out += max(0, len(kept) - MAX_TRACES)
        titles = [chart.series[i].label or columns[chart.series[i].column].title
                  for i in indexes]
        found.append(Panel(kind=kind, title=", ".join(titles) if len(by_kind) > 1 else "",
                           categories=shown, traces=kept[:MAX_TRACES],
                           value_kind=value_kind))
    if left_out:
        notes.append(f"first {MAX_TRACES} {'lines' if trend else 'bars'} per chart; "
                     + _more(left_out, "lines" if trend else "bars"))
    return found, notes


def _row_labels(report: Report, chart: Chart, row: dict[str, Cell], indexes: list[int],
                dims: list[str], columns: dict[str, Column]) -> list[str]:
    """The legend label of each of the row's series: the values of the dimensions that
    vary, and the series' name when the panel has several."""
    split = " · ".join(_text(row, k, columns) for k in dims
                       if _varies(report, k, columns))
    labels = []
    for i in indexes:
        s = chart.series[i]
        name = s.label or columns[s.column].title
        labels.append(f"{split} — {name}" if split and len(indexes) > 1 else split or name)
    return labels


def _labels(report: Report, chart: Chart, indexes: list[int], dims: list[str],
            columns: dict[str, Column]) -> set[str]:
    return {label for row in report.rows
            for label in _row_labels(report, chart, row, indexes, dims, columns)}


def _kind_of(chart: Chart, indexes: list[int], columns: dict[str, Column]) -> str:
    kinds = {columns[chart.series[i].column].kind for i in indexes}
    return kinds.pop() if len(kinds) == 1 else "number"


def _varies(report: Report, key: str, columns: dict[str, Column]) -> bool:
    return len({_text(r, key, columns) for r in report.rows}) > 1


def _hidden_dimensions(report: Report, axis: str, dims: list[str],
                       columns: dict[str, Column]) -> list[str]:
    """Text columns beyond the chart's that still tell apart two rows drawn at the same
    place (a plugin's chart naming too few): each is added until none collide."""
    extra: list[str] = []
    for candidate in [c.key for c in report.columns if c.kind == "text"
                      and c.key != axis and c.key not in dims]:
        if not _collide(report, [axis, *dims, *extra], columns):
            break
        if _varies(report, candidate, columns):
            extra.append(candidate)
    return extra


def _collide(report: Report, keys: list[str], columns: dict[str, Column]) -> bool:
    seen = {tuple(_text(r, k, columns) for k in keys) for r in report.rows}
    return len(seen) < len(report.rows)
