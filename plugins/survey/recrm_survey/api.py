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
from typing import TYPE_CHECKING, Annotated, TypeVar

from fastapi import Query

from recrm_core import InvalidInput
from recrm_core.api import CurrentActor

from .scores import Driver, Period, Score
from .scores import drivers as score_drivers
from .scores import scores as score_table

T = TypeVar("T")

if TYPE_CHECKING:
    from recrm_core import CRM
    from recrm_core.api import ApiRoutes

SurveyKey = Annotated[str | None, Query(min_length=1, max_length=64,
                                        description="only this survey (its key)")]
ProjectCode = Annotated[str | None, Query(min_length=1, max_length=64,
                                          description="only this project (its code)")]
Since = Annotated[dt.date | None, Query(description="from this day (business time zone)")]
Until = Annotated[dt.date | None, Query(description="up to and including this day")]
# ``from``/``to``/``by`` are the spelling of every report (issue 20); ``since``,
# ``until`` and ``period``, the first spelling, stay. Giving both spellings of one
# option with different values is 422 (which one was meant?).
From = Annotated[dt.date | None, Query(alias="from", description="``since``'s other "
                                                                   "spelling")]
To = Annotated[dt.date | None, Query(alias="to", description="``until``'s other spelling")]
By = Annotated[Period | None, Query(alias="by", description="``period``'s other spelling")]


def _either(name: str, alias: str, first: T | None, second: T | None) -> T | None:
    """One option given under either of its names (both only if they agree)."""
    if first is not None and second is not None and first != second:
        raise InvalidInput(name, f"{name} and {alias} are the same option: give one")
    return first if first is not None else second


def add_routes(crm: CRM, routes: ApiRoutes) -> None:
    """Add the survey routes to ``routes.api`` (served under ``/v1/survey``)."""
    api = routes.api

    @api.get("/scores", response_model=list[Score])
    def scores(
        actor: CurrentActor,
        survey: SurveyKey = None,
        project: ProjectCode = None,
        period: Annotated[Period | None, Query(description="month, quarter, year or all "
                                                           "(default quarter)")] = None,
        since: Since = None,
        until: Until = None,
        by: By = None,
        from_: From = None,
        to: To = None,
    ) -> list[Score]:
        """NPS, CSAT and the L3 loyalty index per survey, project and period, each with
        the counts behind it (``recrm survey scores``), sorted by survey, project and
        period."""
        return score_table(crm, survey=survey, project=project,
                           period=_either("period", "by", period, by) or "quarter",
                           since=_either("since", "from", since, from_),
                           until=_either("until", "to", until, to), actor=actor)

    @api.get("/drivers", response_model=list[Driver])
    def drivers(
        actor: CurrentActor,
        survey: SurveyKey = None,
        project: ProjectCode = None,
        since: Since = None,
        until: Until = None,
        from_: From = None,
        to: To = None,
    ) -> list[Driver]:
        """Which factors move overall satisfaction: Pearson's r of each factor with it
        and the number of answers (``recrm survey drivers``), strongest first."""
        return score_drivers(crm, survey=survey, project=project,
                             since=_either("since", "from", since, from_),
                             until=_either("until", "to", until, to), actor=actor)
