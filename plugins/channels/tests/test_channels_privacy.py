"""Privacy requests: export lists the person's registrations; erase anonymises them so
the core's verification scan finds nothing."""

from __future__ import annotations

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels.tables import RegistrationRow
from sqlalchemy import select

from recrm_core import CRM

pytestmark = pytest.mark.recrm_plugins("channels")


def test_export_and_erase(crm: CRM) -> None:
    channels = setup_agencies(crm)
    reg = channels.register("a1", PROJECT, "13812345678", "王伟")
    channels.visit(PROJECT, "13812345678", name="王伟")
    other = channels.register("b1", PROJECT, "13900000009", "李娜")
    [customer] = crm.customers.find(mobile="13812345678")
    exported = crm.privacy.export(customer.id)
    dumped = str(exported)
    assert "channels" in dumped and "+8613812345678" in dumped
    crm.privacy.erase(customer.id, reason="PIPL request")
    with crm.unit_of_work() as uow:
        rows = {r.id: r for r in uow.session.scalars(select(RegistrationRow))}
    erased = rows[reg.id]
    assert (erased.mobile, erased.name, erased.customer_id) == (None, None, None)
    assert erased.state == "confirmed" and erased.agency == "A"
    assert rows[other.id].mobile == "+8613900000009"
