"""The dashboard: every registered report on one self-contained HTML page.

Each report the actor may run gets a section with its chart as inline SVG (text kept
as text, so the viewer's fonts draw the Chinese), its table and its notes. The page
loads nothing from anywhere (no script, font or image; its Content-Security-Policy
says so), so it opens from a file or a mail attachment with no server and no network.
A report that fails shows its error in its own section; the others still show::

    from recrm_core.reports import ReportRequest
    from recrm_core.reports.dashboard import write_dashboard

    write_dashboard(crm, "dashboard.html", ReportRequest(project="XL2", by="month"))
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import RecrmError
from .cells import NUMERIC, show
from .model import Column, Report, ReportRequest, ReportSpec

if TYPE_CHECKING:
    from markupsafe import Markup

    from ..crm import CRM
    from .drawing import Drawer, Drawn

log = logging.getLogger(__name__)


@dataclass
class Section:
    """One report's part of the page: its table as text, its chart, or its error."""

    spec: ReportSpec
    report: Report | None = None
    error: str | None = None
    svg: Markup | None = None
    rows: list[list[tuple[str, bool]]] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "report-" + re.sub(r"[^a-z0-9_-]", "-", self.spec.name)

    @property
    def title(self) -> str:
        return self.report.title if self.report is not None else self.spec.title

    @property
    def description(self) -> str:
        return self.spec.description

    @property
    def plugin(self) -> str | None:
        return self.spec.plugin

    @property
    def columns(self) -> list[Column]:
        return self.report.columns if self.report is not None else []

    @property
    def notes(self) -> list[str]:
        return self.report.notes if self.report is not None else []


def request_for(spec: ReportSpec, request: ReportRequest) -> ReportRequest:
    """``request`` as ``spec`` takes it: the standard options it does not take dropped,
    the page's own options left out (each report runs with its defaults)."""
    update: dict[str, object] = {"options": {}}
    if "project" not in spec.standard:
        update["project"] = None
    if "from" not in spec.standard:
        update["start"] = None
    if "to" not in spec.standard:
        update["end"] = None
    if "by" not in spec.standard:
        update["by"] = "all"
    return request.model_copy(update=update)


def sections(crm: CRM, request: ReportRequest, drawer: Drawer | None = None) -> list[Section]:
    """Every report ``request.actor`` may run, run and drawn (by ``drawer``, else in
    this process); a failure is kept in its section (a plugin's error names the
    plugin; an internal error only its kind)."""
    from markupsafe import Markup

    from .charts import chart_of
    from .drawing import HERE

    drawer = drawer or HERE
    found: list[Section] = []
    # Every report runs before any chart is taken, so a worker draws one chart while
    # the next report runs.
    charts: list[tuple[Section, Drawn]] = []
    for spec in crm.reports.available(request.actor):
        section = Section(spec)
        found.append(section)
        with _kept_in(section):
            report = crm.reports.run(spec.name, request_for(spec, request))
            section.report = report
            kinds = [c.kind for c in report.columns]
            section.rows = [[(show(row.get(c.key), c.kind), kind in NUMERIC)
                             for c, kind in zip(report.columns, kinds, strict=True)]
                            for row in report.rows]
            if report.rows and chart_of(report) is not None:
                charts.append((section, drawer.submit(report)))
    for section, drawn in charts:
        with _kept_in(section):
            # matplotlib escapes the text it writes into the SVG
            section.svg = Markup(drawn())
    return found


@contextlib.contextmanager
def _kept_in(section: Section) -> Iterator[None]:
    """A report's failure, running or drawing, as its section's error: the section
    then shows neither table nor chart."""
    try:
        yield
    except RecrmError as exc:
        section.error = str(exc)
    except Exception as exc:
        # debug: the CLI prints the section's one line; a server's log may want more
        log.debug("report %s failed on the dashboard", section.spec.name, exc_info=True)
        section.error = f"internal error: {type(exc).__name__}"
    else:
        return
    section.report = None
    section.rows = []


def _scope(request: ReportRequest) -> str:
    parts = [f"project {request.project}" if request.project else "all projects"]
    if request.start or request.end:
        parts.append(f"{request.start or '…'} – {request.end or '…'}")
    else:
        parts.append("all time")
    if request.by != "all":
        parts.append(f"by {request.by}")
    return " · ".join(parts)


def _check(crm: CRM, request: ReportRequest) -> None:
    """Refused before any report runs, as one report would refuse it: a period ending
    before it starts (InvalidInput), a project that does not exist (UnknownProject),
    rather than a page of sections each saying so."""
    from .periods import day_range

    day_range(request.start, request.end)
    if request.project is not None:
        crm.projects.get(request.project)


def render_dashboard(crm: CRM, request: ReportRequest | None = None,
                     now: dt.datetime | None = None,
                     found: list[Section] | None = None) -> str:
    """The dashboard page as HTML text (of ``found``, else of :func:`sections`)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from .. import __version__

    request = request or ReportRequest()
    if found is None:
        _check(crm, request)
    env = Environment(loader=PackageLoader("recrm_core.reports", "templates"),
                      autoescape=select_autoescape(default=True), trim_blocks=True,
                      lstrip_blocks=True, auto_reload=False)
    at = (now or dt.datetime.now(dt.UTC)).astimezone(crm.config.zone)
    return env.get_template("dashboard.html").render(
        title="recrm 管理报表 · Reports", scope=_scope(request),
        generated=at.strftime("%Y-%m-%d %H:%M"),
        entries=found if found is not None else sections(crm, request),
        version=__version__)


def write_dashboard(crm: CRM, path: str | os.PathLike[str],
                    request: ReportRequest | None = None,
                    now: dt.datetime | None = None,
                    drawer: Drawer | None = None) -> list[Section]:
    """Write the dashboard page to ``path`` (whole or not at all; InvalidInput when it
    cannot be written), its charts drawn by ``drawer`` (default: here); returns its
    sections (``section.error`` for those that failed)."""
    from ..listexport import write_text_atomically

    request = request or ReportRequest()
    _check(crm, request)
    found = sections(crm, request, drawer)
    write_text_atomically(path, render_dashboard(crm, request, now, found))
    return found
