"""Found by probing with several staff at once: the same customer's visit logged by
several processes at one moment (two reception desks, a retried request) judged the
agency's pending registration in each, and each recorded its own ``confirmed``
transition -- the history said the registration was confirmed four times, at four
times. Now the judging takes the (mobile, project) lock the registration takes: one
confirmation, one visit commission."""

from __future__ import annotations

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels.commission import Commissions
from recrm_channels.tables import CommissionEntryRow, RegistrationRow, TransitionRow
from sqlalchemy import select

from recrm_core import CRM
from recrm_core.testing import StartLine, run_together

pytestmark = pytest.mark.recrm_plugins("channels")

MOBILE = "13812340000"


def _visitor(url: str, customer_id: int, start: StartLine) -> None:
    with CRM(database_url=url, plugins=["channels"]) as crm:
        start.wait()
        crm.interactions.log(customer_id, {"kind": "visit", "project": PROJECT})


def test_visits_logged_at_once_confirm_the_registration_once(
        crm: CRM, recrm_database_url: str) -> None:
    channels = setup_agencies(crm)
    Commissions(crm).set_terms("A", PROJECT, fixed="10000", visit_reward="300")
    registration = channels.register("a1", PROJECT, MOBILE)
    customer = crm.customers.add({"mobile": MOBILE, "name": "张三"}).customer.id
    run_together(_visitor, [(recrm_database_url, customer)] * 4)
    with crm.unit_of_work() as uow:
        row = uow.session.get(RegistrationRow, registration.id)
        assert row is not None and row.state == "confirmed"
        states = list(uow.session.scalars(select(TransitionRow.state).where(
            TransitionRow.registration_id == registration.id).order_by(TransitionRow.id)))
        visits = list(uow.session.scalars(select(CommissionEntryRow.kind).where(
            CommissionEntryRow.registration_id == registration.id)))
    assert states == ["pending", "confirmed"]
    assert visits == ["visit"]


def _batch_visitor(url: str, customer_ids: list[int], start: StartLine) -> None:
    with CRM(database_url=url, plugins=["channels"]) as crm:
        start.wait()
        crm.interactions.log_many([{"customer_id": cid, "kind": "visit", "project": PROJECT}
                                   for cid in customer_ids])


def test_visit_batches_logged_at_once_confirm_each_registration_once(
        crm: CRM, recrm_database_url: str) -> None:
    """A visit batch is judged from one read per run (``Judging``): its locks are taken
    for the whole run, in one order, before the read. Batches of the same customers
    in other orders, logged at once, still confirm each registration once."""
    channels = setup_agencies(crm)
    Commissions(crm).set_terms("A", PROJECT, fixed="10000", visit_reward="300")
    mobiles = [f"1381234{n:04d}" for n in range(1, 6)]
    registrations = [channels.register("a1", PROJECT, m).id for m in mobiles]
    customers = [crm.customers.add({"mobile": m, "name": f"客户{n}"}).customer.id
                 for n, m in enumerate(mobiles)]
    run_together(_batch_visitor, [(recrm_database_url, customers),
                                  (recrm_database_url, customers[::-1]),
                                  (recrm_database_url, customers[2:] + customers[:2])])
    with crm.unit_of_work() as uow:
        for registration in registrations:
            row = uow.session.get(RegistrationRow, registration)
            assert row is not None and row.state == "confirmed"
            states = list(uow.session.scalars(select(TransitionRow.state).where(
                TransitionRow.registration_id == registration).order_by(TransitionRow.id)))
            visits = list(uow.session.scalars(select(CommissionEntryRow.kind).where(
                CommissionEntryRow.registration_id == registration)))
            assert states == ["pending", "confirmed"]
            assert visits == ["visit"]
