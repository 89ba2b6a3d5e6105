"""``/v1/reports``: the list a caller may run, a report as JSON with the standard and
its own options as query parameters, its chart as SVG, and the refusals (roles,
unknown names and options, bad periods), through a plugin's report on SQLite and
PostgreSQL. The figures are those of ``report_plugin`` (counted by hand there)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from report_plugin import ALL_ROWS, NOTE, TITLE, LeadStats, seed

from recrm_core import CRM
from recrm_core.testing import ApiClients, problem_of

NAME = "leadstats.sources"


@pytest.fixture
def leads(crm: CRM, register_plugin: Callable[..., str]) -> CRM:
    register_plugin(LeadStats())
    seed(crm)
    return crm


def test_list_shows_what_the_caller_may_run(leads: CRM, api_client: ApiClients) -> None:
    got = api_client("manager").get("/v1/reports")
    assert got.status_code == 200, got.text
    by_name = {r["name"]: r for r in got.json()}
    assert {"funnel", "sources", "cases", "staff", "scorecard", NAME} <= set(by_name)
    assert by_name[NAME]["plugin"] == "leadstats" and by_name["funnel"]["plugin"] is None
    assert by_name[NAME]["options"][0]["name"] == "min_customers"
    assert "run" not in by_name[NAME]
    # the core's reports (and this one) are for admins, managers and analysts
    partner = api_client("partner", staff="agent1").get("/v1/reports")
    assert partner.status_code == 200 and partner.json() == []


def test_run_with_query_options(leads: CRM, api_client: ApiClients) -> None:
    client = api_client("analyst")
    whole = client.get(f"/v1/reports/{NAME}")
    assert whole.status_code == 200, whole.text
    body = whole.json()
    assert (body["name"], body["title"], body["notes"]) == (NAME, TITLE, [NOTE])
    assert body["rows"] == ALL_ROWS
    assert [c["kind"] for c in body["columns"]] == ["text", "text", "int", "int", "percent"]
    monthly = client.get(f"/v1/reports/{NAME}", params={
        "by": "month", "from": "2026-01-01", "to": "2026-02-28"}).json()
    assert [(r["period"], r["source"], r["customers"]) for r in monthly["rows"]] == [
        ("2026-01", "抖音", 2), ("2026-02", "中介", 1), ("2026-02", "抖音", 1)]
    own = client.get(f"/v1/reports/{NAME}", params={"project": "XL2",
                                                    "min_customers": "2"}).json()
    assert [(r["source"], r["customers"]) for r in own["rows"]] == [("抖音", 2), ("老带新", 2)]
    # the SDK gives the same
    assert leads.reports.run(NAME).model_dump(mode="json") == body


def test_chart_as_svg(leads: CRM, api_client: ApiClients) -> None:
    got = api_client("manager").get(f"/v1/reports/{NAME}.svg", params={"project": "XL2"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("image/svg+xml")
    assert "default-src 'none'" in got.headers["content-security-policy"]
    assert "<svg" in got.text and "线索来源" in got.text and "老带新" in got.text


@pytest.mark.parametrize(("path", "params", "status", "says"), [
    ("/v1/reports/nope", {}, 404, "no report named 'nope'"),
    ("/v1/reports/nope.svg", {}, 404, "no report named 'nope'"),
    (f"/v1/reports/{NAME}", {"colour": "red"}, 422, "no option 'colour'"),
    (f"/v1/reports/{NAME}", {"min_customers": "many"}, 422, "not a whole number"),
    (f"/v1/reports/{NAME}", {"by": "week"}, 422, "by"),
    (f"/v1/reports/{NAME}", {"from": "2026-02-30"}, 422, "from"),
    (f"/v1/reports/{NAME}", {"from": "2026-02-01", "to": "2026-01-01"}, 422,
     "before it starts"),
])
def test_refusals(leads: CRM, api_client: ApiClients, path: str, params: dict[str, str],
                  status: int, says: str) -> None:
    problem = problem_of(api_client("admin").get(path, params=params), status)
    assert says in problem["detail"] or says == problem.get("field"), problem


@pytest.mark.parametrize("role", ["partner", "sales", "service"])
def test_roles_without_reports_get_403(leads: CRM, api_client: ApiClients, role: str) -> None:
    client = api_client(role, staff=f"{role}9")
    problem = problem_of(client.get(f"/v1/reports/{NAME}"), 403)
    assert f"role {role} may not run the report" in problem["detail"]
    problem_of(client.get("/v1/reports/scorecard.svg"), 403)


def test_without_a_key_401(leads: CRM, api_client: ApiClients) -> None:
    problem_of(api_client(None).get("/v1/reports"), 401)
