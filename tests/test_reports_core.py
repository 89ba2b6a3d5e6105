"""The core's reports (funnel, sources, cases, staff, scorecard) against figures worked
out by hand on small fixtures, on SQLite and PostgreSQL; interactions' minutes."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, inspect, update
from sqlalchemy.exc import IntegrityError

from recrm_core import CRM, Actor, Forbidden, InvalidInput, NotFound
from recrm_core.hooks import hookimpl
from recrm_core.reports import Column, Report, ReportRequest, ReportSpec
from recrm_core.tables import CaseHistoryRow, CaseRow, CustomerProjectRow, InteractionRow

SH = ZoneInfo("Asia/Shanghai")
D = dt.date


def at(month: int, day: int, hour: float = 10, year: int = 2026) -> dt.datetime:
    """A time in the business zone (Shanghai), as the reports see it."""
    whole = int(hour)
    return dt.datetime(year, month, day, whole, int((hour - whole) * 60), tzinfo=SH)


def set_row(crm: CRM, table: Any, row_id: int, **values: Any) -> None:
    with crm.engine.begin() as conn:
        conn.execute(update(table).where(table.id == row_id).values(**values))


def customer(crm: CRM, n: int, project: str = "XL1", source: str | None = "ad",
             owner: str | None = None, seen: dt.datetime | None = None) -> int:
    cid = crm.customers.add({"name": f"客户{n}", "mobile": f"1381234{n:04d}",
                             "project": project, "source": source,
                             "owner_staff": owner}).customer.id
    if seen is not None:
        with crm.engine.begin() as conn:
            conn.execute(update(CustomerProjectRow)
                         .where(CustomerProjectRow.customer_id == cid)
                         .values(first_seen_at=seen, stage_changed_at=seen))
    return cid


def visit(crm: CRM, cid: int, when: dt.datetime, project: str = "XL1") -> None:
    crm.interactions.log(cid, {"kind": "visit", "project": project, "occurred_at": when})
    crm.customers.set_stage(cid, "visitor", project, occurred_at=when)


def rows(report: Report, **match: Any) -> list[dict[str, Any]]:
    return [r for r in report.rows if all(r.get(k) == v for k, v in match.items())]


def one(report: Report, **match: Any) -> dict[str, Any]:
    found = rows(report, **match)
    assert len(found) == 1, (match, report.rows)
    return found[0]


# -- funnel and sources -------------------------------------------------------------------
@pytest.fixture
def sales(crm: CRM) -> CRM:
    """XL1: c1 came 5 Jan, visited 10 Jan, subscribed 20 Jan, signed 5 Feb; c2 came
    8 Jan (source call), visited 1 Feb; c3 came 10 Feb; c4 came 15 Jan, visited 16
    Jan, subscribed 19 Jan. XL2: c5 came 3 Jan, source none."""
    c1 = customer(crm, 1, seen=at(1, 5))
    visit(crm, c1, at(1, 10))
    crm.customers.set_stage(c1, "subscriber", "XL1", occurred_at=at(1, 20))
    crm.customers.set_stage(c1, "buyer", "XL1", occurred_at=at(2, 5))
    c2 = customer(crm, 2, source="call", seen=at(1, 8))
    visit(crm, c2, at(2, 1))
    customer(crm, 3, seen=at(2, 10))
    c4 = customer(crm, 4, seen=at(1, 15))
    visit(crm, c4, at(1, 16))
    crm.customers.set_stage(c4, "subscriber", "XL1", occurred_at=at(1, 19))
    customer(crm, 5, project="XL2", source=None, seen=at(1, 3))
    return crm


def test_funnel_whole_period(sales: CRM) -> None:
    report = sales.reports.run("funnel", ReportRequest(
        project="XL1", start=D(2026, 1, 1), end=D(2026, 2, 28)))
    assert report.chart is not None and report.chart.kind == "funnel"
    got = [(r["stage"], r["customers"], r["conversion"], r["median_days"]) for r in report.rows]
    assert got == [("prospect", 4, None, None),
                   ("visitor", 3, 0.75, 5.0),         # days 5, 24, 1
                   ("subscriber", 2, 0.6667, 6.5),    # days 10, 3
                   ("buyer", 1, 0.5, 16.0),
                   ("owner", 0, 0.0, None)]
    assert {r["project"] for r in report.rows} == {"XL1"}


def test_funnel_by_month_quarter_year(sales: CRM) -> None:
    request = ReportRequest(project="XL1", start=D(2026, 1, 1), end=D(2026, 2, 28))
    by_month = sales.reports.run("funnel", request.model_copy(update={"by": "month"}))
    jan = {r["stage"]: (r["customers"], r["conversion"], r["median_days"])
           for r in rows(by_month, period="2026-01")}
    feb = {r["stage"]: (r["customers"], r["conversion"], r["median_days"])
           for r in rows(by_month, period="2026-02")}
    assert jan == {"prospect": (3, None, None), "visitor": (2, 0.6667, 3.0),
                   "subscriber": (2, 1.0, 6.5), "buyer": (0, 0.0, None),
                   "owner": (0, None, None)}
    assert feb == {"prospect": (1, None, None), "visitor": (1, 1.0, 24.0),
                   "subscriber": (0, 0.0, None), "buyer": (1, None, 16.0),
                   "owner": (0, 0.0, None)}
    quarter = sales.reports.run("funnel", request.model_copy(update={"by": "quarter"}))
    assert {r["period"] for r in quarter.rows} == {"2026-Q1"}
    assert one(quarter, stage="visitor")["customers"] == 3
    year = sales.reports.run("funnel", request.model_copy(update={"by": "year"}))
    assert {r["period"] for r in year.rows} == {"2026"}


def test_funnel_days_are_inclusive_in_the_business_zone(sales: CRM) -> None:
    # the contract at 5 Feb 10:00 Shanghai (02:00 UTC): in a period ending 5 Feb, not 4 Feb
    upto = ReportRequest(project="XL1", start=D(2026, 1, 16), end=D(2026, 2, 5))
    assert one(sales.reports.run("funnel", upto), stage="buyer")["customers"] == 1
    # c4's visit on 16 Jan is in, c1's on 10 Jan out
    assert one(sales.reports.run("funnel", upto), stage="visitor")["customers"] == 2
    before = upto.model_copy(update={"end": D(2026, 2, 4)})
    assert one(sales.reports.run("funnel", before), stage="buyer")["customers"] == 0
    # 1 Feb 00:30 in Shanghai is 31 Jan in UTC: it is February's
    c6 = customer(sales, 6, seen=at(1, 20))
    visit(sales, c6, at(2, 1, 0.5))
    by_month = sales.reports.run("funnel", ReportRequest(project="XL1", by="month",
                                                         start=D(2026, 1, 1)))
    assert one(by_month, period="2026-02", stage="visitor")["customers"] == 2
    with pytest.raises(InvalidInput):
        sales.reports.run("funnel", ReportRequest(start=D(2026, 2, 1), end=D(2026, 1, 1)))


def test_funnel_project_filter(sales: CRM) -> None:
    report = sales.reports.run("funnel", ReportRequest(project="XL2"))
    assert {r["project"] for r in report.rows} == {"XL2"}
    assert one(report, stage="prospect")["customers"] == 1
    every = sales.reports.run("funnel", ReportRequest(start=D(2026, 1, 1)))
    assert {r["project"] for r in every.rows} == {"XL1", "XL2"}
    with pytest.raises(NotFound):
        sales.reports.run("funnel", ReportRequest(project="NOPE"))


def test_sources(sales: CRM) -> None:
    report = sales.reports.run("sources", ReportRequest(start=D(2026, 1, 1), end=D(2026, 2, 28)))
    assert report.chart is not None and report.chart.kind == "bar"
    got = {r["source"]: (r["customers"], r["visitors"], r["subscribers"], r["contracts"],
                         r["visit_rate"], r["conversion"]) for r in report.rows}
    assert got == {"ad": (3, 2, 2, 1, 0.6667, 0.3333),
                   "call": (1, 1, 0, 0, 1.0, 0.0),
                   "(none)": (1, 0, 0, 0, 0.0, 0.0)}
    jan = sales.reports.run("sources", ReportRequest(project="XL1", by="month",
                                                     start=D(2026, 1, 1)))
    assert [(r["source"], r["period"], r["customers"]) for r in jan.rows] == [
        ("ad", "2026-01", 2), ("ad", "2026-02", 1), ("call", "2026-01", 1)]


# -- cases --------------------------------------------------------------------------------
def a_case(crm: CRM, cid: int, opened: dt.datetime, *, department: str = "SVC",
           resolved_hours: float | None = None, due_hours: float = 24,
           response_hours: float | None = None, category: str = "repair",
           project: str = "XL1", channel: str = "hotline") -> int:
    """A case opened at ``opened``, assigned to zhao, started ``response_hours`` later
    and resolved ``resolved_hours`` after opening."""
    zhao = Actor(staff_id="zhao", role="service")
    case = crm.cases.open({"customer_id": cid, "category": category, "subject": "s",
                           "project": project, "department": department,
                           "assignee": "zhao", "channel": channel})
    if response_hours is not None:
        crm.cases.start(case.id, actor=zhao)
    if resolved_hours is not None:
        crm.cases.resolve(case.id, actor=zhao)
    set_row(crm, CaseRow, case.id, opened_at=opened,
            sla_due_at=opened + dt.timedelta(hours=due_hours),
            resolved_at=None if resolved_hours is None
            else opened + dt.timedelta(hours=resolved_hours))
    with crm.engine.begin() as conn:
        if response_hours is not None:
            conn.execute(update(CaseHistoryRow).where(
                CaseHistoryRow.case_id == case.id, CaseHistoryRow.action == "start")
                .values(at=opened + dt.timedelta(hours=response_hours)))
        if resolved_hours is not None:
            conn.execute(update(CaseHistoryRow).where(
                CaseHistoryRow.case_id == case.id, CaseHistoryRow.action == "resolve")
                .values(at=opened + dt.timedelta(hours=resolved_hours)))
    return case.id


@pytest.fixture
def service(crm: CRM) -> CRM:
    """SVC: five cases resolved in 1, 2, 3, 4 and 10 hours (due in 24, but the 10-hour
    one was due in 8: late), assignee's first action after 0.5, 1, 1.5, 2, 3 hours;
    the 4-hour one reopened once; one open case past due (escalated twice), one open not
    yet due. CRC: two cases resolved in 2 and 5 hours. One case in April (outside)."""
    cid = customer(crm, 1)
    base = at(3, 2)
    for i, (hours, response) in enumerate([(1, 0.5), (2, 1), (3, 1.5), (4, 2), (10, 3)]):
        case_id = a_case(crm, cid, base + dt.timedelta(days=i), resolved_hours=hours,
                         response_hours=response, due_hours=8 if hours == 10 else 24,
                         channel="wechat" if i < 2 else "hotline")
        if hours == 4:
            with crm.engine.begin() as conn:
                conn.execute(insert(CaseHistoryRow).values(
                    case_id=case_id, action="reopen", from_value="resolved",
                    to_value="reopened", at=base + dt.timedelta(days=i, hours=5)))
    late = a_case(crm, cid, at(3, 10), due_hours=1)
    with crm.engine.begin() as conn:
        for level in (0, 1):
            conn.execute(insert(CaseHistoryRow).values(
                case_id=late, action="escalate", from_value=str(level),
                to_value=str(level + 1), at=at(3, 11)))
    a_case(crm, cid, dt.datetime.now(SH) - dt.timedelta(hours=1), due_hours=10_000)
    for hours in (2, 5):
        a_case(crm, cid, at(3, 3), department="CRC", resolved_hours=hours,
               category="complaint", project="XL2")
    a_case(crm, cid, at(4, 3), department="CRC", resolved_hours=100)
    return crm


def test_cases_by_department(service: CRM) -> None:
    report = service.reports.run("cases", ReportRequest(start=D(2026, 3, 1),
                                                        end=D(2026, 3, 31)))
    assert report.chart is not None and report.chart.kind == "bar"
    svc = one(report, department="SVC")
    assert svc["cases"] == 6  # the case opened today is outside March
    assert svc["resolved"] == 5
    assert svc["on_time_rate"] == pytest.approx(4 / 6, abs=1e-4)  # late: 10 h, open overdue
    assert svc["median_resolution_hours"] == 3.0
    assert svc["p90_resolution_hours"] == 7.6  # rank 3.6: 4 + 0.6 × (10 - 4)
    assert svc["median_response_hours"] == 1.5
    assert svc["reopen_rate"] == 0.2
    assert (svc["escalated"], svc["escalations"]) == (1, 2)
    crc = one(report, department="CRC")
    assert (crc["cases"], crc["median_resolution_hours"], crc["p90_resolution_hours"]) == \
        (2, 3.5, 4.7)  # p90 rank 0.9: 2 + 0.9 × 3
    # nobody started them: resolving was the assignee's first action
    assert crc["median_response_hours"] == 3.5


def test_cases_other_groups_and_periods(service: CRM) -> None:
    march = ReportRequest(start=D(2026, 3, 1), end=D(2026, 3, 31))
    by_channel = service.reports.run("cases", march.model_copy(update={
        "options": {"group": "channel"}}))
    assert one(by_channel, channel="wechat")["cases"] == 2
    assert one(by_channel, channel="hotline")["cases"] == 6
    by_project = service.reports.run("cases", march.model_copy(update={
        "options": {"group": "project"}, "project": "XL2"}))
    assert [(r["project"], r["cases"]) for r in by_project.rows] == [("XL2", 2)]
    by_category = service.reports.run("cases", march.model_copy(update={
        "options": {"group": "category"}}))
    assert one(by_category, category="complaint")["cases"] == 2
    monthly = service.reports.run("cases", ReportRequest(
        start=D(2026, 3, 1), end=D(2026, 4, 30), by="month", options={"group": "department"}))
    assert one(monthly, department="CRC", period="2026-04")["median_resolution_hours"] == 100.0
    with pytest.raises(InvalidInput):
        service.reports.run("cases", ReportRequest(options={"group": "colour"}))


def test_who_reads_which_report(service: CRM) -> None:
    partner = Actor(staff_id="p1", role="partner")
    for name in ("funnel", "sources", "cases", "staff", "scorecard"):
        with pytest.raises(Forbidden):
            service.reports.run(name, ReportRequest(actor=partner))
    consultant = Actor(staff_id="wang", role="sales")
    for name in ("cases", "scorecard"):
        with pytest.raises(Forbidden):
            service.reports.run(name, ReportRequest(actor=consultant))
    # a service desk sees its department's cases only
    service.directory.add_department({"code": "CRC", "name": "CRC"})
    service.directory.add_staff({"id": "qian", "name": "Qian", "role": "service",
                                 "department": "CRC"})
    mine = service.reports.run("cases", ReportRequest(
        actor=Actor(staff_id="qian", role="service"), start=D(2026, 3, 1)))
    assert {r["department"] for r in mine.rows} == {"CRC"}
    # a manager: their department's projects only
    service.directory.add_department({"code": "S1", "name": "Sales", "projects": ["XL1"]})
    service.directory.add_staff({"id": "li", "name": "Li", "role": "manager",
                                 "department": "S1"})
    li = Actor(staff_id="li", role="manager")
    with pytest.raises(Forbidden):
        service.reports.run("funnel", ReportRequest(actor=li, project="XL2"))
    funnel = service.reports.run("funnel", ReportRequest(actor=li))
    assert {r["project"] for r in funnel.rows} == {"XL1"}


# -- staff --------------------------------------------------------------------------------
@pytest.fixture
def team(crm: CRM) -> CRM:
    """S1 (XL1): li, a manager, in touch with one customer in March; wang 45 + 120
    minutes with two customers; zhou 60 minutes; March has 31 days."""
    crm.directory.add_department({"code": "S1", "name": "Sales one", "projects": ["XL1"]})
    for sid, role in (("li", "manager"), ("wang", "sales"), ("zhou", "sales")):
        crm.directory.add_staff({"id": sid, "name": sid.title(), "role": role,
                                 "department": "S1"})
    crm.directory.add_staff({"id": "p1", "name": "Agent", "role": "partner"})
    c1 = customer(crm, 1, owner="wang")
    c2 = customer(crm, 2, owner="wang")
    c3 = customer(crm, 3, owner="zhou")
    customer(crm, 4, owner="ghost")  # an id the directory lacks
    visit(crm, c1, at(2, 1))
    crm.customers.set_stage(c1, "buyer", "XL1", occurred_at=at(2, 10))
    visit(crm, c2, at(2, 2))
    for cid, staff, minutes, when in ((c1, "wang", 45, at(3, 2)), (c2, "wang", 120, at(3, 3)),
                                      (c1, "wang", None, at(3, 4)), (c3, "zhou", 60, at(3, 5)),
                                      (c3, "li", 5, at(3, 6)), (c3, "zhou", 500, at(4, 1))):
        crm.interactions.log(cid, {"kind": "call", "project": "XL1", "staff": staff,
                                   "occurred_at": when, "minutes": minutes})
    now = dt.datetime.now(dt.UTC)
    for staff, due in (("wang", now - dt.timedelta(days=1)), ("wang", now + dt.timedelta(days=1)),
                       ("zhou", now + dt.timedelta(days=2))):
        crm.tasks.add({"customer_id": c1, "project": "XL1", "kind": "call",
                       "due_at": due, "staff": staff})
    return crm


def test_staff_figures_and_who_is_behind(team: CRM) -> None:
    report = team.reports.run("staff", ReportRequest(start=D(2026, 3, 1), end=D(2026, 3, 31)))
    got = {r["staff"]: r for r in report.rows}
    assert set(got) == {"li", "wang", "zhou", "ghost"}  # no partners
    assert (got["ghost"]["role"], got["ghost"]["customers_owned"], got["ghost"]["status"]) \
        == ("(not in directory)", 1, "behind")
    wang = got["wang"]
    assert (wang["customers_owned"], wang["interactions"], wang["customers_contacted"],
            wang["contact_minutes"], wang["open_followups"], wang["overdue_followups"]) == \
        (2, 3, 2, 165, 2, 1)
    assert wang["conversion"] == 0.5  # two visited, one signed
    assert (wang["target"], wang["target_unit"], wang["status"]) == (2.7, "hours", "ok")
    assert (got["zhou"]["contact_minutes"], got["zhou"]["status"]) == (60, "behind")
    li = got["li"]
    assert (li["customers_contacted"], li["target"], li["target_unit"], li["status"]) == \
        (1, 0.8, "customers", "ok")  # 10 × 31 / 365 = 0.85
    assert report.notes[-1] == "behind: zhou: 1 of 2.7 hours; ghost: 0 of 2.7 hours"


def test_staff_rows_in_the_same_order_on_both_databases(team: CRM) -> None:
    """By department, staff without one after those with one (PostgreSQL and SQLite
    sort NULL differently unless told), then the ids the directory lacks."""
    team.directory.add_department({"code": "A0", "name": "Analysts"})
    team.directory.add_staff({"id": "an", "name": "An", "role": "analyst"})
    team.directory.add_staff({"id": "bo", "name": "Bo", "role": "sales", "department": "A0"})
    report = team.reports.run("staff", ReportRequest(start=D(2026, 3, 1), end=D(2026, 3, 31)))
    assert [r["staff"] for r in report.rows] == ["bo", "li", "wang", "zhou", "an", "ghost"]


def test_staff_by_month_and_targets_from_settings(team: CRM, crm_factory: Any) -> None:
    report = team.reports.run("staff", ReportRequest(
        start=D(2026, 3, 1), end=D(2026, 4, 15), by="month"))
    april = one(report, staff="zhou", period="2026-04")
    # 15 days of April: 8 × 15 × 4 / 365 = 1.3 hours; 500 minutes is plenty
    assert (april["target"], april["contact_minutes"], april["status"]) == (1.3, 500, "ok")
    assert one(report, staff="li", period="2026-04")["status"] == "behind"
    strict = crm_factory(settings={"kpi": {"manager_customers_per_year": 100,
                                           "staff_contact_hours_per_quarter": 1}})
    march = strict.reports.run("staff", ReportRequest(start=D(2026, 3, 1), end=D(2026, 3, 31)))
    assert one(march, staff="li")["status"] == "behind"  # 8.5 customers expected
    assert one(march, staff="zhou")["status"] == "ok"    # 0.3 hours expected
    only = team.reports.run("staff", ReportRequest(
        actor=Actor(staff_id="wang", role="sales"), start=D(2026, 3, 1)))
    assert [r["staff"] for r in only.rows] == ["wang"]
    own = team.reports.run("funnel", ReportRequest(actor=Actor(staff_id="wang", role="sales")))
    assert one(own, stage="prospect")["customers"] == 2  # c1 and c2 are wang's; c3 is not
    assert [r["staff"] for r in team.reports.run("staff", ReportRequest(
        start=D(2026, 3, 1), options={"department": "S1"})).rows] == ["li", "wang", "zhou"]
    with pytest.raises(NotFound):
        team.reports.run("staff", ReportRequest(options={"department": "S9"}))


def test_kpi_settings_are_strict(crm_factory: Any) -> None:
    from recrm_core import ConfigError

    with pytest.raises(ConfigError, match="kpi"):
        crm_factory(settings={"kpi": {"manager_customer_per_year": 5}})


# -- scorecard ----------------------------------------------------------------------------
class FakeSurvey:
    """A survey plugin's ``survey.scores``: NPS 40 at XL1 in March, 20 before."""

    @hookimpl
    def recrm_reports(self, register: Any) -> None:
        def scores(_crm: Any, request: ReportRequest) -> Report:
            march = request.start == D(2026, 3, 1)
            return Report(name="survey.scores", title="Scores",
                          columns=[Column(key="project", title="Project"),
                                   Column(key="nps", title="NPS", kind="number"),
                                   Column(key="csat", title="CSAT", kind="percent"),
                                   Column(key="l3", title="L3", kind="percent")],
                          rows=[{"project": request.project, "nps": 40 if march else 20,
                                 "csat": 0.9, "l3": None}])

        register(ReportSpec(name="survey.scores", title="Scores", description="d", run=scores))


