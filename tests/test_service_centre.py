"""The service centre: SLAs in working hours with China's holidays, routing with a round
robin, escalation levels with their own clocks and the sweep, intake channels and
incidents; on both backends, with a fixed clock."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from recrm_core import CRM, Actor, DeliveryResult, Forbidden, InvalidInput, Message, Refused
from recrm_core.hooks import hookimpl
from recrm_core.testing import RecrmCliRunner

CST = ZoneInfo("Asia/Shanghai")
H = dt.timedelta(hours=1)
WORKING = {"categories": {"repair": {"high": 8, "clock": "working"}}}


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=CST)


@pytest.fixture
def cid(crm: CRM) -> int:
    return crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id


def _open(crm: CRM, customer_id: int, at: dt.datetime, **fields: Any) -> Any:
    data = {"customer_id": customer_id, "category": "repair", "subject": "漏水",
            "priority": "high"} | fields
    return crm.cases.open(data, opened_at=at)


# -- working hours and holidays -------------------------------------------------------------


@pytest.mark.recrm_settings(sla=WORKING)
@pytest.mark.parametrize(("opened", "due"), [
    # Friday evening, 8 working hours: all of Monday's working day
    (local(2026, 12, 4, 19, 0), local(2026, 12, 7, 17, 0)),
    # Friday 17:00: one hour on Friday, seven on Monday
    (local(2026, 12, 4, 17, 0), local(2026, 12, 7, 16, 0)),
    # the eve of Golden Week 2026: one hour, then 1-7 October off, Thursday 8th
    (local(2026, 9, 30, 17, 0), local(2026, 10, 8, 16, 0)),
    # Friday 9 October: Saturday the 10th is a make-up working day (调休)
    (local(2026, 10, 9, 17, 0), local(2026, 10, 10, 16, 0)),
    # Saturday 26 September is no make-up day: Monday the 28th
    (local(2026, 9, 26, 10, 0), local(2026, 9, 28, 17, 0)),
    # inside one working day
    (local(2026, 12, 3, 9, 30), local(2026, 12, 3, 17, 30)),
])
def test_working_hour_sla_skips_nights_weekends_and_holidays(
        crm: CRM, cid: int, opened: dt.datetime, due: dt.datetime) -> None:
    case = _open(crm, cid, opened)
    assert case.sla_due_at == due.astimezone(dt.UTC)


@pytest.mark.recrm_settings(sla=WORKING)
def test_other_categories_keep_the_calendar_clock(crm: CRM, cid: int) -> None:
    opened = local(2026, 12, 4, 19, 0)
    case = _open(crm, cid, opened, category="inquiry")
    assert case.sla_due_at == (opened + 24 * H).astimezone(dt.UTC)


def test_sla_settings_are_checked() -> None:
    from pydantic import ValidationError

    from recrm_core.config import SlaPolicy

    for bad in ({"clock": "lunar"}, {"working_hours": ["18:00", "09:00"]},
                {"working_hours": ["9am", "18:00"]},
                {"categories": {"repair": {"clock": "sometimes"}}},
                {"categories": {"repair": {"urgent": -1}}}, {"levels": []},
                {"levels": [{"name": "x", "department": "D", "window_hours": 0}]}):
        with pytest.raises(ValidationError):
            SlaPolicy.model_validate(bad)


def test_a_year_the_calendar_does_not_know_counts_weekdays() -> None:
    from recrm_core.workingtime import is_working_day

    assert is_working_day(dt.date(2030, 1, 7))  # a Monday
    assert not is_working_day(dt.date(2030, 1, 5))  # a Saturday


# -- routing --------------------------------------------------------------------------------

ROUTING = [{"category": "repair", "project": "XL2", "department": "XLSVC"},
           {"category": "repair", "department": "ENG"},
           {"category": "inquiry", "department": "DESK", "assign": "desk"}]


def _staff(crm: CRM) -> None:
    for code in ("XLSVC", "ENG", "DESK"):
        crm.directory.add_department({"code": code, "name": code})
    for sid in ("e1", "e2", "e3"):
        crm.directory.add_staff({"id": sid, "name": sid, "role": "service", "department": "ENG"})
    crm.directory.add_staff({"id": "x1", "name": "x1", "role": "service",
                             "department": "XLSVC"})
    crm.directory.leave("e2")


@pytest.mark.recrm_settings(routing=ROUTING)
def test_a_case_without_an_assignee_is_routed_in_turn(crm: CRM, cid: int) -> None:
    _staff(crm)
    now = dt.datetime.now(dt.UTC)
    routed = [_open(crm, cid, now) for _ in range(4)]
    # e2 left: the round robin skips them
    assert [(c.department, c.assignee) for c in routed] == [
        ("ENG", "e1"), ("ENG", "e3"), ("ENG", "e1"), ("ENG", "e3")]
    route = crm.cases.get(routed[0].id).history[1]
    assert (route.action, route.to_value) == ("route", "ENG/e1")
    assert "routing rule 2 (category repair, round_robin)" in (route.note or "")
    # the project's own rule wins; an assignee given is kept; a desk rule leaves it open
    assert _open(crm, cid, now, project="XL2").assignee == "x1"
    assert _open(crm, cid, now, assignee="e3").department is None
    desk = _open(crm, cid, now, category="inquiry")
    assert (desk.department, desk.assignee) == ("DESK", None)
    # a named department stays; the rule's turn applies within it
    named = _open(crm, cid, now, department="XLSVC")
    assert (named.department, named.assignee) == ("XLSVC", "x1")
    # nothing matches: left as opened, and `route` says so
    plain = _open(crm, cid, now, category="praise")
    assert (plain.department, plain.assignee) == (None, None)
    with pytest.raises(Refused, match="no routing rule matches category 'praise'"):
        crm.cases.route(plain.id)
    rerouted = crm.cases.route(routed[0].id)
    assert (rerouted.department, rerouted.assignee) == ("ENG", "e1")


@pytest.mark.recrm_settings(routing=ROUTING)
def test_route_on_the_command_line(crm: CRM, cid: int, cli_runner: RecrmCliRunner) -> None:
    _staff(crm)
    opened = cli_runner.invoke("cases", "open", str(cid), "--category", "repair", "--subject",
                               "门锁坏了", "--channel", "WeChat", "--json")
    assert opened.exit_code == 0, opened.stderr
    case = opened.json()
    assert (case["assignee"], case["channel"]) == ("e1", "wechat")
    again = cli_runner.invoke("cases", "route", str(case["id"]), "--json")
    assert again.exit_code == 0 and again.json()["assignee"] == "e3"
    bad = cli_runner.invoke("cases", "open", str(cid), "--category", "repair", "--subject",
                            "x", "--channel", "pigeon")
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr


# -- escalation levels and the sweep ----------------------------------------------------------


class Outbox:
    """A transport plugin keeping what it is given (the core's message hook)."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    @hookimpl
    def recrm_deliver_message(self, crm: CRM, message: Message) -> DeliveryResult:
        self.sent.append(message)
        return DeliveryResult(transport="outbox", ok=True)


def _levels(crm: CRM) -> Outbox:
    outbox = Outbox()
    crm.pm.register(outbox)
    crm.projects.add({"code": "XL2", "name": "兴隆二期", "service_department": "XLSVC"})
    for code, email in (("XLSVC", None), ("CRC", "crc@example.com"), ("HQ", None)):
        crm.directory.add_department({"code": code, "name": code, "email": email})
    crm.directory.add_staff({"id": "hq1", "name": "总部", "role": "manager",
                             "department": "HQ", "email": "hq1@example.com"})
    return outbox


T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def test_the_sweep_escalates_level_by_level_with_its_own_clock(crm: CRM, cid: int) -> None:
    outbox = _levels(crm)
    case = crm.cases.open({"customer_id": cid, "category": "repair", "subject": "漏水",
                           "priority": "low", "project": "XL2"}, opened_at=T0)  # 168 h
    assert (case.escalation_level, case.level) == (0, "project service desk")
    assert crm.cases.sweep(now=T0 + 167 * H) == {"checked": 0, "escalated": 0, "notified": 0}
    due = T0 + 168 * H
    first = crm.cases.sweep(now=due + H)
    assert first == {"checked": 1, "escalated": 1, "notified": 0}
    assert crm.cases.sweep(now=due + H) == {"checked": 1, "escalated": 0, "notified": 0}
    got = crm.cases.get(case.id)
    assert (got.escalation_level, got.level, got.department, got.priority) == (
        1, "city customer-relations centre", "CRC", "normal")
    assert got.sla_due_at == T0 + 72 * H  # normal's allowance from the opening: earlier
    escalate = next(h for h in got.history if h.action == "escalate")
    assert "automatic" in (escalate.note or "")
    assert [m.to for m in outbox.sent] == ["crc@example.com"]  # the department's email
    # 48 h at CRC: the window counts from reaching the level; a status change restarts it
    assert crm.cases.sweep(now=due + 48 * H)["escalated"] == 0
    crm.cases.start(case.id)  # now is the status change's time: the window restarts
    assert crm.cases.sweep(now=due + 49 * H + H)["escalated"] == 0
    later = dt.datetime.now(dt.UTC) + 49 * H
    assert crm.cases.sweep(now=later)["escalated"] == 1
    top = crm.cases.get(case.id)
    assert (top.level, top.department) == ("head office", "HQ")
    assert outbox.sent[-1].to == "hq1@example.com"  # no department email: its staff's
    # the top: no further, but notified again after each window (72 h)
    assert crm.cases.sweep(now=later + 71 * H) == {"checked": 1, "escalated": 0,
                                                   "notified": 0}
    assert crm.cases.sweep(now=later + 72 * H)["notified"] == 1
    assert crm.cases.sweep(now=later + 72 * H)["notified"] == 0
    assert crm.cases.get(case.id).escalation_level == 2
    assert len(outbox.sent) == 3
    assert crm.cases.summary(now=later)["by_level"] == {"head office": 1}


@pytest.mark.recrm_settings(sla={"levels": [
    {"name": "intake", "department": "INTAKE", "window_hours": 2},
    {"name": "project desk", "department": "project", "window_hours": 4}]})
def test_a_project_level_goes_to_the_projects_service_department(crm: CRM, cid: int) -> None:
    _levels(crm)
    case = crm.cases.open({"customer_id": cid, "category": "repair", "subject": "漏水",
                           "project": "XL2", "priority": "urgent"}, opened_at=T0)
    up = crm.cases.escalate(case.id, note="业主投诉", actor=Actor(staff_id="kf", role="service"))
    assert (up.level, up.department, up.assignee) == ("project desk", "XLSVC", None)
    with pytest.raises(Refused, match="top level"):
        crm.cases.escalate(case.id)


def test_a_sweep_touches_only_active_overdue_cases(crm: CRM, cid: int) -> None:
    _levels(crm)
    done = _open(crm, cid, T0)
    crm.cases.resolve(done.id)
    fresh = _open(crm, cid, dt.datetime.now(dt.UTC))
    result = crm.cases.sweep(now=dt.datetime.now(dt.UTC))
    assert result == {"checked": 0, "escalated": 0, "notified": 0}
    assert crm.cases.get(fresh.id).escalation_level == 0
    with pytest.raises(Forbidden):
        crm.cases.sweep(actor=Actor(staff_id="a", role="analyst"))


def test_sweep_on_the_command_line(crm: CRM, cid: int, cli_runner: RecrmCliRunner) -> None:
    _levels(crm)
    _open(crm, cid, T0)
    result = cli_runner.invoke("cases", "sweep", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {"checked": 1, "escalated": 1, "notified": 0}
    shown = cli_runner.invoke("cases", "show", "1")
    assert "city customer-relations centre" in shown.stdout and "escalate" in shown.stdout


# -- intake channels and incidents -------------------------------------------------------------


def test_intake_channel_is_recorded_and_counted(crm: CRM, cid: int) -> None:
    now = dt.datetime.now(dt.UTC)
    _open(crm, cid, now, channel="hotline")
    _open(crm, cid, now, channel=" Chairman ")
    _open(crm, cid, now)
    assert crm.cases.summary()["by_channel"] == {"chairman": 1, "hotline": 1, "other": 1}
    with pytest.raises(InvalidInput) as bad:
        _open(crm, cid, now, channel="pigeon")
    assert bad.value.field == "channel"


def test_an_incident_links_cases_and_closing_resolves_them(crm: CRM, cid: int) -> None:
    other = crm.customers.add({"name": "李娜", "mobile": "13912345678"}).customer.id
    now = dt.datetime.now(dt.UTC)
    cases = [_open(crm, cid, now), _open(crm, other, now), _open(crm, other, now)]
    crm.cases.resolve(cases[2].id)
    incident = crm.incidents.open({"title": "3号楼漏水", "project": "XL2", "owner": "eng1"})
    linked = crm.incidents.link(incident.id, [c.id for c in cases], note="同一漏点")
    assert sorted(c.id for c in linked.cases) == sorted(c.id for c in cases)
    assert crm.cases.get(cases[0].id).history[-1].action == "incident"
    closed = crm.incidents.close(incident.id, resolve_cases=True, note="已修复")
    assert closed.status == "closed"
    states = {c.id: c.status for c in closed.cases}
    assert states == {cases[0].id: "resolved", cases[1].id: "resolved", cases[2].id: "resolved"}
    resolved = crm.cases.get(cases[0].id).history[-1]
    assert (resolved.action, resolved.note) == ("resolve", f"incident {incident.id} closed: 已修复")
    # the already resolved one got no second resolution
    assert [h.action for h in crm.cases.get(cases[2].id).history].count("resolve") == 1
    with pytest.raises(Refused, match="closed"):
        crm.incidents.link(incident.id, [cases[0].id])
    with pytest.raises(Refused, match="closed already"):
        crm.incidents.close(incident.id)
    with pytest.raises(Forbidden):
        crm.incidents.get(incident.id, actor=Actor(staff_id="p", role="partner"))
    # an analyst reads it without the cases' free text
    read = crm.incidents.get(incident.id, actor=Actor(staff_id="an", role="analyst"))
    assert all(c.subject != "漏水" for c in read.cases)


def test_incidents_are_exported_and_erased_when_only_theirs(crm: CRM, cid: int) -> None:
    other = crm.customers.add({"name": "李娜", "mobile": "13912345678"}).customer.id
    now = dt.datetime.now(dt.UTC)
    mine = crm.incidents.open({"title": "王伟家门锁", "description": "王伟 13812345678"})
    shared = crm.incidents.open({"title": "3号楼漏水"})
    crm.incidents.link(mine.id, [_open(crm, cid, now).id])
    crm.incidents.link(shared.id, [_open(crm, cid, now).id, _open(crm, other, now).id])
    exported = crm.privacy.export(cid)
    assert {i["title"] for i in exported["incidents"]} == {"王伟家门锁", "3号楼漏水"}
    result = crm.privacy.erase(cid, reason="PIPL Art. 47")
    assert crm.incidents.get(mine.id).description is None
    assert crm.incidents.get(mine.id).title == "(erased)"
    assert crm.incidents.get(shared.id).title == "3号楼漏水"
    step = next(s for s in result.steps if s["table"] == "incidents")
    assert step["anonymised"] == 1


def test_incidents_on_the_command_line(crm: CRM, cid: int, cli_runner: RecrmCliRunner) -> None:
    now = dt.datetime.now(dt.UTC)
    a, b = _open(crm, cid, now), _open(crm, cid, now)
    run = cli_runner.invoke
    opened = run("incidents", "open", "--title", "交付延期", "--project", "XL2", "--json")
    assert opened.exit_code == 0, opened.stderr
    iid = str(opened.json()["id"])
    assert run("incidents", "link", iid, str(a.id), str(b.id)).exit_code == 0
    shown = run("incidents", "show", iid, "--json")
    assert len(shown.json()["cases"]) == 2
    listed = run("incidents", "list")
    assert listed.exit_code == 0 and "交付延期" in listed.stdout
    closed = run("incidents", "close", iid, "--resolve-cases", "--note", "已交付", "--json")
    assert closed.exit_code == 0
    assert {c["status"] for c in closed.json()["cases"]} == {"resolved"}
    missing = run("incidents", "show", "999")
    assert missing.exit_code == 1 and len(missing.stderr.strip().splitlines()) == 1
    usage = run("incidents", "open", "--title", " ")
    assert usage.exit_code == 2 and "Traceback" not in usage.stderr


@pytest.mark.recrm_settings(routing=ROUTING)
def test_the_api_routes_cases_and_keeps_incidents(crm: CRM, cid: int, api_client: Any) -> None:
    from recrm_core.testing import problem_of

    _staff(crm)
    client = api_client("admin")
    opened = client.post("/v1/cases", json={"customer_id": cid, "category": "repair",
                                            "subject": "漏水", "channel": "hotline"})
    assert opened.status_code == 201, opened.text
    case = opened.json()
    assert (case["assignee"], case["channel"], case["level"]) == ("e1", "hotline",
                                                                  "project service desk")
    rerouted = client.post(f"/v1/cases/{case['id']}/route")
    assert rerouted.status_code == 200 and rerouted.json()["assignee"] == "e3"
    problem_of(client.post("/v1/cases", json={"customer_id": cid, "category": "repair",
                                              "subject": "x", "channel": "pigeon"}), 422)
    incident = client.post("/v1/incidents", json={"title": "3号楼漏水"}).json()
    linked = client.post(f"/v1/incidents/{incident['id']}/cases", json={"cases": [case["id"]]})
    assert linked.status_code == 200 and [c["id"] for c in linked.json()["cases"]] == [
        case["id"]]
    closed = client.post(f"/v1/incidents/{incident['id']}/close",
                         json={"resolve_cases": True, "note": "已修复"})
    assert closed.status_code == 200 and closed.json()["cases"][0]["status"] == "resolved"
    problem_of(client.post(f"/v1/incidents/{incident['id']}/close"), 409)
    problem_of(client.get("/v1/incidents/999"), 404)
    assert [i["id"] for i in client.get("/v1/incidents?status=closed").json()] == [
        incident["id"]]
    problem_of(api_client("partner", staff="p1").get("/v1/incidents"), 403)


def test_review_edges(crm: CRM, cid: int, api_client: Any, cli_runner: RecrmCliRunner) -> None:
    """A case above the top level (the settings lost levels) is swept as at the top; NUL
    in a subject, title or note is refused; absurd hours are a settings error; cases are
    listed by intake channel; the 360 view shows level and escalations."""
    from pydantic import ValidationError

    from recrm_core.config import SlaPolicy
    from recrm_core.testing import problem_of

    _levels(crm)
    case = _open(crm, cid, T0)
    crm.cases.escalate(case.id)
    crm.cases.escalate(case.id)
    crm.config.sla = SlaPolicy.model_validate(
        {"levels": [{"name": "only", "department": "HQ", "window_hours": 1}]})
    assert crm.cases.sweep(now=dt.datetime.now(dt.UTC) + 2 * H)["notified"] == 1
    for bad in ({"subject": "a\x00b"}, {"channel": "a\x00"}):
        with pytest.raises(InvalidInput):
            _open(crm, cid, T0, **bad)
    with pytest.raises(InvalidInput):
        crm.incidents.open({"title": "a\x00b"})
    incident = crm.incidents.open({"title": "漏水"})
    with pytest.raises(InvalidInput):
        crm.incidents.close(incident.id, note="a\x00b")
    problem_of(api_client("admin").post("/v1/incidents", json={"title": "a\u0000b"}), 422)
    for hours in ({"normal": 1e12}, {"levels": [{"name": "x", "department": "D",
                                                 "window_hours": 1e9}]},
                  {"categories": {"repair": {"high": 1e400}}}):
        with pytest.raises(ValidationError):
            SlaPolicy.model_validate(hours)
    _open(crm, cid, T0, channel="chairman")
    assert [c.channel for c in crm.cases.list(channel="chairman")] == ["chairman"]
    listed = api_client("admin").get("/v1/cases?channel=chairman").json()
    assert [c["channel"] for c in listed] == ["chairman"]
    shown = cli_runner.invoke("customers", "show", str(cid))
    assert shown.exit_code == 0 and "escalations" in shown.stdout and "only" in shown.stdout
    view = crm.customers.view(cid)
    escalated = next(c for c in view.cases if c.id == case.id)
    assert [h.action for h in escalated.history] == ["escalate", "escalate"]
