"""``survey.scores``: NPS, CSAT and L3 trends per project and period, registered
with ``recrm_reports`` (``recrm report survey.scores``, ``GET /v1/reports/...``, the
dashboard and the core's balanced scorecard, which reads ``nps``, ``csat`` and ``l3``
with ``by="all"``).

The figures are those of ``recrm survey scores``: the report is
:func:`~recrm_survey.scores.scores` pooled over surveys (``by_survey=False``), so
the two cannot drift. Every role reads it, as it reads the scores (aggregates, no
customer and no free text).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recrm_core.reports import (
    Chart,
    Column,
    Report,
    ReportOption,
    ReportRequest,
    ReportSpec,
    Series,
)
from recrm_core.roles import ROLES

from .scores import scores

if TYPE_CHECKING:
    from recrm_core import CRM

NAME = "survey.scores"

COLUMNS = [
    Column(key="project", title="Project"),
    Column(key="period", title="Period"),
    Column(key="answers", title="Answers", kind="int"),
    Column(key="nps", title="NPS", kind="int"),
    Column(key="promoters", title="Promoters", kind="int"),
    Column(key="passives", title="Passives", kind="int"),
    Column(key="detractors", title="Detractors", kind="int"),
    Column(key="csat", title="CSAT", kind="percent"),
    Column(key="satisfied", title="Satisfied", kind="int"),
    Column(key="csat_answers", title="Rated", kind="int"),
    Column(key="l3", title="L3", kind="percent"),
    Column(key="loyal", title="Loyal", kind="int"),
    Column(key="l3_respondents", title="L3 respondents", kind="int"),
]


def _row(score: Any) -> dict[str, Any]:
    row = {c.key: getattr(score, c.key) for c in COLUMNS}
    # ``survey scores`` prints percentages (0-100); a report's ``percent`` column
    # holds the fraction, as every report's does (the scorecard compares it with
    # ``kpi.csat`` and ``kpi.l3``, fractions too).
    for key in ("csat", "l3"):
        if row[key] is not None:
            row[key] = row[key] / 100
    return row


def run(crm: CRM, request: ReportRequest) -> Report:
    """The report's rows: one per project and period, every survey pooled (or only
    the survey named by the ``survey`` option)."""
    survey = request.options.get("survey")
    rows = scores(crm, survey=survey, project=request.project, period=request.by,
                  since=request.start, until=request.end, by_survey=False,
                  actor=request.actor)
    parameters: dict[str, str] = {"by": request.by}
    for key, value in (("project", request.project), ("from", request.start),
                       ("to", request.end), ("survey", survey)):
        if value is not None:
            parameters[key] = str(value)
    return Report(
        name=NAME,
        title="Survey scores: NPS, CSAT and L3",
        columns=COLUMNS,
        rows=[_row(s) for s in rows],
        # One scale per chart: NPS runs -100..100, CSAT and L3 are shares.
        chart=Chart(kind="line", x="period", group="project", title="NPS by period",
                    series=(Series(column="nps", label="NPS"),)),
        notes=["NPS: % promoters (9-10) - % detractors (0-6); CSAT: % of 4-5 "
               "overall-satisfaction ratings; L3: % loyal (top of the scale on all "
               "three L3 questions), each customer once per period"],
        parameters=parameters,
    )


SPEC = ReportSpec(
    name=NAME,
    title="Survey scores",
    description="NPS, CSAT and the L3 loyalty index per project and period, with the "
                "counts behind them (recrm survey scores, every survey pooled)",
    options=(ReportOption(name="survey", help="only this survey (its key)"),),
    roles=ROLES,  # aggregates with no customer and no free text in them
    run=run,
)

__all__ = ["NAME", "SPEC", "run"]