def whole(report: Report, project: str, period: str = "all") -> dict[str, Any]:
    """A project's own scorecard row (department ``all (…)``)."""
    [row] = [r for r in report.rows if r["project"] == project and r["period"] == period
             and str(r["department"]).startswith("all")]
    return row


def test_scorecard(service: CRM, register_plugin: Any) -> None:
    cid = customer(service, 9, project="XL2")
    service.customers.set_stage(cid, "owner", "XL2", force=True)
    report = service.reports.run("scorecard", ReportRequest(start=D(2026, 3, 1),
                                                            end=D(2026, 3, 31)))
    assert report.chart is not None and report.chart.kind == "grid"
    assert "compared with 2026-02-01 to 2026-02-28" in report.notes[0]
    assert any("no survey plugin" in n for n in report.notes)
    kinds = {c.key: c.kind for c in report.columns}
    assert (kinds["on_time_rate"], kinds["csat"], kinds["l3"], kinds["sales_conversion"],
            kinds["nps"], kinds["complaints_per_100_owners"], kinds["response_hours"]) == (
        "percent", "percent", "percent", "percent", "number", "number", "hours")
    titles = {c.key: c.title for c in report.columns}
    assert titles["on_time_rate"] == "Cases on time (≥ 90.0%)"
    # XL2: one owner, two complaints handled by CRC (resolved in 2 and 5 hours, both
    # within 24: on time; the resolution is the assignee's first action)
    xl2 = whole(report, "XL2")
    assert (xl2["complaints_per_100_owners"], xl2["status"], xl2["nps"]) == (
        200.0, "behind", None)
    assert "Complaints per 100 owners" in xl2["behind"]
    crc = one(report, project="XL2", department="CRC")
    assert (crc["complaints_per_100_owners"], crc["on_time_rate"], crc["response_hours"],
            crc["nps"], crc["sales_conversion"]) == (200.0, 1.0, 3.5, None, None)
    # XL1: SVC's six March cases, 4 on time; response 0.5, 1, 1.5, 2, 3: median 1.5;
    # no owners, so no complaints rate; CRC's April case is another period
    xl1 = whole(report, "XL1")
    assert xl1["on_time_rate"] == pytest.approx(0.6667, abs=1e-4)
    assert (xl1["response_hours"], xl1["status"]) == (1.5, "behind")
    svc = one(report, project="XL1", department="SVC")
    assert (svc["on_time_rate"], svc["response_hours"], svc["complaints_per_100_owners"]) \
        == (pytest.approx(0.6667, abs=1e-4), 1.5, None)
    assert not rows(report, project="XL1", department="CRC")
    assert xl1["changes"] is None  # February had nothing to compare with
    register_plugin(FakeSurvey(), name="survey")
    report = service.reports.run("scorecard", ReportRequest(start=D(2026, 3, 1),
                                                            end=D(2026, 3, 31)))
    xl1 = whole(report, "XL1")
    assert (xl1["nps"], xl1["csat"], xl1["l3"]) == (40.0, 0.9, None)
    assert "NPS +20" in xl1["changes"] and "CSAT +0.0 pts" in xl1["changes"]
    assert not any("no survey plugin" in n for n in report.notes)


