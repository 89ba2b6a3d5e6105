"""Scores against hand-computed numbers: NPS (and its rounding), CSAT, L3, drivers."""

from __future__ import annotations

import datetime as dt
import statistics

import pytest
from recrm_survey import drivers, scores
from recrm_survey.scores import fold, nps_value, pearson, percent
from survey_testkit import answered, checkin_values, customer, utc

from recrm_core import CRM, InvalidInput

pytestmark = pytest.mark.recrm_plugins("survey")


def test_nps_rounds_half_away_from_zero() -> None:
    assert nps_value(2, 1, 8) == 13  # 12.5 (Python's round() would say 12)
    assert nps_value(1, 2, 8) == -13  # -12.5
    assert nps_value(1, 2, 6) == -17  # -16.67
    assert nps_value(3, 0, 3) == 100
    assert nps_value(0, 0, 0) is None
    assert percent(2, 7) == 28.6 and percent(1, 8) == 12.5 and percent(0, 0) is None


def test_fold() -> None:
    assert [fold("2025-05", p) for p in ("month", "quarter", "year", "all")] == [
        "2025-05", "2025-Q2", "2025", "all"]
    assert fold("2025-12", "quarter") == "2025-Q4" and fold("2025-01", "quarter") == "2025-Q1"


def test_pearson_matches_the_statistics_module() -> None:
    xs, ys = [1, 2, 4, 5, 3, 3], [2, 1, 4, 5, 3, 4]
    n, sx, sy = len(xs), sum(xs), sum(ys)
    sxy = sum(x * y for x, y in zip(xs, ys, strict=True))
    r = pearson(n, sx, sy, sxy, sum(x * x for x in xs), sum(y * y for y in ys))
    assert r == round(statistics.correlation(xs, ys), 3)
    assert pearson(1, 3, 3, 9, 9, 9) is None  # one answer
    assert pearson(3, 9, 6, 18, 27, 14) is None  # no variation in x


@pytest.fixture
def panel(crm: CRM) -> dict[str, int]:
    """Hand-made answers (see the tables in the tests)."""
    ids = {name: customer(crm, f"1381234{i:04d}") for i, name in enumerate("ABCDEFGHIJK")}
    xl2 = [  # (customer, day in 2025 UTC, nps, overall, repurchase, referral)
        ("A", (4, 2), 10, 5, 5, 5),
        ("B", (4, 3), 9, 5, 5, 5),
        ("C", (4, 5), 8, 4, 5, 5),
        ("D", (4, 8), 8, 5, 5, 4),
        ("E", (4, 9), 7, 3, 3, 3),
        ("F", (5, 1), 7, 2, 2, 2),
        ("G", (5, 2), 7, 5, 5, 5),
        ("A", (5, 20), 5, 4, 4, 4),  # A again, later in the quarter: no longer loyal
    ]
    for name, (month, day), *values in xl2:
        answered(crm, ids[name], utc(2025, month, day, 4), checkin_values(*values))
    yh1 = [
        ("H", utc(2025, 7, 3, 4), 10, 5, 5, 5),
        # 17:00 UTC on 30 June is 1 July in Shanghai: a Q3 answer
        ("I", utc(2025, 6, 30, 17), 6, 3, 4, 4),
        ("J", utc(2025, 7, 10, 4), 2, 1, 1, 1),
        ("K", utc(2025, 8, 1, 4), 8, 4, 4, 4),
    ]
    for name, at, *values in yh1:
        answered(crm, ids[name], at, checkin_values(*values), project="YH1")
    return ids


def test_scores_by_project_and_quarter(crm: CRM, panel: dict[str, int]) -> None:
    xl2, yh1 = scores(crm)
    assert (xl2.survey, xl2.project, xl2.period) == ("handover_checkin", "XL2", "2025-Q2")
    # XL2: 8 answers; promoters A(10) B(9) = 2; detractors A's second (5) = 1
    # NPS = (2 - 1) / 8 = 12.5% -> 13
    assert (xl2.answers, xl2.nps_answers, xl2.promoters, xl2.passives, xl2.detractors) == (
        8, 8, 2, 5, 1)
    assert xl2.nps == 13
    # CSAT: overall 4-5 in A B C D G A' = 6 of 8
    assert (xl2.csat, xl2.satisfied, xl2.csat_answers) == (75.0, 6, 8)
    # L3: 7 respondents (A counted once, with the later answer); all-top: B and G
    assert (xl2.l3, xl2.loyal, xl2.l3_respondents) == (28.6, 2, 7)
    assert (yh1.project, yh1.period) == ("YH1", "2025-Q3")
    # YH1: promoters H; detractors I(6) J(2): (1 - 2) / 4 = -25
    assert (yh1.nps, yh1.promoters, yh1.passives, yh1.detractors) == (-25, 1, 1, 2)
    assert (yh1.csat, yh1.satisfied, yh1.csat_answers) == (50.0, 2, 4)
    assert (yh1.l3, yh1.loyal, yh1.l3_respondents) == (25.0, 1, 4)


