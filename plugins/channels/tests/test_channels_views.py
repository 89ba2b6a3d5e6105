"""Segment fields, timeline entries and the demo section of the channels plugin."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import recrm_channels
from channels_testkit import PROJECT, setup_agencies
from recrm_channels import RegistrationRefused

from recrm_core import CRM, Actor, DemoSection, Forbidden, utcnow
from recrm_core.demo import demo_anchor, seed_demo
from recrm_core.testing import RecrmCliRunner
from recrm_core.testing.clock import morning_and_afternoon, set_clock

SHANGHAI = dt.timezone(dt.timedelta(hours=8))

pytestmark = pytest.mark.recrm_plugins("channels")


def cond(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"all": [{"field": field, "op": op, "value": value}]}


def _customers(crm: CRM) -> dict[str, int]:
    """c1: confirmed by A; c2: registered by B long ago, expired; c3: no registration."""
    channels = setup_agencies(crm)
    channels.register("a1", PROJECT, "13812345678")
    channels.visit(PROJECT, "13812345678", name="王伟")
    old = utcnow() - dt.timedelta(days=200)
    channels.register("b1", PROJECT, "13912345678", now=old)
    c2 = crm.customers.add({"mobile": "13912345678", "name": "李娜"}).customer.id
    c3 = crm.customers.add({"mobile": "13712345678", "name": "张三"}).customer.id
    [c1] = crm.customers.find(mobile="13812345678")
    return {"c1": c1.id, "c2": c2, "c3": c3}


def test_segment_fields_agency_and_state(crm: CRM) -> None:
    ids = _customers(crm)
    assert crm.segments.count(cond("channels.agency", "eq", "A")) == 1
    assert crm.segments.count(cond("channels.agency", "eq", "B")) == 0  # expired: not active
    assert crm.segments.count(cond("channels.agency", "is_null", True)) == 2
    assert crm.segments.count(cond("channels.state", "eq", "confirmed")) == 1
    # expired as of now although the stored row still says pending (no sweep yet)
    assert crm.segments.count(cond("channels.state", "eq", "expired")) == 1
    assert crm.segments.count(cond("channels.state", "eq", "pending")) == 0
    assert crm.segments.count(cond("channels.state", "in", ["confirmed", "expired"])) == 2
    assert ids["c3"] not in crm.segments.iter_ids(cond("channels.state", "is_null", False))
    with pytest.raises(Forbidden):
        crm.segments.count(cond("channels.agency", "eq", "A"),
                           actor=Actor(staff_id="a1", role="partner"))


def test_timeline_shows_registrations_and_decisions(crm: CRM) -> None:
    ids = _customers(crm)
    channels = recrm_channels.service(crm)
    with pytest.raises(RegistrationRefused):
        channels.register("b1", PROJECT, "13812345678")
    view = crm.customers.view(ids["c1"])
    mine = [e for e in view.timeline if e.source == "channels"]
    kinds = Counter(e.kind for e in mine)
    assert kinds == {"channel_pending": 1, "channel_confirmed": 1, "channel_rejected": 1}
    confirmed = next(e for e in mine if e.kind == "channel_confirmed")
    assert confirmed.data["agency"] == "A" and "A at XL2" in confirmed.title
    assert "confirmed by a visit" in confirmed.data["reason"]
    refused = next(e for e in mine if e.kind == "channel_rejected")
    assert "already registered" in refused.data["reason"]
    # Free text is the core's to hide from analysts and partners.
    hidden = crm.customers.view(ids["c1"], actor=Actor(staff_id="x", role="analyst"))
    for e in (e for e in hidden.timeline if e.source == "channels"):
        assert e.data == {} and "A at XL2" not in e.title
    assert not [e for e in crm.customers.view(ids["c3"]).timeline if e.source == "channels"]


def test_demo_section_has_every_state(crm: CRM) -> None:
    ids = seed_demo(crm, seed=11, customers=150)
    section = recrm_channels.recrm_demo(crm=crm, rng=random.Random(7), customer_ids=ids,
                                        anchor=demo_anchor(crm))
    assert isinstance(section, DemoSection)
    rows = dict(section.rows)
    found = recrm_channels.service(crm).registrations(project=PROJECT)
    states = Counter(r.state for r in found)
    for state in ("pending", "confirmed", "converted", "expired", "released", "rejected"):
        assert states[state] > 0, state
        assert rows[f"  {state}"] == str(states[state])
    assert rows["registrations"] == f"{len(found)} at {PROJECT}"
    reasons = [r.reason or "" for r in found if r.state == "rejected"]
    assert any(r.startswith("known customer") for r in reasons)
    assert any(r.startswith("already registered by another agency") for r in reasons)
    assert {r.agency for r in found} == {"LJ", "WAWJ", "ZY"}
    converted = next(r for r in found if r.state == "converted")
    assert converted.customer_id is not None
    [link] = [p for p in crm.customers.get(converted.customer_id).projects
              if p.project == PROJECT]
    assert link.stage in ("subscriber", "buyer")
    assert link.source == f"channel:{converted.agency}"
    # signed deals, one cancelled (clawed back), a dispute upheld and one dismissed
    from recrm_channels.commission import Commissions

    kinds = Counter(e.kind for e in Commissions(crm).entries())
    assert kinds["deal"] > 0 and kinds["clawback"] > 0
    assert rows["disputes"] == "1 upheld, 1 dismissed"
    assert any(k.startswith("report ") and "clawed back" in v for k, v in rows.items())


def test_recrm_demo_prints_the_channels_section(
        cli_runner: RecrmCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # on PostgreSQL the demo's dashboard goes there
    result = cli_runner.invoke("demo", "--customers", "120", "--json")
    assert result.exit_code == 0, result.stderr
    [section] = [s for s in result.json()["plugins"] if s["title"].startswith("channels")]
    rows = dict(section["rows"])
    assert int(rows["registrations"].split()[0]) > 30
    # Leads are demo customers: the company keeps the size asked for.
    assert result.json()["customers"] == 120


def _demo_rows_at(path: Path, clock: dt.datetime, monkeypatch: pytest.MonkeyPatch,
                  ) -> list[tuple[str, str]]:
    """The section with the clock at ``clock``, for customers of the project who
    visited at noon on whole days before it, as the core's demo dates its history:
    some exactly 60 days before the clock's day, the edge of "known customer"."""
    with monkeypatch.context() as patch:
        set_clock(patch, clock, [recrm_channels])
        with CRM(database_url=f"sqlite:///{path}", plugins=["channels"],
                 create_schema=True) as crm:
            day = demo_anchor(crm)
            ids = []
            for i in range(40):
                cid = crm.customers.add({"mobile": f"1391234{i:04d}", "name": f"客户{i}"}
                                        ).customer.id
                ids.append(cid)
                if i % 2 == 0:  # the others are strangers to the project: the leads
                    days = 60 if i % 4 == 0 else 10
                    crm.interactions.log(cid, {
                        "kind": "visit", "project": PROJECT,
                        "occurred_at": day - dt.timedelta(days=days, hours=-12)})
            section = recrm_channels.recrm_demo(crm=crm, rng=random.Random(3),
                                                customer_ids=ids, anchor=day)
            assert isinstance(section, DemoSection)
            return section.rows


def test_demo_does_not_depend_on_the_time_of_day(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same seed on the same day: the same section at 09:30 as at 16:10, though
    visits 60 days before, at noon, are known customers' in the morning only when
    counted from the moment of the run."""
    # a fixed day in the past: no check finds it in the future
    morning, afternoon = morning_and_afternoon(dt.date(2026, 6, 15))
    assert _demo_rows_at(tmp_path / "am.db", morning, monkeypatch) \
        == _demo_rows_at(tmp_path / "pm.db", afternoon, monkeypatch)