def test_scorecard_by_month(service: CRM) -> None:
    """March and April, each against the month before: XL1's own row in April holds
    CRC's one case (100 hours, due in 24: late; resolved by its assignee)."""
    report = service.reports.run("scorecard", ReportRequest(
        start=D(2026, 3, 10), end=D(2026, 4, 20), by="month"))
    assert "months 2026-03 to 2026-04" in report.notes[0]
    assert sorted({r["period"] for r in report.rows}) == ["2026-03", "2026-04"]
    march, april = whole(report, "XL1", "2026-03"), whole(report, "XL1", "2026-04")
    assert march["on_time_rate"] == pytest.approx(0.6667, abs=1e-4)
    assert (april["on_time_rate"], april["response_hours"]) == (0.0, 100.0)
    assert april["changes"] == "Cases on time -66.7 pts; Median response +98.5"
    crc = one(report, project="XL1", department="CRC", period="2026-04")
    assert (crc["on_time_rate"], crc["response_hours"]) == (0.0, 100.0)
    # SVC had cases in March only: its April row says so (no value), after March's
    svc = rows(report, project="XL1", department="SVC")
    assert [(r["period"], r["status"]) for r in svc] == [("2026-03", "behind"),
                                                         ("2026-04", "none")]
    assert [r["department"] for r in rows(report, project="XL1", period="2026-04")][1:] \
        == ["CRC", "SVC"]


