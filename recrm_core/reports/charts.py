"""A report's chart as SVG or PNG: a funnel, grouped bars, a trend line, a scorecard
grid (:class:`~recrm_core.reports.Chart` says which).

matplotlib is imported only here, inside the drawing functions, and only through its
object-oriented API: a :class:`~matplotlib.figure.Figure` saved by its own canvas (Agg
for PNG), never ``pyplot``, whose global figures a server would leak.

Chinese must never become boxes. SVG keeps text as text (``svg.fonttype = "none"``)
under a CSS font list, so the viewer's own fonts draw it. PNG is drawn here, so it
needs a font with Chinese characters: the one ``[reports] font`` names (a file or an
installed family), else the first of :data:`CJK_FAMILIES` matplotlib knows, else one of
:data:`CJK_FONT_FILES`; without one, drawing a PNG is refused (:class:`NoCjkFont`,
exit 2) naming the Debian package that brings one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError
from .cells import NUMERIC, show
from .model import Chart, Column, Report

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .layout import Panel

#: the Debian package with a small CJK font (what ``.ci/run`` installs)
FONT_PACKAGE = "fonts-wqy-microhei"
#: families with Chinese characters, most wanted first (the PNG's font is the first
#: one installed; the SVG names them all for the viewer)
CJK_FAMILIES = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC",
                "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
                "Droid Sans Fallback")
#: where Debian's packages put such fonts, tried when matplotlib's font cache predates
#: their installation
CJK_FONT_FILES = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
                  "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
                  "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
                  "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")
#: the SVG's CSS font list: the CJK families above, then those of macOS and Windows
SVG_FONTS = (*CJK_FAMILIES, "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei",
             "DejaVu Sans")
#: a character the font must have to count as one with Chinese
_PROBE = "中"
#: colours of the series, and of the scorecard's cells by status
PALETTE = ("#3b6ea5", "#e08a2e", "#4f9d69", "#c0504d", "#8064a2", "#4bacc6", "#9b8b6e",
           "#d16ba5")
STATUS_COLOURS = {"ok": "#cfe8d2", "behind": "#f4c7c3", "none": "#e6e6e6"}
WIDTH_INCHES = 8.0
PNG_DPI = 150

# rcParams are the process's: two threads (a served API) drawing at once must not
# see each other's settings.
_drawing = threading.Lock()


class NoCjkFont(ConfigError):
    """No font with Chinese characters to draw a PNG with (exit 2)."""


@dataclass(frozen=True)
class Font:
    """A font with Chinese characters: its family (as matplotlib names it) and file."""

    family: str
    path: str


def find_cjk_font(setting: str | None = None) -> Font:
    """The font a PNG is drawn with: ``setting`` (``[reports] font``: a font file or an
    installed family) when given, else the first CJK family found; NoCjkFont when the
    setting names none or nothing is installed."""
    from matplotlib import font_manager

    install = (f"install one (Debian: apt-get install {FONT_PACKAGE}) or name one in "
               "recrm.toml: [reports] font = \"/path/to/font.ttc\"")
    if setting:
        if os.sep in setting or os.path.splitext(setting)[1].lower() in (".ttf", ".ttc",
                                                                       ".otf"):
            if not os.path.isfile(setting):
                raise NoCjkFont(f"[reports] font: no font file {setting!r}; {install}")
            return _checked(setting, f"[reports] font: {setting!r}", install)
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=setting),
                                         fallback_to_default=False)
        except ValueError:
            raise NoCjkFont(f"[reports] font: no installed font family {setting!r}; "
                            f"{install}") from None
        return _checked(path, f"[reports] font: {setting!r}", install)
    for family in CJK_FAMILIES:
        with _quiet():
            try:
                path = font_manager.findfont(font_manager.FontProperties(family=family),
                                             fallback_to_default=False)
            except ValueError:
                continue
        if _has_chinese(path):
            return Font(family=_family_of(path), path=str(path))
    for known in CJK_FONT_FILES:
        if os.path.isfile(known) and _has_chinese(known):
            return Font(family=_family_of(known), path=known)
    raise NoCjkFont(f"--png needs a font with Chinese characters and none is installed: "
                    f"{install}")


def _checked(path: str, what: str, install: str) -> Font:
    if not _has_chinese(path):
        raise NoCjkFont(f"{what} has no Chinese characters; {install}")
    return Font(family=_family_of(path), path=str(path))


def _has_chinese(path: str) -> bool:
    from matplotlib.ft2font import FT2Font

    try:
        return bool(FT2Font(path).get_char_index(ord(_PROBE)))
    except (OSError, RuntimeError, ValueError):  # not a font file FreeType reads
        return False


def _family_of(path: str) -> str:
    """The file's family, registered with matplotlib (a file outside its cache, or
    installed after the cache was built, is unknown to it until added)."""
    from matplotlib import font_manager

    font_manager.fontManager.addfont(path)
    return str(font_manager.FontProperties(fname=path).get_name())


_registered = False


def _register_installed_cjk_font() -> None:
    """Register this machine's CJK font with matplotlib once per process, whether or
    not a PNG asked for it: an SVG names its fonts but is laid out with the metrics of
    whichever of them matplotlib knows, and a font installed after matplotlib's cache
    was built is known only to a process that added it. Without this a chart drawn in
    the chart worker and one drawn here differed by process history."""
    global _registered
    if _registered:
        return
    _registered = True
    with contextlib.suppress(NoCjkFont):
        find_cjk_font()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Without matplotlib's notes on missing families and glyphs: the SVG names fonts
    the viewer may have and this machine may not, and its layout needs no glyphs."""
    logger = logging.getLogger("matplotlib.font_manager")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
            warnings.filterwarnings("ignore", message=r"Matplotlib currently does not "
                                                      r"support .* natively")
            yield
    finally:
        logger.setLevel(level)


