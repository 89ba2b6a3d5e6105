"""``survey.scores``, the plugin's registered report (``recrm_reports``): the figures of
``recrm survey scores`` pooled over surveys, per project and period, against
hand-computed numbers; registered only when the plugin is enabled; and the
``--from/--to/--by`` spelling beside ``--since/--until/--period`` on the command line
and in the API.

(Named ``test_survey_reports.py``: every test directory shares one namespace.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from recrm_survey import scores
from survey_testkit import answered, checkin_values, customer, utc

from recrm_core import CRM, Actor, InvalidInput
from recrm_core.reports import ReportRequest
from recrm_core.testing import ApiClients, RecrmCliRunner
from recrm_core.testing import problem_of as problem

pytestmark = pytest.mark.recrm_plugins("survey")


@pytest.fixture
def panel(crm: CRM) -> None:
    """XL2: four check-ins in April and May 2025; YH1: two in July; one CSAT answer
    at XL2 in September."""
    rows = [  # (project, when, nps, overall, repurchase, referral)
        ("XL2", utc(2025, 4, 2, 4), 10, 5, 5, 5),
        ("XL2", utc(2025, 4, 9, 4), 9, 4, 5, 5),
        ("XL2", utc(2025, 5, 1, 4), 7, 3, 3, 3),
        ("XL2", utc(2025, 5, 20, 4), 3, 2, 2, 2),
        ("YH1", utc(2025, 7, 3, 4), 10, 5, 5, 5),
        ("YH1", utc(2025, 7, 10, 4), 8, 4, 4, 4),
    ]
    for i, (project, at, *values) in enumerate(rows):
        cid = customer(crm, f"1381234{i:04d}")
        answered(crm, cid, at, checkin_values(*values), project=project)
    answered(crm, customer(crm, "13912340000"), utc(2025, 9, 1, 4),
             {"satisfaction": 5, "resolved": "已解决"}, survey="csat")


def figures(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["project"], r["period"], r["answers"], r["nps"], r["csat"], r["l3"])
            for r in rows]


def test_scores_report_with_hand_computed_numbers(crm: CRM, panel: None) -> None:
    report = crm.reports.run("survey.scores", ReportRequest())
    assert report.name == "survey.scores"
    keys = [c.key for c in report.columns]
    assert keys[:4] == ["project", "period", "answers", "nps"]
    assert {"csat", "l3"} <= set(keys)
    # XL2, every survey pooled: 5 answers. NPS over the 4 check-ins: promoters 10, 9;
    # detractor 3: (2 - 1) / 4 = 25. CSAT 4-5 of overall satisfaction: 5, 4 and the
    # CSAT answer's 5 = 3 of 5 = 0.6. L3 (check-ins only): all-top 1 of 4 = 0.25.
    # YH1: promoter 10, passive 8: 50; CSAT 2 of 2; L3 1 of 2.
    assert figures(report.rows) == [
        ("XL2", "all", 5, 25, 0.6, 0.25),
        ("YH1", "all", 2, 50, 1.0, 0.5),
    ]
    assert report.rows[0]["promoters"] == 2 and report.rows[0]["l3_respondents"] == 4
    assert report.chart is not None
    assert (report.chart.kind, report.chart.x, report.chart.group) == ("line", "period",
                                                                       "project")
    # the same figures as `recrm survey scores` pooled (one computation), whose
    # CSAT and L3 are percentages where a report's percent column holds the fraction
    pooled = scores(crm, period="all", by_survey=False)
    assert figures(report.rows) == [
        (s.project, s.period, s.answers, s.nps, s.csat and s.csat / 100,
         s.l3 and s.l3 / 100) for s in pooled]


def test_project_period_and_survey_options(crm: CRM, panel: None) -> None:
    def run(**kwargs: Any) -> list[tuple[Any, ...]]:
        return figures(crm.reports.run("survey.scores", ReportRequest(**kwargs)).rows)

    # April: 10/5/5/5 and 9/4/5/5: NPS 100, CSAT 100, L3 1 of 2.
    # May: 7/3/3/3 and 3/2/2/2: NPS (0 - 1) / 2 = -50, CSAT 0, L3 0.
    assert run(project="XL2", by="month") == [
        ("XL2", "2025-04", 2, 100, 1.0, 0.5),
        ("XL2", "2025-05", 2, -50, 0.0, 0.0),
        ("XL2", "2025-09", 1, None, 1.0, None),
    ]
    assert run(project="XL2", by="quarter", start=dt.date(2025, 5, 1),
               end=dt.date(2025, 5, 31)) == [("XL2", "2025-Q2", 2, -50, 0.0, 0.0)]
    assert run(by="year", options={"survey": "csat"}) == [("XL2", "2025", 1, None, 1.0,
                                                           None)]
    report = crm.reports.run("survey.scores", ReportRequest(by="year", project="YH1"))
    assert report.parameters == {"by": "year", "project": "YH1"}
    with pytest.raises(InvalidInput, match=r"report 'survey\.scores' has no option 'team'"):
        crm.reports.run("survey.scores", ReportRequest(options={"team": "x"}))
    with pytest.raises(InvalidInput, match=r"the period ends \(2025-04-01\) before it starts"):
        run(start=dt.date(2025, 5, 1), end=dt.date(2025, 4, 1))


def test_every_role_reads_the_report(crm: CRM, panel: None) -> None:
    expected = crm.reports.run("survey.scores", ReportRequest()).rows
    for role in ("admin", "manager", "sales", "service", "analyst", "partner"):
        got = crm.reports.run("survey.scores", ReportRequest(actor=Actor(staff_id="s1", role=role)))
        assert got.rows == expected, role


def test_registered_only_when_the_plugin_is_enabled(
        crm: CRM, crm_factory: Callable[..., CRM]) -> None:
    spec = crm.reports.specs()["survey.scores"]
    assert (spec.plugin, spec.standard) == ("survey", ("project", "from", "to", "by"))
    assert [o.name for o in spec.options] == ["survey"]
    assert "survey.scores" not in crm_factory(plugins=[]).reports.specs()


def test_from_to_by_and_their_old_spellings_on_the_command_line(
        crm: CRM, panel: None, cli_runner: RecrmCliRunner) -> None:
    new = cli_runner.invoke("survey", "scores", "--project", "XL2", "--from", "2025-05-01",
                            "--to", "2025-05-31", "--by", "month", "--json")
    old = cli_runner.invoke("survey", "scores", "--project", "XL2", "--since", "2025-05-01",
                            "--until", "2025-05-31", "--period", "month", "--json")
    assert new.exit_code == 0, new.stderr
    assert [(s["period"], s["answers"], s["nps"]) for s in new.json()] == [
        ("2025-05", 2, -50)]
    assert old.json() == new.json()
    drivers = cli_runner.invoke("survey", "drivers", "--from", "2025-07-01", "--json")
    assert drivers.exit_code == 0, drivers.stderr
    helped = cli_runner.invoke("survey", "scores", "--help")
    assert "--from, --since" in helped.stdout and "--by, --period" in helped.stdout
    bad = cli_runner.invoke("survey", "scores", "--by", "week")
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr


def test_from_to_by_and_their_old_spellings_in_the_api(
        crm: CRM, panel: None, api_client: ApiClients) -> None:
    client = api_client("analyst")

    def get(route: str = "/v1/survey/scores", **params: Any) -> Any:
        response = client.get(route, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    new = get(project="XL2", **{"from": "2025-05-01", "to": "2025-05-31", "by": "month"})
    old = get(project="XL2", since="2025-05-01", until="2025-05-31", period="month")
    assert [(s["period"], s["nps"]) for s in new] == [("2025-05", -50)] and old == new
    # both spellings agreeing is fine; disagreeing is 422 naming the option
    assert get(project="XL2", since="2025-05-01", **{"from": "2025-05-01"}) == get(
        project="XL2", since="2025-05-01")
    body = problem(client.get("/v1/survey/scores", params={"period": "month", "by": "year"}),
                   422)
    assert body["field"] == "period" and "give one" in body["detail"]
    assert [d["n"] for d in get("/v1/survey/drivers", **{"from": "2025-07-01"})] == []
    assert problem(client.get("/v1/survey/scores", params={"by": "week"}), 422)