def test_scorecard_periods() -> None:
    from recrm_core.reports.scorecard import periods

    zone = ZoneInfo("Asia/Shanghai")
    assert periods(ReportRequest(start=D(2026, 1, 1), end=D(2026, 3, 31)), zone) == (
        (D(2026, 1, 1), D(2026, 3, 31)), (D(2025, 10, 1), D(2025, 12, 31)))
    assert periods(ReportRequest(start=D(2026, 3, 10), end=D(2026, 3, 19)), zone) == (
        (D(2026, 3, 10), D(2026, 3, 19)), (D(2026, 2, 28), D(2026, 3, 9)))
    (start, end), (before, before_end) = periods(ReportRequest(), zone)
    assert start.day == 1 and (end + dt.timedelta(days=1)).day == 1
    assert before_end == start - dt.timedelta(days=1) and before.month in (1, 4, 7, 10)
    with pytest.raises(InvalidInput):
        periods(ReportRequest(end=D(2026, 3, 1)), zone)


def test_scorecard_by_periods() -> None:
    from recrm_core.reports.scorecard import by_periods

    quarters = by_periods(ReportRequest(start=D(2026, 2, 10), end=D(2026, 7, 1),
                                        by="quarter"), SH)
    assert quarters == [("2025-Q4", D(2025, 10, 1), D(2025, 12, 31)),
                        ("2026-Q1", D(2026, 1, 1), D(2026, 3, 31)),
                        ("2026-Q2", D(2026, 4, 1), D(2026, 6, 30)),
                        ("2026-Q3", D(2026, 7, 1), D(2026, 9, 30))]
    years = by_periods(ReportRequest(start=D(2025, 6, 1), end=D(2025, 6, 2), by="year"), SH)
    assert years == [("2024", D(2024, 1, 1), D(2024, 12, 31)),
                     ("2025", D(2025, 1, 1), D(2025, 12, 31))]
    default = by_periods(ReportRequest(by="month"), SH)
    assert len(default) == 5  # the last four full months and the one before them
    assert default[-1][2] < dt.datetime.now(SH).date() and default[-1][2].day >= 28
    with pytest.raises(InvalidInput):
        by_periods(ReportRequest(end=D(2026, 3, 1), by="month"), SH)