def render(report: Report, fmt: Literal["svg", "png"], font: Font | None = None) -> bytes:
    """The report's chart as an SVG document or a PNG image; PNG needs ``font``
    (:func:`find_cjk_font`). A report without a chart is drawn as its first numeric
    column in bars."""
    import matplotlib

    if fmt == "png" and font is None:
        raise ValueError("a PNG needs a font with Chinese characters (find_cjk_font)")
    _register_installed_cjk_font()
    families = [font.family] if font is not None else []
    rc: Any = {
        "svg.fonttype": "none", "svg.hashsalt": report.name,  # the same report, same file
        "font.family": ["sans-serif"],
        "font.sans-serif": list(dict.fromkeys([*families, *SVG_FONTS])),
        "axes.unicode_minus": False, "axes.spines.top": False, "axes.spines.right": False,
        # Labels are data: a project named "$A$ 区" is text, never mathematics.
        "text.parse_math": False,
    }
    with _drawing, _quiet(), matplotlib.rc_context(rc):
        figure = draw(report)
        out = io.BytesIO()
        figure.savefig(out, format=fmt, dpi=PNG_DPI, bbox_inches="tight",
                       metadata=_metadata(fmt))
    return out.getvalue()


def _metadata(fmt: str) -> dict[str, Any]:
    # No date nor matplotlib version in the file: the same report gives the same bytes.
    if fmt == "svg":
        return {"Date": None, "Creator": None}
    return {"Software": None}


def svg_text(report: Report) -> str:
    """The chart as SVG markup to put inside an HTML page (without the XML prologue)."""
    text = render(report, "svg").decode("utf-8")
    return text[text.index("<svg"):]


def chart_of(report: Report) -> Chart | None:
    """The report's chart, or bars of its first numeric column when it names none."""
    if report.chart is not None:
        return report.chart
    numeric = [c for c in report.columns if c.kind in NUMERIC]
    if not numeric or len(report.columns) < 2:
        return None
    from .model import Series

    return Chart(kind="bar", x=report.columns[0].key, series=(Series(column=numeric[0].key),))


