"""The batch hooks ask which changes concern a registration on the unit of work's
connection: a stage move of a customer no agency registered makes no ORM ``Session``
(with every first-party plugin on, ``set_stage`` then runs on the driver alone), and a
registered customer's move is still judged."""

from __future__ import annotations

import pytest
from channels_testkit import setup_agencies
from recrm_channels.tables import RegistrationRow
from sqlalchemy import select

from recrm_core import CRM, UnitOfWork


@pytest.mark.recrm_plugins("channels")
def test_an_unregistered_customers_stage_move_makes_no_session(
    crm: CRM, sessions_made: list[UnitOfWork]
) -> None:
    crm.projects.ensure("XL2", "星珑湾二期")
    cid = crm.customers.add({"mobile": "13812340001"}).customer.id
    sessions_made.clear()
    crm.customers.set_stage(cid, "visitor", "XL2")
    assert sessions_made == []


@pytest.mark.recrm_plugins("membership", "survey", "channels", "newsletter", "sales")
def test_with_every_plugin_a_plain_stage_move_makes_no_session(
    crm: CRM, sessions_made: list[UnitOfWork]
) -> None:
    crm.projects.ensure("XL2", "星珑湾二期")
    cid = crm.customers.add({"mobile": "13812340002"}).customer.id
    sessions_made.clear()
    crm.customers.set_stage(cid, "visitor", "XL2")
    assert sessions_made == []
    assert crm.customers.get(cid).projects[0].stage == "visitor"


@pytest.mark.recrm_plugins("channels")
def test_a_registered_customers_move_still_reaches_the_judging(
    crm: CRM, sessions_made: list[UnitOfWork]
) -> None:
    channels = setup_agencies(crm)
    channels.register("a1", "XL2", "13812340003")
    cid = crm.customers.add({"mobile": "13812340003"}).customer.id
    sessions_made.clear()
    crm.customers.set_stage(cid, "visitor", "XL2")
    # the registration was found on the connection, and judged through the ORM
    assert len(sessions_made) == 1
    with crm.unit_of_work() as uow:
        [row] = uow.session.scalars(select(RegistrationRow)).all()
    assert row.state == "pending" and row.decided_at is not None
