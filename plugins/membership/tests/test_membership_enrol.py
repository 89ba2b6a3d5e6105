"""Enrolment, member numbers, leaving and re-joining, settings, plugin loading."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from membership_helpers import T0, club, customer, ledger, owner, sign
from recrm_membership import MemberRow
from sqlalchemy import func, select

from recrm_core import CRM, ConfigError, NotFound, PluginError, Refused, hookimpl

pytestmark = pytest.mark.recrm_plugins("membership")


def test_becoming_an_owner_enrols(crm: CRM) -> None:
    c = customer(crm, "13812345678", name="王伟")
    sign(crm, c.id, "XL2")
    with pytest.raises(NotFound, match="not a member"):
        club(crm).get(c.id)  # a buyer is not enrolled yet
    crm.customers.set_stage(c.id, "owner", "XL2")
    member = club(crm).get(c.id)
    assert (member.number, member.status, member.tier, member.contracts) == (
        "WK00000001", "active", "普通", 1,
    )
    [event] = club(crm).show(c.id).events
    assert (event.action, event.note) == ("enrol", "owner at XL2")


def test_member_numbers_are_unique_and_follow_settings(crm_factory: Callable[..., CRM]) -> None:
    crm = crm_factory(plugins=["membership"],
                      settings={"membership": {"number_prefix": "VK", "number_digits": 6}})
    numbers = [owner(crm, f"1381234567{i}").id for i in range(3)]
    got = [club(crm).get(cid).number for cid in numbers]
    assert got == ["VK000001", "VK000002", "VK000003"]
    with crm.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count(func.distinct(MemberRow.number)))) == 3


@pytest.mark.recrm_settings(membership={"auto_enrol": False})
def test_auto_enrol_can_be_switched_off(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    with pytest.raises(NotFound):
        club(crm).get(c.id)
    assert club(crm).enroll(c.id).contracts == 1


def test_anyone_can_enrol_explicitly(crm: CRM) -> None:
    c = customer(crm, "13812345678")
    member = club(crm).enroll(c.id, note="walk-in")
    assert (member.status, member.tier, member.contracts, member.balance) == (
        "active", "普通", 0, 0,
    )
    with pytest.raises(Refused, match=r"already a member \(WK00000001\)"):
        club(crm).enroll(c.id)
    with pytest.raises(NotFound, match="no customer 999"):
        club(crm).enroll(999)


def test_leave_and_rejoin_keep_number_points_and_history(crm: CRM) -> None:
    c = owner(crm, "13812345678")
    svc = club(crm)
    svc.earn(c.id, "event", "owners-day-1")
    left = svc.leave(c.id, reason="moved abroad")
    assert (left.status, left.balance) == ("left", 50)
    assert left.left_at is not None
    with pytest.raises(Refused, match="has left"):
        svc.leave(c.id)
    with pytest.raises(Refused, match="has left"):
        svc.earn(c.id, "event", "owners-day-2")
    with pytest.raises(Refused, match="has left"):
        svc.redeem(c.id, 10)
    # interactions of a former member earn nothing
    crm.interactions.log(c.id, {"kind": "event", "summary": "业主答谢会"})
    assert svc.balance(c.id).balance == 50
    # becoming an owner elsewhere does not silently bring back someone who left
    sign(crm, c.id, "YH1")
    crm.customers.set_stage(c.id, "owner", "YH1")
    assert svc.get(c.id).status == "left"
    back = svc.enroll(c.id, note="came back")
    assert (back.number, back.status, back.balance, back.left_at) == (
        "WK00000001", "active", 50, None,
    )
    assert back.contracts == 2  # counted again on re-joining
    events = svc.show(c.id).events
    assert [(e.action, e.note) for e in events] == [
        ("enrol", "owner at XL2"), ("leave", "moved abroad"), ("rejoin", "came back"),
    ]
    assert {e.number for e in events} == {"WK00000001"}


def test_leave_unknown_member(crm: CRM) -> None:
    c = customer(crm, "13812345678")
    with pytest.raises(NotFound, match=f"customer {c.id} is not a member"):
        club(crm).leave(c.id)


@pytest.mark.recrm_settings(membership={"earn": {"handover": 300, "contract": 1000}})
def test_handover_that_enrols_also_earns(crm: CRM) -> None:
    # The handover interaction is logged before the stage hook enrols the customer;
    # the plugin still awards it, once.
    c = owner(crm, "13812345678")
    [(cid, kind, points, key)] = ledger(crm)
    assert (cid, kind, points, key) == (c.id, "earn", 300, f"handover:{c.id}:XL2/1-1-101")


def test_a_back_dated_handover_enrols_at_its_date(crm: CRM) -> None:
    c = customer(crm, "13812345678")
    crm.customers.set_stage(c.id, "owner", "XL2", unit="1-1-101", occurred_at=T0)
    view = club(crm).show(c.id)
    assert view.member.enrolled_at == T0
    assert [(e.action, e.at) for e in view.events] == [("enrol", T0)]


def test_enrolment_rolls_back_with_the_stage_change(
    crm: CRM, register_plugin: Callable[..., str]
) -> None:
    c = customer(crm, "13812345678")
    sign(crm, c.id, "XL2")

    class Refuse:
        @hookimpl(trylast=True)
        def recrm_stage_changed(self) -> None:
            raise RuntimeError("handover not signed off")

    register_plugin(Refuse(), name="refuse")
    with pytest.raises(PluginError, match="refuse"):
        crm.customers.set_stage(c.id, "owner", "XL2")
    with crm.unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(MemberRow)) == 0


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"tiers": [{"name": "银卡", "min_points": 10}]}, "entry tier"),
        ({"tiers": [{"name": "普通"}, {"name": "普通", "min_points": 1}]}, "unique"),
        ({"tiers": [{"name": "普通"}, {"name": "银卡"}]}, "needs min_points or min_contracts"),
        ({"tiers": []}, "tiers"),
        ({"earn": {"event": -5}}, "cannot be negative"),
        ({"expiry_months": -1}, "expiry_months"),
        ({"auto_enroll": True}, "auto_enroll"),  # a typo is an error, not ignored
    ],
)
def test_bad_settings_are_config_errors(
    crm_factory: Callable[..., CRM], section: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"\[membership\]") as err:
        crm_factory(plugins=["membership"], settings={"membership": section})
    assert message in str(err.value)


def test_installed_through_the_entry_point(crm: CRM) -> None:
    [info] = [i for i in crm.plugin_infos if i.name == "membership"]
    assert info.version == "0.1.0" and info.error is None
    assert {"recrm_stages_changed", "recrm_interactions_logged", "recrm_customer_merged",
            "recrm_timeline", "recrm_segment_fields", "recrm_demo",
            "recrm_register_commands", "recrm_register_settings"} <= set(info.hooks)