def draw(report: Report) -> Figure:
    """The report's chart as a matplotlib figure (no canvas state, no pyplot): a grid,
    or the panels :func:`~recrm_core.reports.layout.panels` lays out."""
    from matplotlib.figure import Figure

    chart = chart_of(report)
    columns = {c.key: c for c in report.columns}
    title = (chart.title if chart else None) or report.title
    if chart is None or not report.rows:
        figure = Figure(figsize=(WIDTH_INCHES, 2.0), layout="constrained")
        ax = figure.add_subplot()
        ax.set_title(title, loc="left", fontweight="bold")
        ax.axis("off")
        ax.text(0.5, 0.5, "no data" if not report.rows else "no chart", ha="center",
                va="center", transform=ax.transAxes, color="#777777")
        return figure
    if chart.kind == "grid":
        figure = Figure(figsize=(WIDTH_INCHES, 1.0 + 1.1 * max(1, _grid_shape(
            report, chart)[0])), layout="constrained")
        ax = figure.add_subplot()
        ax.set_title(title, loc="left", fontweight="bold")
        _grid(ax, report, chart, columns)
        return figure
    from .layout import panels

    found, notes = panels(report, chart)
    per_row = min(3, len(found)) if chart.kind == "funnel" else 1
    n_rows = math.ceil(len(found) / per_row)
    each = 2.4 if chart.kind == "funnel" else 3.6
    figure = Figure(figsize=(WIDTH_INCHES if per_row < 3 else 9.0,
                             0.6 + each * n_rows + 0.25 * len(notes)),
                    layout="constrained")
    figure.suptitle(title, x=0.01, ha="left", fontweight="bold")
    axes = figure.subplots(n_rows, per_row, squeeze=False)
    for ax, panel in zip(axes.flat, found, strict=False):
        if panel.title:
            ax.set_title(panel.title, loc="left", fontsize=10)
        {"funnel": _funnel, "bar": _bars, "line": _lines}[panel.kind](ax, panel)
    for ax in list(axes.flat)[len(found):]:
        ax.axis("off")
    if notes:
        figure.supxlabel("; ".join(notes), x=0.01, ha="left", fontsize=8,
                         color="#555555")
    return figure


def _axis_format(ax: Axes, kind: str, axis: Literal["x", "y"]) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    target = ax.yaxis if axis == "y" else ax.xaxis
    if kind == "int":
        target.set_major_locator(MaxNLocator(integer=True))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: show(v, kind)))


def _shown(value: float, kind: str) -> str:
    return show(None if math.isnan(value) else value, kind)


def _funnel(ax: Axes, panel: Panel) -> None:
    """Centred horizontal bars, the first stage on top: each stage's width, with its
    count and its share of the stage above in this funnel."""
    values = [panel.traces[0].values.get(c, math.nan) for c in panel.categories]
    widths = [0.0 if math.isnan(v) else v for v in values]
    widest = max(widths, default=0.0) or 1.0
    positions = list(range(len(values)))
    ax.barh(positions, widths, left=[(widest - w) / 2 for w in widths], height=0.72,
            color=PALETTE[0])
    previous: float | None = None
    for y, value, raw in zip(positions, widths, values, strict=True):
        text = _shown(raw, panel.value_kind)
        if previous:
            text += f"  ({value / previous:.0%})"
        ax.text(widest / 2, y, text, ha="center", va="center", fontsize=8,
                color="white" if value > widest * 0.45 else "#222222", fontweight="bold")
        previous = value
    ax.set_yticks(positions, panel.categories, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, widest)
    ax.set_xticks([])
    ax.spines[["left", "bottom"]].set_visible(False)
    ax.tick_params(axis="y", length=0)


def _bars(ax: Axes, panel: Panel) -> None:
    """One group of bars per category, side by side: one bar per trace."""
    count = max(len(panel.traces), 1)
    width = 0.8 / count
    for i, trace in enumerate(panel.traces):
        offsets = [j - 0.4 + width * (i + 0.5) for j in range(len(panel.categories))]
        values = [trace.values.get(c, math.nan) for c in panel.categories]
        bars = ax.bar(offsets, [0.0 if math.isnan(v) else v for v in values],
                      width * 0.92, label=trace.label, color=PALETTE[i % len(PALETTE)])
        if len(panel.categories) * count <= 16:
            ax.bar_label(bars, labels=[_shown(v, panel.value_kind) for v in values],
                         fontsize=7, padding=2)
    long_labels = sum(len(c) for c in panel.categories) > 50
    ax.set_xticks(range(len(panel.categories)), panel.categories,
                  rotation=30 if long_labels else 0, ha="right" if long_labels else "center",
                  fontsize=8)
    _axis_format(ax, panel.value_kind, "y")
    ax.margins(y=0.12)
    _from_zero(ax, panel)
    if count > 1:
        _legend(ax, count)


