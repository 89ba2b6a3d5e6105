"""``recrm demo``: the demo company, its summary, determinism and the plugin hook."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from recrm_core import CRM, hookimpl, utcnow
from recrm_core.cli import cli
from recrm_core.demo import DEMO_DB_FILE, DemoSection, demo_anchor, plugin_rng, run_demo
from recrm_core.identity import parse_id_card
from recrm_core.tables import CustomerRow
from recrm_core.testing import RecrmCliRunner

SMALL = "150"


def demo_json(cli_runner: RecrmCliRunner, *args: str) -> dict[str, Any]:
    result = cli_runner.invoke("demo", "--customers", SMALL, "--json", *args)
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1
    data: dict[str, Any] = result.json()
    return data


def all_customers(crm: CRM) -> list[Any]:
    with crm.unit_of_work() as uow:
        ids = list(uow.session.scalars(
            select(CustomerRow.id).where(CustomerRow.merged_into.is_(None)).order_by(CustomerRow.id)
        ))
    return crm.customers.get_many(ids)


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # On PostgreSQL the demo writes its dashboard to the working directory.
    monkeypatch.chdir(tmp_path)


def test_demo_prints_a_readable_summary(cli_runner: RecrmCliRunner) -> None:
    result = cli_runner.invoke("demo", "--customers", "200", "--seed", "7")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("XL2", "星珑湾二期", "YH1", "悦湖一期", "Sales funnel", "意向 prospect",
                 "交房 owner", "Service cases", "overdue", "Consents", "Try next"):
        assert text in out, text
    assert "200 customers" in out
    # Progress goes to stderr, the summary to stdout.
    assert "building the demo company" in result.stderr
    assert "building the demo company" not in out


def test_summary_matches_the_database(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    summary = demo_json(cli_runner, "--seed", "11")
    customers = all_customers(crm)
    assert summary["customers"] == len(customers) == int(SMALL)

    projects = {p["code"]: p for p in summary["projects"]}
    assert list(projects) == ["XL2", "YH1"]
    assert projects["XL2"]["name"] == "星珑湾二期"
    funnel: dict[str, Counter[str]] = {"XL2": Counter(), "YH1": Counter()}
    for c in customers:
        for link in c.projects:
            funnel[link.project][link.stage] += 1
    for code, counts in funnel.items():
        assert projects[code]["funnel"] == {s: counts[s] for s in projects[code]["funnel"]}
        assert projects[code]["customers"] == sum(counts.values())
    # XL2 is on sale: a funnel, wide at the top; YH1 was handed over: mostly owners.
    xl2, yh1 = funnel["XL2"], funnel["YH1"]
    assert xl2["prospect"] > xl2["visitor"] > xl2["buyer"] > xl2["owner"] > 0
    assert yh1["owner"] > xl2["owner"]
    assert summary["stages"] == {s: sum(c.stage == s for c in customers)
                                 for s in summary["stages"]}
    both = sum(len(c.projects) == 2 for c in customers)
    assert summary["at_two_projects"] == both > 0
    assert sum(summary["stages"][s] for s in ("buyer", "owner")) > 0

    # Realistic identities: valid mainland mobiles, valid ID cards, Chinese names.
    assert all(m.startswith("+861") and len(m) == 14 for c in customers for m in c.mobiles)
    cards = [c for c in customers if c.id_card]
    assert cards and all(parse_id_card(c.id_card).birth_date == c.birth_date for c in cards)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", c.name or "") for c in customers)
    assert any(c.email for c in customers)
    buyer = next(c for c in customers if c.stage in ("buyer", "owner"))
    contract = next(i for i in crm.interactions.list(buyer.id) if i.kind == "contract")
    assert re.fullmatch(r"\d{1,2}-\d{3,4}", contract.data["unit"])
    assert contract.data["amount"] > 500_000

    # Consents: the summary counts customers whose newest record grants.
    sms = next(c for c in summary["consents"] if (c["channel"], c["purpose"]) == ("sms",
                                                                               "marketing"))
    assert sms["customers"] == sum(crm.consent.allowed(c.id, "sms") for c in customers) > 0


def test_cases_are_overdue_against_the_real_clock(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    summary = demo_json(cli_runner, "--seed", "3")
    now = utcnow()
    cases = crm.cases.list(now=now)
    active = [c for c in cases if c.status in ("open", "in_progress", "reopened")]
    overdue = [c for c in active if c.sla_due_at < now]
    assert summary["cases"]["total"] == len(cases) > 0
    assert summary["cases"]["open"] == len(active)
    assert summary["cases"]["overdue"] == len(overdue) == len(crm.cases.list(overdue=True))
    assert 0 < len(overdue) < len(active)
    # Counts must not flip with the time of day: every deadline is hours away from now.
    for case in active:
        assert abs(case.sla_due_at - now) > dt.timedelta(hours=1)
    assert sum(r["overdue"] for r in summary["cases"]["breakdown"]) == len(overdue)
    assert {c.category for c in cases} <= {"repair", "complaint", "inquiry"}
    assert any(c.status == "closed" for c in cases)
    # the service centre: routed, escalated (by hand and by the sweep), intake channels
    assert sum(summary["cases"]["by_level"].values()) == len(cases)
    assert summary["cases"]["by_level"]["city customer-relations centre"] > 0
    assert len(summary["cases"]["by_channel"]) >= 5
    repairs = [crm.cases.get(c.id) for c in cases if c.category == "repair"]
    assert repairs and all(c.history[1].action == "route" for c in repairs)
    assert {c.assignee for c in repairs if c.escalation_level == 0} == {"gc.lihua",
                                                                   "gc.zhangwei"}  # in turn


def test_same_seed_same_summary(
    cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    first = demo_json(cli_runner, "--seed", "5")
    # A second, fresh database (SQLite, whatever the fixture's backend was).
    with CRM(database_url=f"sqlite:///{tmp_path / 'again.db'}", plugins=[],
             create_schema=True) as again:
        second = run_demo(again, seed=5, customers=int(SMALL)).model_dump(mode="json")
    assert second == first
    with CRM(database_url=f"sqlite:///{tmp_path / 'other.db'}", plugins=[],
             create_schema=True) as other:
        different = run_demo(other, seed=6, customers=int(SMALL)).model_dump(mode="json")
    assert different["seed"] == 6
    assert different["projects"] != first["projects"]


class DemoClub:
    """A plugin that seeds members for the demo and reports them."""

    name = "democlub"

    def __init__(self) -> None:
        self.got: list[int] = []
        self.members: list[int] = []

    @hookimpl
    def recrm_demo(self, crm: CRM, rng: random.Random, customer_ids: list[int]) -> DemoSection:
        self.got = list(customer_ids)
        members = self.members = rng.sample(customer_ids, 5)
        for cid in members:
            crm.interactions.log(cid, {"kind": "club_event", "summary": "业主会活动"})
        return DemoSection("Owners' club (democlub)", [("members", "5"), ("events", 1)])  # type: ignore[list-item]


def test_hook_recrm_demo(
    crm: CRM, register_plugin: Callable[..., str], cli_runner: RecrmCliRunner
) -> None:
    club = DemoClub()
    register_plugin(club)
    summary = demo_json(cli_runner, "--seed", "9")
    assert summary["plugins"] == [
        {"title": "Owners' club (democlub)", "rows": [["members", "5"], ["events", "1"]]}
    ]
    # The plugin got every customer the core created, and its rows are in the database.
    assert sorted(club.got) == [c.id for c in all_customers(crm)]
    assert summary["interactions"]["club_event"] == 5
    # Its randomness came from the seed alone.
    assert club.members == plugin_rng(9).sample(club.got, 5)


class DatedClub:
    """A plugin that dates its demo rows from the core's anchor."""

    name = "datedclub"

    def __init__(self) -> None:
        self.anchor: dt.datetime | None = None

    @hookimpl
    def recrm_demo(self, crm: CRM, rng: random.Random, customer_ids: list[int],
                   anchor: dt.datetime) -> DemoSection:
        self.anchor = anchor
        return DemoSection("Dated club", [("anchor", anchor.isoformat())])