@pytest.mark.parametrize(("start", "end", "by", "field"), [
    (D(1, 1, 1), None, "all", "from"), (D(1, 3, 1), D(1, 12, 31), "all", "from"),
    (D(1, 1, 1), D(1, 1, 1), "year", "from"), (D(9999, 12, 31), D(9999, 12, 31), "quarter",
                                                "to"),
    (D(2026, 1, 1), D(9999, 12, 31), "all", "to"), (D(1, 1, 1), D(9999, 12, 31), "month",
                                                     "to")])
def test_scorecard_at_the_calendars_ends_is_invalid_input(
        crm: CRM, start: dt.date, end: dt.date | None, by: Any, field: str) -> None:
    """The period before year 1, or the day after 9999-12-31, is no date: a day no
    database keeps, as the other reports say (before: OverflowError or ValueError, a 500
    over HTTP)."""
    with pytest.raises(InvalidInput, match="outside the dates a database keeps") as refused:
        crm.reports.run("scorecard", ReportRequest(start=start, end=end, by=by))
    assert refused.value.field == field


# -- interactions' minutes ----------------------------------------------------------------
def test_interactions_log_minutes_cli(crm: CRM, cli_runner: Any) -> None:
    cid = customer(crm, 1)
    done = cli_runner.invoke("interactions", "log", str(cid), "--kind", "call",
                             "--minutes", "30", "--json")
    assert done.exit_code == 0, done.stderr
    assert done.json()["minutes"] == 30
    assert crm.interactions.list(cid)[0].minutes == 30
    for bad in ("-5", "2000", "half"):
        refused = cli_runner.invoke("interactions", "log", str(cid), "--kind", "call",
                                    "--minutes", bad)
        assert refused.exit_code == 2 and "Traceback" not in refused.stderr, bad
        assert "--minutes" in refused.stderr
    with pytest.raises(InvalidInput, match="minutes"):
        crm.interactions.log(cid, {"kind": "call", "minutes": 1441})


