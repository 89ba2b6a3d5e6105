"""``membership.points`` and ``membership.referrals``, the plugin's registered reports
(``recrm_reports``): hand-computed figures per project and period, the same totals
as ``recrm member report`` (one computation), the club's role rules, and registered
only when the plugin is enabled.

(Named ``test_membership_reports.py``: every test directory shares one namespace.)
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

import pytest
from membership_helpers import club, customer

from recrm_core import CRM, Actor, Customer, Forbidden, InvalidInput, NotFound, hookimpl
from recrm_core.reports import ReportRequest
from recrm_core.testing import RecrmCliRunner

pytestmark = [pytest.mark.recrm_plugins("membership"),
              pytest.mark.recrm_settings(membership={"expiry_months": 24})]

UTC = dt.UTC
#: the club's clock during the fixture (enrolments, referrals, the adjustment)
NOW = dt.datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
ADMIN = Actor(staff_id="boss", role="admin")


def at(month: int, day: int, year: int = 2025) -> dt.datetime:
    return dt.datetime(year, month, day, 4, 0, tzinfo=UTC)


class Withholder:
    """Withholds the reward for one referred customer (as a channels plugin would)."""

    def __init__(self) -> None:
        self.customer_id = 0

    @hookimpl
    def recrm_withhold_referral_reward(self, customer: Customer) -> str | None:
        return "an agency registered them" if customer.id == self.customer_id else None


@pytest.fixture
def club_ledger(crm: CRM, register_plugin: Callable[..., str],
                monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The ledger (project, day, kind, points):

    ====  ==========  ========  ======  ======
    #     project     day       kind    points
    ====  ==========  ========  ======  ======
    1     XL2         01-10     earn    +1000  A's contract
    2     XL2         02-15     earn      +50  A, an event
    3     -           03-05     redeem   -300  A
    4     YH1         04-02     earn      +50  B
    5     YH1         05-03     earn     +200  B
    6     -           06-01     adjust    -50  B
    7     XL2         06-20     referral +500  A referred C, who signed
    8     -           2027-01-10 expire  -700  A's contract (1000 - 300 redeemed)
    9     -           2027-02-15 expire   -50  A's event
    ====  ==========  ========  ======  ======

    Referrals, all made on 2025-06-01: A -> C at XL2 (signed, rewarded), A -> D at
    YH1 (pending), B -> E at XL2 (signed, reward withheld).
    """
    # the modules (the package's ``service`` attribute is the function of that name)
    package = importlib.import_module("recrm_membership.service")
    for found in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"recrm_membership.service.{found.name}")
        if hasattr(module, "utcnow"):
            monkeypatch.setattr(module, "utcnow", lambda: NOW)
    withholder = Withholder()
    register_plugin(withholder)
    for project in ("XL2", "YH1"):
        crm.projects.ensure(project)
    svc = club(crm)
    ids = {name: customer(crm, f"1381234000{i}").id for i, name in enumerate("ABCDE")}
    svc.enroll(ids["A"])
    svc.enroll(ids["B"])
    crm.customers.set_stage(ids["A"], "buyer", "XL2", unit="1-1-101", amount=3_000_000,
                            occurred_at=at(1, 10))
    svc.earn(ids["A"], "event", "owners-day", project="XL2", occurred_at=at(2, 15))
    svc.redeem(ids["A"], 300, now=at(3, 5))
    svc.earn(ids["B"], "event", "open-day", project="YH1", occurred_at=at(4, 2))
    svc.earn(ids["B"], "event", "gift", points=200, project="YH1", occurred_at=at(5, 3))
    svc.adjust(ids["B"], -50, reason="correction", actor=ADMIN)
    svc.refer(ids["A"], ids["C"], "XL2")
    svc.refer(ids["A"], ids["D"], "YH1")
    svc.refer(ids["B"], ids["E"], "XL2")
    withholder.customer_id = ids["E"]
    crm.customers.set_stage(ids["C"], "buyer", "XL2", unit="2-1-1801", amount=4_000_000,
                            occurred_at=at(6, 20))
    crm.customers.set_stage(ids["E"], "buyer", "XL2", unit="2-1-1802", amount=4_000_000,
                            occurred_at=at(6, 21))
    svc.expire(now=at(3, 1, 2027))
    return ids


POINTS = ("project", "period", "earned", "redeemed", "expired", "deducted", "net", "balance")
REFERRALS = ("project", "period", "made", "converted", "rewarded", "withheld",
             "conversion_rate")


def run(crm: CRM, name: str, keys: tuple[str, ...], **request: Any) -> list[tuple[Any, ...]]:
    report = crm.reports.run(name, ReportRequest(**request))
    assert [c.key for c in report.columns] == list(keys)
    return [tuple(row[k] for k in keys) for row in report.rows]


