"""Scores with the counts behind them: NPS, CSAT, the L3 loyalty index, drivers.

- **NPS** = % promoters (9–10) − % detractors (0–6) of the answers to the ``nps``
  question, rounded half away from zero to a whole number.
- **CSAT** = share of 4–5 ratings of the ``overall_satisfaction`` question, in
  percent (one decimal).
- **L3** = share of *loyal* respondents among the customers who answered all three
  L3 questions (overall satisfaction, repurchase intent, referral intent) in the
  period; loyal means the top of the scale on all three. A customer who answered
  several times in the period counts once, with the latest such answer.
- **Drivers**: Pearson's r between each factor rating and overall satisfaction
  over the answers holding both, with their number ``n``.

Who sees what: scores and drivers are aggregates (counts, shares, correlations per
survey, project and period) with no customer and no free text in them, so every
role reads them; ``actor`` is the reader, passed to the unit of work.

Counting and summing happen in SQL, grouped by survey, project and month (the
month in the business time zone is stored with each answer, so no dialect-specific
date function is needed); months fold into quarters and years afterwards.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import aliased

from recrm_core import CRM, Actor, InvalidInput, NotFound, check_storable
from recrm_core.reports.periods import check_period

from .definitions import FACTOR_ROLES, L3_ROLES
from .service.surveys import definition_in
from .tables import SurveyAnswer, SurveyScore

Period = Literal["month", "quarter", "year", "all"]
_Q = TypeVar("_Q", bound="Select[*tuple[Any, ...]]")
PERIODS: tuple[str, ...] = ("month", "quarter", "year", "all")


class Score(BaseModel):
    """The scores of one survey at one project in one period, with their counts."""

    survey: str
    project: str | None
    period: str
    answers: int = 0
    nps: int | None = None
    nps_answers: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    csat: float | None = None
    csat_answers: int = 0
    satisfied: int = 0
    l3: float | None = None
    l3_respondents: int = 0
    loyal: int = 0


class Driver(BaseModel):
    factor: str
    #: Pearson's r (3 decimals); None when fewer than two answers or no variation
    r: float | None
    n: int


def _round(value: Fraction, places: int = 0) -> Decimal:
    # Half away from zero, on the exact fraction: 12.5 -> 13, -12.5 -> -13
    # (Python's round() would give 12 and -12).
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def nps_value(promoters: int, detractors: int, total: int) -> int | None:
    if total == 0:
        return None
    return int(_round(Fraction(100 * (promoters - detractors), total)))


def percent(part: int, total: int) -> float | None:
    if total == 0:
        return None
    return float(_round(Fraction(100 * part, total), 1))


def pearson(n: int, sx: int, sy: int, sxy: int, sxx: int, syy: int) -> float | None:
    """Pearson's r from integer sums (exact up to the final square root)."""
    if n < 2:
        return None
    den = (n * sxx - sx * sx) * (n * syy - sy * sy)
    if den <= 0:
        return None
    return round((n * sxy - sx * sy) / math.sqrt(den), 3)


def fold(month: str, period: str) -> str:
    """``"2025-05"`` as the period it belongs to: the month, ``"2025-Q2"``,
    ``"2025"`` or ``"all"``."""
    if period == "month":
        return month
    if period == "quarter":
        return f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}"
    if period == "year":
        return month[:4]
    return "all"


def _check_range(since: dt.date | None, until: dt.date | None) -> None:
    check_period(since, until)


def _check_period(period: str) -> None:
    if period not in PERIODS:
        raise InvalidInput("period", f"period {period!r} is not one of {', '.join(PERIODS)}")


def _check_survey(crm: CRM, survey: str | None) -> None:
    # A key no database can hold names no survey; PostgreSQL would fail on the NUL
    # (an HTTP query string can carry one, a command line cannot).
    if survey is None:
        return
    try:
        check_storable(survey)
    except ValueError as exc:
        raise InvalidInput("survey", f"survey key {exc}") from None
    # A misspelt key is NotFound (exit 1, 404) like an unknown project, rather than
    # an empty table read as "nobody answered"; answers of a survey since dropped from
    # recrm.toml still count.
    with crm.unit_of_work(readonly=True) as uow:
        try:
            definition_in(uow.session, crm, survey)
        except NotFound:
            if uow.session.scalar(select(SurveyAnswer.id).where(
                    SurveyAnswer.survey_key == survey).limit(1)) is None:
                raise


def _known_project(crm: CRM, project: str | None) -> str | None:
    """The code of the project a score names, by the core's check: an unknown one is
    UnknownProject (exit 1) rather than an empty table."""
    return None if project is None else crm.projects.get(project).code


def _filtered(
    query: _Q, crm: CRM, survey: str | None, project: str | None,
    since: dt.date | None, until: dt.date | None,
) -> _Q:
    if survey is not None:
        query = query.where(SurveyAnswer.survey_key == survey)
    if project is not None:
        query = query.where(SurveyAnswer.project == project)
    zone = crm.config.zone
    # A day at the edge of the calendar (0001-01-01, 9999-12-31) has no UTC instant to
    # compare with: it bounds nothing, or (the far side) everything.
    if since is not None:
        start: dt.datetime | None
        try:
            start = dt.datetime.combine(since, dt.time(), zone).astimezone(dt.UTC)
        except OverflowError:
            start = None if since.year == dt.MINYEAR else dt.datetime.max.replace(tzinfo=dt.UTC)
        if start is not None:
            query = query.where(SurveyAnswer.answered_at >= start)
    if until is not None:  # inclusive: up to the end of that day
        end: dt.datetime | None
        try:
            end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(),
                                      zone).astimezone(dt.UTC)
        except OverflowError:
            end = None if until.year == dt.MAXYEAR else dt.datetime.min.replace(tzinfo=dt.UTC)
        if end is not None:
            query = query.where(SurveyAnswer.answered_at < end)
    return query


