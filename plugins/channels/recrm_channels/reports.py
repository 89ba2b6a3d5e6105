"""``channels.commission``: ``recrm channel report`` as a registered report
(``recrm_reports``): per agency, project and period, registrations, refusals,
visits, conversions, the deal amount and the commission accrued and clawed back.

The rows are :func:`~recrm_channels.report.report`'s, the very function behind
``recrm channel report``, so the two cannot drift; its role rule applies (the
office and analysts; an agency is refused), and the days are the CRM's time zone's,
as on the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recrm_core.reports import Chart, Column, Report, ReportRequest, ReportSpec, Series

from .report import instant, report
from .service import OFFICE

if TYPE_CHECKING:
    from recrm_core import CRM

NAME = "channels.commission"

COLUMNS = [
    Column(key="agency", title="Agency"),
    Column(key="project", title="Project"),
    Column(key="period", title="Period"),
    Column(key="registrations", title="Registered", kind="int"),
    Column(key="rejected", title="Refused", kind="int"),
    Column(key="confirmed", title="Visited", kind="int"),
    Column(key="subscribed", title="Subscribed", kind="int"),
    Column(key="contracted", title="Contracted", kind="int"),
    Column(key="deal_amount", title="Deal amount", kind="money"),
    Column(key="accrued", title="Commission accrued", kind="money"),
    Column(key="clawed_back", title="Clawed back", kind="money"),
]


def run(crm: CRM, request: ReportRequest) -> Report:
    start = None if request.start is None else instant(crm, request.start)
    end = None if request.end is None else instant(crm, request.end, after=True)
    found = report(crm, project=request.project, start=start, end=end, by=request.by,
                   actor=request.actor)
    refusals: dict[str, int] = {}
    for r in found:
        for reason, n in r.rejected.items():
            refusals[reason] = refusals.get(reason, 0) + n
    parameters: dict[str, str] = {"by": request.by}
    for key, value in (("project", request.project), ("from", request.start),
                       ("to", request.end)):
        if value is not None:
            parameters[key] = str(value)
    return Report(
        name=NAME, title="Agencies: registrations and commission", columns=COLUMNS,
        rows=[{**r.model_dump(exclude={"rejected"}), "rejected": sum(r.rejected.values())}
              for r in found],
        chart=Chart(kind="bar", x="agency", group="project", period="period",
                    series=(Series(column="accrued"), Series(column="clawed_back"))),
        notes=["refused: " + ", ".join(f"{k} {v}" for k, v in sorted(refusals.items()))]
        if refusals else [],
        parameters=parameters,
    )


SPEC = ReportSpec(
    name=NAME, title="Agencies and commission",
    description="per agency, project and period: registrations, refusals, visits, "
                "subscriptions and contracts, the deal amount and the commission "
                "accrued and clawed back (recrm channel report)",
    roles=(*OFFICE, "analyst"),  # as ``channel report``
    run=run,
)

__all__ = ["NAME", "SPEC", "run"]
