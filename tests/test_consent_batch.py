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


def test_record_many_in_is_record_in_for_each(crm: CRM) -> None:
    a = crm.customers.add({"name": "张三", "mobile": "13800000001"}).customer.id
    b = crm.customers.add({"name": "李四", "mobile": "13800000002"}).customer.id
    # b merged into a: b's record lands on a, as record_in's would.
    crm.customers.merge(a, b)
    with crm.unit_of_work() as uow:
        recorded = crm.consent.record_many_in(uow, [
            (a, "SMS ", "Marketing", True, "售楼处登记"),
            (b, "email", "marketing", True, None),
            (a, "sms", "marketing", False, "客户退订"),
        ])
    assert [(c.customer_id, c.channel, c.purpose, c.granted, c.source) for c in recorded] == [
        (a, "sms", "marketing", True, "售楼处登记"), (a, "email", "marketing", True, None),
        (a, "sms", "marketing", False, "客户退订")]
    # Written in order: the later withdrawal decides even at the same recorded_at.
    assert crm.consent.allowed(a, "sms") is False
    assert crm.consent.allowed(a, "email") is True
    assert {(c.channel, c.granted) for c in crm.consent.current(a)} == {
        ("sms", False), ("email", True)}
    # One audit entry a record, the survivor's id and no free text.
    entries = crm.audit.entries(action="consent")
    assert [(e.customer_id, e.details) for e in entries] == [
        (a, {"channel": "sms", "purpose": "marketing", "granted": True}),
        (a, {"channel": "email", "purpose": "marketing", "granted": True}),
        (a, {"channel": "sms", "purpose": "marketing", "granted": False})]


def test_record_many_in_writes_nothing_when_one_record_is_refused(crm: CRM) -> None:
    a = crm.customers.add({"name": "张三", "mobile": "13800000001"}).customer.id
    with crm.unit_of_work() as uow:
        with pytest.raises(InvalidInput, match="source"):
            crm.consent.record_many_in(uow, [(a, "sms", "marketing", True, None),
                                             (a, "sms", "marketing", True, "x" * 65)])
        # Checked before anything is written, so the caller's transaction goes on.
        assert crm.consent.record_many_in(uow, []) == []
    assert crm.consent.current(a) == []
    assert crm.audit.entries(action="consent") == []