def test_periods_and_filters(crm: CRM, panel: dict[str, int]) -> None:
    months = {(s.project, s.period): s.nps_answers for s in scores(crm, period="month")}
    assert months == {("XL2", "2025-04"): 5, ("XL2", "2025-05"): 3,
                      ("YH1", "2025-07"): 3, ("YH1", "2025-08"): 1}
    [year_xl2, year_yh1] = scores(crm, period="year")
    assert (year_xl2.period, year_xl2.nps) == ("2025", 13)
    assert year_yh1.period == "2025"
    # A answered twice in April-May; in May alone only A's later answer counts
    [may] = scores(crm, period="month", project="XL2", since=dt.date(2025, 5, 1))
    assert (may.l3_respondents, may.loyal) == (3, 1)  # F, G (loyal), A
    [april] = scores(crm, project="XL2", until=dt.date(2025, 4, 30))
    assert (april.answers, april.nps, april.l3_respondents, april.loyal) == (5, 40, 5, 2)
    assert scores(crm, survey="csat") == []
    # pooled over surveys: a CSAT answer joins the XL2 line
    answered(crm, panel["B"], utc(2025, 9, 1, 4), {"satisfaction": 1, "resolved": "未解决"},
             survey="csat")
    assert [(s.survey, s.period) for s in scores(crm, project="XL2")] == [
        ("csat", "2025-Q3"), ("handover_checkin", "2025-Q2")]
    pooled = {p.project: p for p in scores(crm, period="all", by_survey=False)}
    assert {(p.survey, p.period) for p in pooled.values()} == {("all", "all")}
    assert (pooled["XL2"].answers, pooled["XL2"].nps, pooled["XL2"].satisfied,
            pooled["XL2"].csat_answers) == (9, 13, 6, 9)
    assert (pooled["YH1"].answers, pooled["YH1"].nps) == (4, -25)
    with pytest.raises(InvalidInput, match="period 'week' is not one of"):
        scores(crm, period="week")
    with pytest.raises(InvalidInput, match=r"the period ends \(2025-04-01\) before it starts"):
        scores(crm, since=dt.date(2025, 5, 1), until=dt.date(2025, 4, 1))


def test_l3_needs_all_three_roles(crm: CRM) -> None:
    # The CSAT survey has overall satisfaction but no intent questions: no L3
    cid = customer(crm, "13812345678")
    answered(crm, cid, utc(2025, 4, 2, 4), {"satisfaction": 5, "resolved": "已解决"},
             survey="csat")
    [score] = scores(crm)
    assert (score.survey, score.csat, score.satisfied, score.csat_answers) == ("csat", 100.0,
                                                                               1, 1)
    assert (score.l3, score.l3_respondents, score.nps, score.nps_answers) == (None, 0, None, 0)


def test_drivers_against_hand_computed_correlations(crm: CRM) -> None:
    # (quality, overall): (1,2) (2,1) (4,4) (5,5): n=4, Σx=12, Σy=12, Σxy=45,
    # Σx²=46, Σy²=46 -> r = (4·45 − 144) / √((184 − 144)(184 − 144)) = 36/40 = 0.9
    rows = [(1, 2), (2, 1), (4, 4), (5, 5)]
    for i, (quality, overall) in enumerate(rows):
        cid = customer(crm, f"1391234{i:04d}")
        extra = {"quality": quality, "service": 3}
        if i == 0:
            extra["value"] = 4
        answered(crm, cid, utc(2025, 4, 2 + i, 4),
                 checkin_values(8, overall, 3, 3, **extra))
    found = {d.factor: (d.r, d.n) for d in drivers(crm)}
    assert found == {"quality": (0.9, 4), "service": (None, 4), "value": (None, 1)}
    assert [d.factor for d in drivers(crm)] == ["quality", "service", "value"]
    crm.projects.ensure("YH1")  # a project without answers
    assert drivers(crm, project="YH1") == []
    assert [d.n for d in drivers(crm, until=dt.date(2025, 4, 3))] == [2, 2, 1]