def test_minutes_are_checked_by_the_database(crm: CRM) -> None:
    cid = customer(crm, 1)
    with pytest.raises(IntegrityError), crm.engine.begin() as conn:
        conn.execute(insert(InteractionRow).values(
            customer_id=cid, kind="call", minutes=-1, occurred_at=dt.datetime.now(dt.UTC),
            created_at=dt.datetime.now(dt.UTC), data={}))


def test_migration_keeps_interactions(recrm_database_url: str) -> None:
    from recrm_core.migrating import downgrade, upgrade

    with CRM(database_url=recrm_database_url, plugins=[]) as crm:
        upgrade(crm)
        downgrade(crm, "core", "core_0012")
        with crm.engine.begin() as conn:
            assert "minutes" not in {c["name"] for c in inspect(conn).get_columns(
                "interactions")}
    with CRM(database_url=recrm_database_url, plugins=[]) as crm:
        # written before the column existed: a Core insert of the old columns
        with crm.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO customers (id, stage, created_at, updated_at) VALUES "
                "(1, 'prospect', '2026-01-01 00:00:00', '2026-01-01 00:00:00')")
            conn.exec_driver_sql(
                "INSERT INTO interactions (customer_id, kind, occurred_at, data, created_at) "
                "VALUES (1, 'call', '2026-01-02 00:00:00', '{}', '2026-01-02 00:00:00')")
        upgrade(crm)
        listed = crm.interactions.list(1)
        assert [(i.kind, i.minutes) for i in listed] == [("call", None)]
        crm.interactions.log(1, {"kind": "call", "minutes": 15})
        assert sorted(i.minutes or 0 for i in crm.interactions.list(1)) == [0, 15]


