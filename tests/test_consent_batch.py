"""``crm.consent.record_in``: many consent records in one unit of work."""

from __future__ import annotations

import pytest

from recrm_core import CRM, InvalidInput


def test_record_in_writes_in_the_callers_transaction(crm: CRM) -> None:
    a = crm.customers.add({"name": "张三", "mobile": "13800000001"}).customer.id
    b = crm.customers.add({"name": "李四", "mobile": "13800000002"}).customer.id
    with crm.unit_of_work() as uow:
        crm.consent.record_in(uow, a, "sms", "marketing", True, "售楼处登记")
        crm.consent.record_in(uow, a, "sms", "marketing", False, "客户退订")
        granted = crm.consent.record_in(uow, b, "SMS ", "Marketing", True)
    # The newest record decides: a withdrew, b granted (names cleaned as by record).
    assert (granted.channel, granted.purpose, granted.granted) == ("sms", "marketing", True)
    assert crm.consent.allowed(a, "sms") is False
    assert crm.consent.allowed(b, "sms") is True
    assert [(c.source, c.granted) for c in crm.consent.current(a)] == [("客户退订", False)]


def test_record_in_rolls_back_with_the_transaction(crm: CRM) -> None:
    a = crm.customers.add({"name": "张三", "mobile": "13800000001"}).customer.id
    with pytest.raises(InvalidInput, match="channel"), crm.unit_of_work() as uow:
        crm.consent.record_in(uow, a, "sms", "marketing", True)
        crm.consent.record_in(uow, a, "fax", "marketing", True)
    # The first record went with the failed transaction.
    assert crm.consent.current(a) == []
