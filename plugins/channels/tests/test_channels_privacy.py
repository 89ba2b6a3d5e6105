"""Privacy requests: export lists the person's registrations; erase anonymises them so
the core's verification scan finds nothing."""

from __future__ import annotations

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels.tables import DisputeRow, RegistrationRow
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


def test_a_dispute_note_naming_the_person_elsewhere_is_redacted(crm: CRM) -> None:
    """Found by probing as a new user: a note on another customer's dispute naming the
    person ("王伟的太太李娜 139 0000 0009 ...") made their erasure fail the verification
    and roll back, and no command edits a note: the request could not be honoured.
    The words are redacted in the other dispute, which stays."""
    from recrm_channels.disputes import Disputes
    from recrm_channels.service.registrations import RegistrationRefused

    channels = setup_agencies(crm)
    channels.register("a1", PROJECT, "13812345678", "王伟")
    with pytest.raises(RegistrationRefused):
        channels.register("b1", PROJECT, "13812345678", "王伟")
    with crm.unit_of_work() as uow:
        refused = uow.session.scalars(select(RegistrationRow).where(
            RegistrationRow.agency == "B")).one().id
    dispute = Disputes(crm).open(refused, "王伟的太太李娜 139 0000 0009 先来我方门店",
                                 agency="B")
    li = crm.customers.add({"mobile": "13900000009", "name": "李娜"}).customer.id
    result = crm.privacy.erase(li, reason="PIPL request")
    assert any(s["table"] == "channels_disputes" for s in result.steps)
    with crm.unit_of_work() as uow:
        note = uow.session.get_one(DisputeRow, dispute.id).note
    assert note == "(redacted)"