def test_api_takes_minutes(crm: CRM, api_client: Any) -> None:
    cid = customer(crm, 1)
    client = api_client("admin", staff="boss")
    done = client.post(f"/v1/customers/{cid}/interactions", json={"kind": "call", "minutes": 20})
    assert done.status_code == 201, done.text
    assert done.json()["minutes"] == 20
    refused = client.post(f"/v1/customers/{cid}/interactions",
                          json={"kind": "call", "minutes": -3})
    assert refused.status_code == 422 and "minutes" in refused.text
    listed = client.get(f"/v1/customers/{cid}/interactions").json()
    assert [i["minutes"] for i in listed] == [20]


def test_percentiles_match_percentile_cont(crm: CRM, recrm_backend: str) -> None:
    """The window-function percentiles against numbers worked out like PostgreSQL's
    ``percentile_cont`` (and against it, on PostgreSQL)."""
    import random

    from sqlalchemy import Float, String, func, literal, select, union_all

    from recrm_core.reports.aggregates import percentiles

    rng = random.Random(5)
    data = [(g, float(rng.randint(0, 1000))) for g in ("a", "b", "c") for _ in range(
        {"a": 1, "b": 2, "c": 37}[g])]
    source = union_all(*[select(literal(g, String).label("g"), literal(v, Float).label("v"))
                         for g, v in data]).subquery()

    def cont(xs: list[float], p: float) -> float:
        xs = sorted(xs)
        rank = (len(xs) - 1) * p
        lo = int(rank)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (rank - lo) * (xs[hi] - xs[lo])

    with crm.engine.connect() as conn:
        got = {row.g: (row.n, row.p50, row.p90) for row in conn.execute(
            percentiles(source, ["g"], "v", [50, 90]))}
        for g in ("a", "b", "c"):
            xs = [v for k, v in data if k == g]
            assert got[g][0] == len(xs)
            assert got[g][1] == pytest.approx(cont(xs, 0.5))
            assert got[g][2] == pytest.approx(cont(xs, 0.9))
        if recrm_backend == "postgresql":
            for g, p50, p90 in conn.execute(select(
                    source.c.g, func.percentile_cont(0.5).within_group(source.c.v),
                    func.percentile_cont(0.9).within_group(source.c.v)).group_by(source.c.g)):
                assert (got[g][1], got[g][2]) == (pytest.approx(p50), pytest.approx(p90))