def _from_zero(ax: Axes, panel: Panel) -> None:
    """Nothing but zeros (or nothing) still gets an axis from 0 up, not -0.1 to 0.1."""
    values = [v for t in panel.traces for v in t.values.values() if not math.isnan(v)]
    if not any(values):
        ax.set_ylim(0, 1)
    elif min(values) >= 0:
        ax.set_ylim(bottom=0)


def _legend(ax: Axes, count: int) -> None:
    # beside the plot, so it never hides a bar or a line
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0),
              ncols=1 if count <= 12 else 2)


def _lines(ax: Axes, panel: Panel) -> None:
    """A trend: the periods in time order, one line per trace."""
    positions = {c: j for j, c in enumerate(panel.categories)}
    for i, trace in enumerate(panel.traces):
        points = sorted((positions[c], v) for c, v in trace.values.items())
        if all(math.isnan(v) for _, v in points):
            continue  # nothing to draw: no legend entry for an empty line either
        ax.plot([p for p, _ in points], [v for _, v in points], marker="o",
                markersize=3, label=trace.label, color=PALETTE[i % len(PALETTE)],
                linestyle="-" if i < len(PALETTE) else "--")
    step = max(1, math.ceil(len(panel.categories) / 12))
    ticks = list(range(0, len(panel.categories), step))
    ax.set_xticks(ticks, [panel.categories[t] for t in ticks], fontsize=8)
    _axis_format(ax, panel.value_kind, "y")
    _from_zero(ax, panel)
    ax.grid(axis="y", color="#dddddd")
    if len(panel.traces) > 1:
        _legend(ax, len(panel.traces))


def _grid_shape(report: Report, chart: Chart) -> tuple[int, int]:
    if chart.group is not None:
        rows = len({str(r.get(chart.group)) for r in report.rows})
        cols = len({str(r.get(chart.x)) for r in report.rows})
        return rows, cols
    cols = min(4, max(1, len(report.rows)))
    return math.ceil(len(report.rows) / cols), cols


def _grid(ax: Axes, report: Report, chart: Chart, columns: dict[str, Column]) -> None:
    """A scorecard: a cell per row (per ``group`` and ``x`` when the chart splits its
    rows), coloured by the row's ``status`` (ok, behind, none), holding its series."""
    from matplotlib.patches import Rectangle

    ax.axis("off")
    n_rows, n_cols = _grid_shape(report, chart)
    x_kind = columns[chart.x].kind
    if chart.group is not None:
        group_kind = columns[chart.group].kind
        row_names = list(dict.fromkeys(show(r.get(chart.group), group_kind)
                                       for r in report.rows))
        col_names = list(dict.fromkeys(show(r.get(chart.x), x_kind) for r in report.rows))
        left = 1.0
        places = [(row_names.index(show(r.get(chart.group), group_kind)),
                   col_names.index(show(r.get(chart.x), x_kind))) for r in report.rows]
        for i, name in enumerate(row_names):
            ax.text(left - 0.05, -i - 0.5, name, ha="right", va="center", fontweight="bold",
                    fontsize=9)
        for j, name in enumerate(col_names):
            ax.text(left + j + 0.5, 0.15, name, ha="center", va="bottom",
                    fontweight="bold", fontsize=9)
    else:
        left = 0.0
        places = [divmod(i, n_cols) for i in range(len(report.rows))]
    for row, (i, j) in zip(report.rows, places, strict=True):
        status = str(row.get("status") or "none")
        ax.add_patch(Rectangle((left + j + 0.04, -i - 0.96), 0.92, 0.92,
                               facecolor=STATUS_COLOURS.get(status, STATUS_COLOURS["none"]),
                               edgecolor="white"))
        lines = [] if chart.group is not None else [show(row.get(chart.x), x_kind)]
        many = len(chart.series) > 1
        for k, s in enumerate(chart.series):
            column = columns[s.column]
            value = show(row.get(s.column), column.kind) or "–"
            # A lone first value speaks for itself; among several, each is named.
            lines.append(f"{s.label or column.title}: {value}" if many or k else value)
        # A scorecard cell holds every measure: smaller type keeps it inside the cell.
        ax.text(left + j + 0.5, -i - 0.5, "\n".join(lines), ha="center", va="center",
                fontsize=9 if len(lines) <= 4 else 6.5, linespacing=1.3)
    ax.set_xlim(0, left + n_cols)
    ax.set_ylim(-n_rows, 0.6 if chart.group is not None else 0)
