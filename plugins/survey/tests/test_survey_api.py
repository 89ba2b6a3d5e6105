"""The survey scores over HTTP (``recrm_api_routes``): ``GET /v1/survey/scores`` and
``GET /v1/survey/drivers``, through httpx against the app on SQLite and PostgreSQL.

They are ``recrm survey scores`` and ``recrm survey drivers`` with the same options
and the key's actor. Scores are aggregates with no customer and no free text in
them, so every role reads them, as on the command line; a key is still needed."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from recrm_survey import scores
from survey_testkit import answered, checkin_values, customer, utc

from recrm_core import CRM
from recrm_core.testing import ApiClients, RecrmCliRunner
from recrm_core.testing import problem_of as problem

pytestmark = pytest.mark.recrm_plugins("survey")

#: free text in an answer: a score never carries it
COMPLAINT = "王伟说楼上漏水，电话13812340000"


@pytest.fixture
def panel(crm: CRM) -> None:
    """XL2: four check-ins in April and May 2025; YH1: two in July."""
    rows = [  # (project, day, nps, overall, repurchase, referral)
        ("XL2", utc(2025, 4, 2, 4), 10, 5, 5, 5),
        ("XL2", utc(2025, 4, 9, 4), 9, 4, 5, 5),
        ("XL2", utc(2025, 5, 1, 4), 7, 3, 3, 3),
        ("XL2", utc(2025, 5, 20, 4), 3, 2, 2, 2),
        ("YH1", utc(2025, 7, 3, 4), 10, 5, 5, 5),
        ("YH1", utc(2025, 7, 10, 4), 8, 4, 4, 4),
    ]
    for i, (project, at, *values) in enumerate(rows):
        cid = customer(crm, f"1381234{i:04d}", name="王伟")
        answered(crm, cid, at, checkin_values(*values, quality=values[1], comment=COMPLAINT),
                 project=project)


def test_scores_are_the_clis_with_hand_computed_numbers(
        crm: CRM, panel: None, api_client: ApiClients, cli_runner: RecrmCliRunner) -> None:
    got = api_client("manager").get("/v1/survey/scores")
    assert got.status_code == 200, got.text
    xl2, yh1 = got.json()
    assert (xl2["survey"], xl2["project"], xl2["period"]) == ("handover_checkin", "XL2",
                                                              "2025-Q2")
    # XL2: promoters 10, 9; detractor 3: (2 - 1) / 4 = 25; CSAT 4-5: 2 of 4;
    # L3 all-top: the first only, of 4 respondents
    assert (xl2["answers"], xl2["nps"], xl2["promoters"], xl2["passives"],
            xl2["detractors"]) == (4, 25, 2, 1, 1)
    assert (xl2["csat"], xl2["satisfied"], xl2["csat_answers"]) == (50.0, 2, 4)
    assert (xl2["l3"], xl2["loyal"], xl2["l3_respondents"]) == (25.0, 1, 4)
    assert (yh1["project"], yh1["period"], yh1["nps"], yh1["csat"]) == ("YH1", "2025-Q3",
                                                                        50, 100.0)
    assert got.json() == [s.model_dump(mode="json") for s in scores(crm)]
    cli = cli_runner.invoke("survey", "scores", "--json")
    assert cli.exit_code == 0, cli.stderr
    assert cli.json() == got.json()


def test_the_cli_options_are_query_parameters(
        crm: CRM, panel: None, api_client: ApiClients, cli_runner: RecrmCliRunner) -> None:
    client = api_client("analyst")

    def get(**params: Any) -> list[dict[str, Any]]:
        response = client.get("/v1/survey/scores", params=params)
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows

    assert [(s["project"], s["period"], s["answers"]) for s in get(period="month")] == [
        ("XL2", "2025-04", 2), ("XL2", "2025-05", 2), ("YH1", "2025-07", 2)]
    [year] = get(period="year", project="XL2")
    assert (year["period"], year["answers"], year["nps"]) == ("2025", 4, 25)
    [may] = get(project="XL2", since="2025-05-01", until="2025-05-31")
    assert (may["answers"], may["nps"], may["detractors"]) == (2, -50, 1)
    assert get(survey="csat") == []
    [everything_xl2, everything_yh1] = get(period="all", survey="handover_checkin")
    assert (everything_xl2["period"], everything_yh1["answers"]) == ("all", 2)
    cli = cli_runner.invoke("--as", "analyst", "survey", "scores", "--project", "XL2",
                            "--since", "2025-05-01", "--until", "2025-05-31", "--json")
    assert cli.json() == [may]


def test_every_role_reads_the_aggregates_as_on_the_command_line(
        crm: CRM, panel: None, api_client: ApiClients) -> None:
    expected = api_client("admin").get("/v1/survey/scores", params={"period": "all"}).json()
    assert len(expected) == 2
    for role in ("manager", "sales", "service", "analyst", "partner"):
        got = api_client(role).get("/v1/survey/scores", params={"period": "all"})
        assert got.status_code == 200, (role, got.text)
        assert got.json() == expected, role
        shown = json.dumps(got.json(), ensure_ascii=False)
        # no customer, no name, no mobile, no free text: counts and shares only
        assert "customer" not in shown and "王" not in shown and "1381234" not in shown
        assert COMPLAINT not in shown
    partner = api_client("partner").get("/v1/survey/drivers")
    assert partner.status_code == 200 and partner.json()


def test_drivers_route(crm: CRM, panel: None, api_client: ApiClients) -> None:
    got = api_client("admin").get("/v1/survey/drivers")
    assert got.status_code == 200, got.text
    # quality was given as the overall rating: r = 1 over all six answers
    assert got.json() == [{"factor": "quality", "r": 1.0, "n": 6}]
    yh1 = api_client("admin").get("/v1/survey/drivers",
                                  params={"project": "YH1", "until": "2025-07-05"})
    assert yh1.json() == [{"factor": "quality", "r": None, "n": 1}]


def test_bad_options_are_problems(crm: CRM, panel: None, api_client: ApiClients) -> None:
    client = api_client("admin")
    assert problem(client.get("/v1/survey/scores", params={"period": "week"}),
                   422)["field"] == "period"
    assert problem(client.get("/v1/survey/scores", params={"since": "2025-13-01"}),
                   422)["field"] == "since"
    body = problem(client.get("/v1/survey/scores",
                              params={"since": "2025-05-01", "until": "2025-04-01"}), 422)
    assert (body["field"], body["detail"]) == (
        "to", "to: the period ends (2025-04-01) before it starts (2025-05-01)")
    assert "no such project 'NOPE'" in problem(
        client.get("/v1/survey/scores", params={"project": "NOPE"}), 404)["detail"]
    problem(client.get("/v1/survey/drivers", params={"project": "NOPE"}), 404)
    # a NUL names no survey (PostgreSQL cannot even compare with it): 422, not a 500;
    # the API refuses it in any query before a route sees it
    for route in ("/v1/survey/scores", "/v1/survey/drivers"):
        assert problem(client.get(route, params={"survey": "csat\x00"}),
                       422)["field"] == "query"
    problem(client.get("/v1/survey/scores", params={"survey": "x" * 65}), 422)


def test_a_key_is_needed(crm: CRM, api_client: ApiClients) -> None:
    anonymous = api_client(None)
    problem(anonymous.get("/v1/survey/scores"), 401)
    problem(anonymous.get("/v1/survey/drivers"), 401)
    assert api_client("partner").get("/v1/survey/scores").json() == []


def test_operation_ids_and_tags_in_the_openapi_document(api_client: ApiClients) -> None:
    paths = api_client.app.openapi()["paths"]
    scores_op = paths["/v1/survey/scores"]["get"]
    drivers_op = paths["/v1/survey/drivers"]["get"]
    assert (scores_op["operationId"], drivers_op["operationId"]) == (
        "survey_scores", "survey_drivers")
    assert scores_op["tags"] == drivers_op["tags"] == ["survey"]
    params = {p["name"]: p for p in scores_op["parameters"]}
    # the reports' vocabulary, with the first spellings kept as aliases
    assert set(params) == {"survey", "project", "from", "to", "by", "period", "since",
                           "until"}
    assert params["from"]["schema"]["anyOf"][0]["format"] == "date"
    # either spelling may be given (not both), so neither has a default in the schema;
    # the handler falls back to quarter
    for name in ("period", "by"):
        assert params[name]["schema"]["anyOf"][0]["enum"] == ["month", "quarter", "year",
                                                              "all"]
    assert "quarter" in params["period"]["description"]
    assert params["since"]["schema"]["anyOf"][0]["format"] == "date"
    assert scores_op["responses"]["200"]["content"]["application/json"]["schema"][
        "items"]["$ref"].endswith("/Score")
    assert [p for p in paths if p.startswith("/v1/survey/")] == [
        "/v1/survey/scores", "/v1/survey/drivers"]


def test_the_period_of_an_answer_is_taken_in_the_business_time_zone(
        crm: CRM, api_client: ApiClients) -> None:
    # 17:00 UTC on 30 June is 1 July in Shanghai: a Q3 answer, over HTTP too
    cid = customer(crm, "13900000001")
    answered(crm, cid, dt.datetime(2025, 6, 30, 17, tzinfo=dt.UTC), checkin_values(9, 5, 5, 5))
    [row] = api_client("admin").get("/v1/survey/scores").json()
    assert row["period"] == "2025-Q3"
