"""``/v1/reports``: the registered reports, each run as JSON or drawn as SVG.

``GET /v1/reports/{name}`` takes the standard options (``project``, ``from``, ``to``,
``by``) and the report's own as query parameters; the actor's role must be among the
report's ``roles`` (403 otherwise; the core's are for admins, managers and analysts).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from ..crm import CRM
from ..reports.model import By, Report, ReportInfo, ReportRequest
from .auth import CurrentActor, crm_of
from .problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/v1", tags=["reports"], responses=PROBLEM_RESPONSES)
Crm = Annotated[CRM, Depends(crm_of)]
Name = Annotated[str, Path(max_length=100, description="the report's name, e.g. funnel")]
Project = Annotated[str | None, Query(max_length=64, description="only this project")]
Start = Annotated[dt.date | None, Query(alias="from", description="first day (included)")]
End = Annotated[dt.date | None, Query(alias="to", description="last day (included)")]
ByQuery = Annotated[By, Query(description="one row per month, quarter, year or all")]
#: the query parameters that are not a report's own options
STANDARD = frozenset({"project", "from", "to", "by"})
#: an SVG answered to a browser runs nothing and loads nothing
SVG_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
               "X-Content-Type-Options": "nosniff"}


def _request(request: Request, actor: CurrentActor, project: str | None,
             start: dt.date | None, end: dt.date | None, by: By) -> ReportRequest:
    own = {k: v for k, v in request.query_params.items() if k not in STANDARD}
    return ReportRequest(actor=actor, project=project, start=start, end=end, by=by,
                         options=own)


@router.get("/reports", response_model=list[ReportInfo])
def reports_list(crm: Crm, actor: CurrentActor) -> list[ReportInfo]:
    """The reports the caller may run: the core's, then each enabled plugin's."""
    return [ReportInfo.of(spec) for spec in crm.reports.available(actor)]


@router.get("/reports/{name}.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}},
                             "description": "the report's chart"}})
def reports_chart(name: Name, request: Request, crm: Crm, actor: CurrentActor,
                  project: Project = None, start: Start = None, end: End = None,
                  by: ByQuery = "all") -> Response:
    """The report's chart as SVG (text kept as text: the viewer's fonts draw it)."""
    from ..reports.charts import render

    report = crm.reports.run(name, _request(request, actor, project, start, end, by))
    return Response(render(report, "svg"), media_type="image/svg+xml", headers=SVG_HEADERS)


@router.get("/reports/{name}", response_model=Report)
def reports_run(name: Name, request: Request, crm: Crm, actor: CurrentActor,
                project: Project = None, start: Start = None, end: End = None,
                by: ByQuery = "all") -> Report:
    """Run a report: its columns, rows, chart description and notes; its own options
    are further query parameters (``?group=category``)."""
    return crm.reports.run(name, _request(request, actor, project, start, end, by))