def test_hook_recrm_demo_hands_the_anchor(
    crm: CRM, register_plugin: Callable[..., str], cli_runner: RecrmCliRunner
) -> None:
    # One implementation takes the anchor, the other leaves it out (both are called).
    dated, club = DatedClub(), DemoClub()
    register_plugin(dated)
    register_plugin(club)
    before = utcnow()
    summary = demo_json(cli_runner)
    anchor = dated.anchor
    assert anchor is not None and club.got
    # Midnight (business time) of the demo's day, the one the core dated its history from.
    assert anchor == demo_anchor(crm, before) or anchor == demo_anchor(crm)
    assert anchor.astimezone(crm.config.zone).time() == dt.time()
    with crm.unit_of_work() as uow:
        latest = max(i.occurred_at for cid in club.got
                     for i in crm.interactions.list_in(uow.session, cid)
                     if i.kind != "club_event")
    assert anchor - dt.timedelta(days=1) <= latest < anchor
    assert ["anchor", anchor.isoformat()] in next(
        s["rows"] for s in summary["plugins"] if s["title"] == "Dated club")


def test_hook_section_in_the_human_summary(
    crm: CRM, register_plugin: Callable[..., str], cli_runner: RecrmCliRunner
) -> None:
    register_plugin(DemoClub())
    result = cli_runner.invoke("demo", "--customers", "30")
    assert result.exit_code == 0, result.stderr
    assert "Owners' club (democlub)" in result.stdout
    assert "members" in result.stdout