def scores(
    crm: CRM,
    *,
    survey: str | None = None,
    project: str | None = None,
    period: str = "quarter",
    since: dt.date | None = None,
    until: dt.date | None = None,
    by_survey: bool = True,
    actor: Actor | None = None,
) -> list[Score]:
    """Scores per (survey, project, period), sorted by survey, project, period.

    ``by_survey=False`` pools every survey (``survey`` is then ``"all"``): one line
    per project and period, each L3 respondent counted once.
    """
    _check_period(period)
    _check_range(since, until)
    _check_survey(crm, survey)
    project = _known_project(crm, project)
    group = (SurveyAnswer.survey_key, SurveyAnswer.project, SurveyAnswer.period_month)
    out: dict[tuple[str, str | None, str], Score] = {}

    def row(key: tuple[str, str | None, str]) -> Score:
        survey_key, proj, month = key
        folded = (survey_key if by_survey else "all", proj, fold(month, period))
        found = out.get(folded)
        if found is None:
            found = out[folded] = Score(survey=folded[0], project=proj, period=folded[2])
        return found

    def by_role(role: str, *aggregates: Any) -> Select[Any]:
        query = (select(*group, func.count(), *aggregates)
                 .join(SurveyScore, SurveyScore.answer_id == SurveyAnswer.id)
                 .where(SurveyScore.role == role))
        return _filtered(query, crm, survey, project, since, until).group_by(*group)

    def flag(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    l3_query = (
        select(SurveyAnswer.id, SurveyAnswer.customer_id, SurveyAnswer.answered_at, *group,
               flag(SurveyScore.value == SurveyScore.scale_max))
        .join(SurveyScore, SurveyScore.answer_id == SurveyAnswer.id)
        .where(SurveyScore.role.in_(L3_ROLES))
        .group_by(SurveyAnswer.id, SurveyAnswer.customer_id, SurveyAnswer.answered_at, *group)
        .having(func.count() == len(L3_ROLES))
    )
    with crm.unit_of_work(actor, readonly=True) as uow:
        session = uow.session
        counted = _filtered(select(*group, func.count()), crm, survey, project, since, until)
        for s, p, m, n in session.execute(counted.group_by(*group)):
            row((s, p, m)).answers += int(n)
        nps = by_role("nps", flag(SurveyScore.value >= 9), flag(SurveyScore.value <= 6))
        for s, p, m, n, promoters, detractors in session.execute(nps):
            target = row((s, p, m))
            target.nps_answers += int(n)
            target.promoters += int(promoters)
            target.detractors += int(detractors)
        csat = by_role("overall_satisfaction", flag(SurveyScore.value >= 4))
        for s, p, m, n, satisfied in session.execute(csat):
            target = row((s, p, m))
            target.csat_answers += int(n)
            target.satisfied += int(satisfied)
        latest: dict[tuple[str, str | None, str], dict[int, tuple[dt.datetime, int, bool]]] = {}
        l3_rows = session.execute(_filtered(l3_query, crm, survey, project, since, until))
        for answer_id, customer_id, at, s, p, m, tops in l3_rows:
            key = (s if by_survey else "all", p, fold(m, period))
            row((s, p, m))
            seen = latest.setdefault(key, {})
            candidate = (at, answer_id, int(tops) == len(L3_ROLES))
            if customer_id not in seen or candidate[:2] > seen[customer_id][:2]:
                seen[customer_id] = candidate
    for key, score in out.items():
        score.passives = score.nps_answers - score.promoters - score.detractors
        score.nps = nps_value(score.promoters, score.detractors, score.nps_answers)
        score.csat = percent(score.satisfied, score.csat_answers)
        respondents = latest.get(key, {})
        score.l3_respondents = len(respondents)
        score.loyal = sum(1 for *_, loyal in respondents.values() if loyal)
        score.l3 = percent(score.loyal, score.l3_respondents)
    return [out[k] for k in sorted(out, key=lambda k: (k[0], k[1] or "", k[2]))]


def drivers(
    crm: CRM,
    *,
    survey: str | None = None,
    project: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    factors: Iterable[str] = FACTOR_ROLES,
    actor: Actor | None = None,
) -> list[Driver]:
    """Correlation of each factor with overall satisfaction, strongest first."""
    _check_range(since, until)
    _check_survey(crm, survey)
    project = _known_project(crm, project)
    factor, overall = aliased(SurveyScore), aliased(SurveyScore)
    x, y = factor.value, overall.value
    query = (
        select(factor.role, func.count(), func.sum(x), func.sum(y), func.sum(x * y),
               func.sum(x * x), func.sum(y * y))
        .select_from(SurveyAnswer)
        .join(factor, factor.answer_id == SurveyAnswer.id)
        .join(overall, (overall.answer_id == SurveyAnswer.id)
              & (overall.role == "overall_satisfaction"))
        .where(factor.role.in_(list(factors)))
        .group_by(factor.role)
    )
    with crm.unit_of_work(actor, readonly=True) as uow:
        rows = uow.session.execute(_filtered(query, crm, survey, project, since, until)).all()
    found = [
        Driver(factor=str(role), n=int(n),
               r=pearson(int(n), int(sx), int(sy), int(sxy), int(sxx), int(syy)))
        for role, n, sx, sy, sxy, sxx, syy in rows
    ]
    return sorted(found, key=lambda d: (d.r is None, -(d.r or 0.0), d.factor))


__all__ = [
    "PERIODS",
    "Driver",
    "Period",
    "Score",
    "drivers",
    "fold",
    "nps_value",
    "pearson",
    "percent",
    "scores",
]
