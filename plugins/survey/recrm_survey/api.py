"""``/v1/survey/...``: the survey scores over HTTP (``recrm_api_routes``).

Imported only by the hook, when the API app is built: FastAPI stays out of every
command's start-up. The routes are ``recrm survey scores`` and ``recrm survey
drivers`` with the same options and the key's actor (``CurrentActor``). Scores and
drivers are aggregates with no customer and no free text in them, so every role
reads them, as on the command line (README, "Who sees what"). An unknown project is
404, ``since`` after ``until`` 422.

Operation ids are ``survey_<function name>`` (``survey_scores``): keep the names,
generated clients use them.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

from fastapi import Query

from recrm_core.api import CurrentActor

from .scores import Driver, Period, Score
from .scores import drivers as score_drivers
from .scores import scores as score_table

if TYPE_CHECKING:
    from recrm_core import CRM
    from recrm_core.api import ApiRoutes

SurveyKey = Annotated[str | None, Query(min_length=1, max_length=64,
                                        description="only this survey (its key)")]
ProjectCode = Annotated[str | None, Query(min_length=1, max_length=64,
                                          description="only this project (its code)")]
Since = Annotated[dt.date | None, Query(description="from this day (business time zone)")]
Until = Annotated[dt.date | None, Query(description="up to and including this day")]


def add_routes(crm: CRM, routes: ApiRoutes) -> None:
    """Add the survey routes to ``routes.api`` (served under ``/v1/survey``)."""
    api = routes.api

    @api.get("/scores", response_model=list[Score])
    def scores(
        actor: CurrentActor,
        survey: SurveyKey = None,
        project: ProjectCode = None,
        period: Annotated[Period, Query(description="month, quarter, year or all")] = "quarter",
        since: Since = None,
        until: Until = None,
    ) -> list[Score]:
        """NPS, CSAT and the L3 loyalty index per survey, project and period, each with
        the counts behind it (``recrm survey scores``), sorted by survey, project and
        period."""
        return score_table(crm, survey=survey, project=project, period=period, since=since,
                           until=until, actor=actor)

    @api.get("/drivers", response_model=list[Driver])
    def drivers(
        actor: CurrentActor,
        survey: SurveyKey = None,
        project: ProjectCode = None,
        since: Since = None,
        until: Until = None,
    ) -> list[Driver]:
        """Which factors move overall satisfaction: Pearson's r of each factor with it
        and the number of answers (``recrm survey drivers``), strongest first."""
        return score_drivers(crm, survey=survey, project=project, since=since, until=until,
                             actor=actor)