def test_demo_refuses_a_database_with_customers(
    crm: CRM, cli_runner: RecrmCliRunner
) -> None:
    crm.customers.add({"name": "王伟", "mobile": "13812345678"})
    result = cli_runner.invoke("demo", "--customers", "10")
    assert result.exit_code == 1
    assert "already holds 1 customers" in result.stderr
    assert result.stdout == ""
    assert crm.customers.count() == 1


def test_demo_usage_errors(cli_runner: RecrmCliRunner) -> None:
    result = cli_runner.invoke("demo", "--customers", "0")
    assert result.exit_code == 2
    result = cli_runner.invoke("demo", "--seed", "abc")
    assert result.exit_code == 2


def test_db_option_uses_that_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECRM_DATABASE_URL", raising=False)
    target = tmp_path / "mine.db"
    result = CliRunner().invoke(
        cli, ["--db", f"sqlite:///{target}", "demo", "--customers", "40", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["customers"] == 40
    assert target.exists()
    assert not (tmp_path / DEMO_DB_FILE).exists()
    with CRM(database_url=f"sqlite:///{target}", plugins=[]) as crm:
        assert crm.customers.count() == 40


def _recrm_command() -> list[str]:
    script = Path(sys.executable).parent / "recrm"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from recrm_core.cli import main; main()"]


def test_default_database_file_is_recreated(tmp_path: Path) -> None:
    # The demo keeps to its own file, whatever the environment points other commands at.
    elsewhere = tmp_path / "elsewhere.db"
    env = os.environ | {"RECRM_DATABASE_URL": f"sqlite:///{elsewhere}"}
    command = [*_recrm_command(), "demo", "--customers", "100", "--json"]

    def run() -> dict[str, Any]:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    first = run()
    db = tmp_path / DEMO_DB_FILE
    assert db.exists()
    assert not elsewhere.exists()
    assert first["customers"] == 100
    # Something left behind from before must be gone after the next run.
    with CRM(database_url=f"sqlite:///{db}", plugins=[]) as crm:
        crm.customers.add({"name": "旧数据", "mobile": "13912345678"})
        assert crm.customers.count() == 101
    second = run()
    assert second == first
    with CRM(database_url=f"sqlite:///{db}", plugins=[]) as crm:
        assert crm.customers.count() == 100
        assert crm.customers.find(mobile="13912345678") == []
