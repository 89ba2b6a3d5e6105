"""Deals with co-buyers: each step moves every party's core stage (the amount once, on
the primary buyer's step); cancellation, change of unit and change of buyer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sales_testkit import NOW, PROJECT, customer, setup_units, stage_at
from sqlalchemy import select

from recrm_core import CRM, Actor, Forbidden, InvalidInput, Refused, StageChange, hookimpl
from recrm_core.tables import InteractionRow

pytestmark = pytest.mark.recrm_plugins("sales")


class StageRecorder:
    def __init__(self) -> None:
        self.changes: list[StageChange] = []

    @hookimpl
    def recrm_stage_changed(self, uow: object, customer: object, change: StageChange) -> None:
        self.changes.append(change)


def test_subscribe_sign_handover_with_co_buyers(crm: CRM, tmp_path: Path,
                                                register_plugin: object) -> None:
    sales = setup_units(crm, tmp_path)
    recorder = StageRecorder()
    register_plugin(recorder)  # type: ignore[operator]
    wang, li = customer(crm, "13800000001", "王伟"), customer(crm, "13800000002", "李娜")
    sales.units.hold("XL2/3-1201", wang, now=NOW)
    deal = sales.deals.subscribe("XL2/3-1201", wang, parties=["13800000002:spouse:40"],
                                 discount="20000.50", deposit="50000", now=NOW)
    assert deal.state == "subscribed" and deal.amount == Decimal("1949999.50")
    assert [(p.customer_id, p.role, p.share, p.primary) for p in deal.parties] == [
        (wang, "buyer", Decimal("60.00"), True), (li, "spouse", Decimal("40.00"), False)]
    assert deal.sign_by == dt.date(2026, 3, 9)
    assert sales.units.get("XL2/3-1201").status == "subscribed"
    assert sales.units.holds(now=NOW) == []  # the hold was converted
    assert (stage_at(crm, wang), stage_at(crm, li)) == ("subscriber", "subscriber")
    amounts = [(c.customer_id, c.new_stage, c.amount, c.unit) for c in recorder.changes]
    assert amounts == [(wang, "subscriber", 1949999 + 1, "XL2/3-1201"),  # half up
                       (li, "subscriber", None, "XL2/3-1201")]
    signed = sales.deals.sign(deal.id, contract_no="HT-001", total="1950000",
                              payment="mortgage", now=NOW + dt.timedelta(days=3))
    assert signed.state == "contracted" and signed.total == Decimal("1950000.00")
    assert (stage_at(crm, wang), stage_at(crm, li)) == ("buyer", "buyer")
    assert [c.amount for c in recorder.changes[2:]] == [1950000, None]
    done = sales.deals.handover(deal.id, date=dt.date(2026, 3, 20),
                                now=NOW + dt.timedelta(days=20))
    assert done.state == "handed_over" and done.handed_over_on == dt.date(2026, 3, 20)
    assert (stage_at(crm, wang), stage_at(crm, li)) == ("owner", "owner")
    assert [e.kind for e in sales.deals.show(deal.id).history] == [
        "subscribe", "sign", "handover"]
    with crm.unit_of_work() as uow:
        kinds = uow.session.scalars(select(InteractionRow.kind).where(
            InteractionRow.customer_id == li).order_by(InteractionRow.id)).all()
    assert list(kinds) == ["subscription", "contract", "handover"]


def test_refusals(crm: CRM, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    a, b = customer(crm, "13800000001"), customer(crm, "13800000002")
    with pytest.raises(Refused, match="sum to 100"):
        sales.deals.subscribe("XL2/3-1201", a, parties=["13800000002:spouse:60",
                                                        "13800000003:co_owner:40"],
                              deposit="1000", now=NOW)
    with pytest.raises(Refused, match="named twice"):
        sales.deals.subscribe("XL2/3-1201", a, parties=[f"{a}:spouse:50"], deposit="1",
                              now=NOW)
    with pytest.raises(InvalidInput):
        sales.deals.subscribe("XL2/3-1201", a, parties=["13800000002:aunt:10"], deposit="1")
    with pytest.raises(InvalidInput, match="float"):
        sales.deals.subscribe("XL2/3-1201", a, deposit=1.5)
    sales.units.hold("XL2/3-1201", b, now=NOW)
    with pytest.raises(Refused, match="held for another customer"):
        sales.deals.subscribe("XL2/3-1201", a, deposit="1000", now=NOW)
    with pytest.raises(Refused, match="withheld"):
        sales.deals.subscribe("XL2/5-101", a, deposit="1000", now=NOW)
    deal = sales.deals.subscribe("XL2/3-1201", b, deposit="1000", now=NOW)
    with pytest.raises(Refused, match="subscribed"):
        sales.units.hold("XL2/3-1201", a, now=NOW)
    with pytest.raises(Refused, match="not contracted"):
        sales.deals.handover(deal.id, now=NOW)
    sales_actor = Actor(role="sales", staff_id="s1", channel="cli")
    with pytest.raises(Forbidden):
        sales.deals.cancel(deal.id, reason="x", actor=sales_actor)
    with pytest.raises(InvalidInput, match="reason"):
        sales.deals.cancel(deal.id, reason="  ")
    assert sales.deals.show(deal.id, now=NOW + dt.timedelta(days=8)).sign_overdue


def test_cancel_moves_each_party_back_unless_another_deal_holds_them(
        crm: CRM, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    wang, li = customer(crm, "13800000001"), customer(crm, "13800000002")
    crm.customers.set_stage(wang, "visitor", PROJECT)
    first = sales.deals.subscribe("XL2/3-1201", wang, parties=[f"{li}:co_owner:50"],
                                  deposit="1000", now=NOW)
    sales.deals.sign(first.id, contract_no="HT-1", total="1970000", payment="full", now=NOW)
    other = sales.deals.subscribe("XL2/3-1202", li, deposit="1000", now=NOW)
    cancelled = sales.deals.cancel(first.id, reason="客户资金不足 (funds fell through)",
                                   now=NOW + dt.timedelta(days=1))
    assert cancelled.state == "cancelled"
    assert sales.units.get("XL2/3-1201").status == "available"
    # wang holds nothing else: back to visitor; li still subscribes 3-1202
    assert (stage_at(crm, wang), stage_at(crm, li)) == ("visitor", "subscriber")
    assert cancelled.history[-1].reason == "客户资金不足 (funds fell through)"
    with pytest.raises(Refused):
        sales.deals.cancel(first.id, reason="again")
    # a new customer can take the unit now
    sales.units.hold("XL2/3-1201", customer(crm, "13800000009"), now=NOW)
    sales.deals.cancel(other.id, reason="退房", now=NOW)
    assert stage_at(crm, li) == "visitor"
    assert [e.reason for e in crm.audit.entries(action="sales.cancel")] == [
        "客户资金不足 (funds fell through)", "退房"]


def test_change_unit_and_change_buyer(crm: CRM, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    wang, li, zhao = (customer(crm, f"1380000000{i}") for i in (1, 2, 3))
    deal = sales.deals.subscribe("XL2/3-1201", wang, deposit="1000", now=NOW)
    with pytest.raises(Refused, match="withheld"):
        sales.deals.change_unit(deal.id, "XL2/5-101", reason="换房", now=NOW)
    moved = sales.deals.change_unit(deal.id, "XL2/3-1203", reason="想要东边 (wants east)",
                                    price="1700000", now=NOW)
    assert moved.unit == "XL2/3-1203" and moved.amount == Decimal("1700000.00")
    assert sales.units.get("XL2/3-1201").status == "available"
    assert sales.units.get("XL2/3-1203").status == "subscribed"
    changed = sales.deals.change_buyer(deal.id, li, parties=[f"{zhao}:spouse:50"],
                                       reason="更名给女儿 (to the daughter)", now=NOW)
    assert changed.customer_id == li
    current = [(p.customer_id, p.share) for p in changed.parties if p.removed_at is None]
    assert current == [(li, Decimal("50.00")), (zhao, Decimal("50.00"))]
    assert (stage_at(crm, li), stage_at(crm, zhao)) == ("subscriber", "subscriber")
    assert stage_at(crm, wang) == "visitor"
    assert [e.kind for e in changed.history] == ["subscribe", "change_unit", "change_buyer"]


def test_cancel_never_moves_behind_the_stage_reached_without_the_plugin(
        crm: CRM, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    owner = customer(crm, "13800000001")
    crm.customers.set_stage(owner, "owner", PROJECT, unit="1-101")  # bought in phase one
    deal = sales.deals.subscribe("XL2/3-1202", owner, deposit="1000", now=NOW)
    assert stage_at(crm, owner) == "owner"
    sales.deals.cancel(deal.id, reason="investor changed their mind", now=NOW)
    assert stage_at(crm, owner) == "owner"