def test_points_per_project_and_period(crm: CRM, club_ledger: dict[str, int]) -> None:
    assert run(crm, "membership.points", POINTS) == [
        (None, "all", 0, 300, 750, 50, -1100, -1100),
        ("XL2", "all", 1550, 0, 0, 0, 1550, 1550),
        ("YH1", "all", 250, 0, 0, 0, 250, 250),
    ]
    # the balance runs on from one period to the next, per project
    assert run(crm, "membership.points", POINTS, by="year") == [
        (None, "2025", 0, 300, 0, 50, -350, -350),
        (None, "2027", 0, 0, 750, 0, -750, -1100),
        ("XL2", "2025", 1550, 0, 0, 0, 1550, 1550),
        ("YH1", "2025", 250, 0, 0, 0, 250, 250),
    ]
    assert run(crm, "membership.points", POINTS, by="quarter", project="XL2") == [
        ("XL2", "2025-Q1", 1050, 0, 0, 0, 1050, 1050),
        ("XL2", "2025-Q2", 500, 0, 0, 0, 500, 1550),
    ]
    # February to May: XL2's balance opens with January's 1000
    assert run(crm, "membership.points", POINTS, by="month", start=dt.date(2025, 2, 1),
               end=dt.date(2025, 5, 31)) == [
        (None, "2025-03", 0, 300, 0, 0, -300, -300),
        ("XL2", "2025-02", 50, 0, 0, 0, 50, 1050),
        ("YH1", "2025-04", 50, 0, 0, 0, 50, 50),
        ("YH1", "2025-05", 200, 0, 0, 0, 200, 250),
    ]
    # the last day is inclusive
    assert run(crm, "membership.points", POINTS, project="XL2", end=dt.date(2025, 1, 10)) == [
        ("XL2", "all", 1000, 0, 0, 0, 1000, 1000)]


def test_referrals_per_project_and_period(crm: CRM, club_ledger: dict[str, int]) -> None:
    assert run(crm, "membership.referrals", REFERRALS) == [
        ("XL2", "all", 2, 2, 1, 1, 1.0),
        ("YH1", "all", 1, 0, 0, 0, 0.0),
    ]
    assert run(crm, "membership.referrals", REFERRALS, by="month", project="YH1") == [
        ("YH1", "2025-06", 1, 0, 0, 0, 0.0)]
    assert run(crm, "membership.referrals", REFERRALS, start=dt.date(2025, 6, 2)) == []


def test_member_report_shows_the_same_figures(
        crm: CRM, club_ledger: dict[str, int], cli_runner: RecrmCliRunner) -> None:
    report = club(crm).report()
    # issued 1000 + 50 + 50 + 200 + 500; outstanding A 500 + B 200
    assert report.points.model_dump() == {"issued": 1800, "redeemed": 300, "expired": 750,
                                          "deducted": 50, "outstanding": 700}
    points = crm.reports.run("membership.points", ReportRequest()).rows
    for key, total in (("earned", "issued"), ("redeemed", "redeemed"),
                       ("expired", "expired"), ("deducted", "deducted"),
                       ("balance", "outstanding")):
        assert sum(int(str(row[key])) for row in points) == getattr(report.points, total)
    referral_report = crm.reports.run("membership.referrals", ReportRequest())
    # a share: a percent column holding the fraction (0.6667 reads 66.7%)
    assert {c.key: c.kind for c in referral_report.columns}["conversion_rate"] == "percent"
    referrals = referral_report.rows
    assert [(p.project, p.made, p.converted, p.conversion_rate)
            for p in report.referrals_by_project] == [
        (r["project"], r["made"], r["converted"], r["conversion_rate"]) for r in referrals]
    assert (report.referrals.made, report.referrals.converted,
            report.referrals.conversion_rate) == (3, 2, 0.6667)
    shown = cli_runner.invoke("member", "report", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert shown.json()["points"] == report.points.model_dump()
    narrowed = club(crm).report(project="YH1")
    assert [(p.project, p.made) for p in narrowed.referrals_by_project] == [("YH1", 1)]


def test_role_rules_and_project_check(crm: CRM, club_ledger: dict[str, int]) -> None:
    analyst = Actor(staff_id="ana", role="analyst")
    assert run(crm, "membership.points", POINTS, actor=analyst)[1][0] == "XL2"
    for name in ("membership.points", "membership.referrals"):
        with pytest.raises(Forbidden, match="role partner may not run the report"):
            crm.reports.run(name, ReportRequest(actor=Actor(staff_id="lj", role="partner")))
        with pytest.raises(NotFound, match="no such project 'NOPE'"):
            crm.reports.run(name, ReportRequest(project="NOPE"))
        with pytest.raises(InvalidInput, match=r"ends .* before it starts"):
            crm.reports.run(name, ReportRequest(start=dt.date(2025, 5, 2),
                                                end=dt.date(2025, 5, 1)))
    # the days are the CRM's (Asia/Shanghai): 2025-01-10 04:00 UTC is noon on the
    # 10th there, and the calendar's last day bounds nothing
    assert run(crm, "membership.points", POINTS, project="XL2", start=dt.date(2025, 1, 10),
               end=dt.date.max)[0][2] == 1550


def test_registered_only_when_the_plugin_is_enabled(
        crm: CRM, crm_factory: Callable[..., CRM]) -> None:
    specs = crm.reports.specs()
    for name in ("membership.points", "membership.referrals"):
        assert (specs[name].plugin, specs[name].standard) == (
            "membership", ("project", "from", "to", "by"))
    bare = crm_factory(plugins=[]).reports.specs()
    assert not [name for name in bare if name.startswith("membership.")]


def test_an_empty_club_reports_no_lines(crm: CRM) -> None:
    assert crm.reports.run("membership.points", ReportRequest(by="month")).rows == []
    assert crm.reports.run("membership.referrals", ReportRequest()).rows == []
