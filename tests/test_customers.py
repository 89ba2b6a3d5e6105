from __future__ import annotations

import pytest

from recrm_core import CRM, IdentityConflict, InvalidInput, NotFound, Refused


def test_add_creates_then_merges_by_mobile(crm: CRM) -> None:
    first = crm.customers.add({"name": "王伟", "mobile": "138 1234 5678", "project": "XL2"})
    assert first.created
    again = crm.customers.add({"mobile": "+86 138-1234-5678", "email": "WW@Example.com"})
    assert not again.created and again.changed
    assert again.customer.id == first.customer.id
    assert again.customer.name == "王伟"
    assert again.customer.email == "ww@example.com"
    assert crm.customers.count() == 1


def test_unchanged_match_keeps_updated_at(crm: CRM) -> None:
    first = crm.customers.add({"name": "王伟", "mobile": "13812345678"})
    again = crm.customers.add({"name": "别名", "mobile": "13812345678"})
    assert not again.changed
    assert again.customer.name == "王伟"
    assert again.customer.updated_at == first.customer.updated_at


def test_conflict_two_customers(crm: CRM) -> None:
    crm.customers.add({"mobile": "13812345678"})
    crm.customers.add({"id_card": "11010519491231002X"})
    with pytest.raises(IdentityConflict):
        crm.customers.add({"mobile": "13812345678", "id_card": "11010519491231002X"})


def test_conflict_other_id_card(crm: CRM) -> None:
    crm.customers.add({"mobile": "13812345678", "id_card": "11010519491231002X"})
    with pytest.raises(IdentityConflict, match="ID card differs"):
        crm.customers.add({"mobile": "13812345678", "id_card": "110105194912310038"})


def test_no_key_rejected(crm: CRM) -> None:
    with pytest.raises(InvalidInput, match="no mobile, ID card or WeChat unionid"):
        crm.customers.add({"name": "王先生", "email": "a@b.cn"})


def test_email_alone_never_merges(crm: CRM) -> None:
    a = crm.customers.add({"mobile": "13812345678", "email": "family@example.com"})
    b = crm.customers.add({"mobile": "13912345678", "email": "family@example.com"})
    assert b.created and b.suspected_duplicate_of == [a.customer.id]
    pairs = crm.customers.duplicates()
    assert [p.customer_ids for p in pairs] == [[a.customer.id, b.customer.id]]


def test_stage_forward_only_unless_forced(crm: CRM) -> None:
    c = crm.customers.add({"mobile": "13812345678", "project": "XL2"}).customer
    crm.customers.set_stage(c.id, "buyer", "XL2", unit="3-1201", amount=2_500_000)
    with pytest.raises(Refused):
        crm.customers.set_stage(c.id, "visitor", "XL2")
    back = crm.customers.set_stage(c.id, "visitor", "XL2", force=True)
    assert back.stage == "visitor"
    kinds = [i.kind for i in crm.interactions.list(c.id)]
    assert kinds == ["contract"]
    contract = crm.interactions.list(c.id)[0]
    assert contract.data == {"stage": "buyer", "unit": "3-1201", "amount": 2_500_000}


def test_overall_stage_is_furthest(crm: CRM) -> None:
    c = crm.customers.add({"mobile": "13812345678"}).customer
    crm.customers.set_stage(c.id, "owner", "A")
    crm.customers.set_stage(c.id, "visitor", "B")
    got = crm.customers.get(c.id)
    assert got.stage == "owner"
    assert {(p.project, p.stage) for p in got.projects} == {("A", "owner"), ("B", "visitor")}


def test_merge_moves_everything(crm: CRM) -> None:
    a = crm.customers.add({"name": "王伟", "mobile": "13812345678", "project": "A"}).customer
    b = crm.customers.add({"mobile": "13912345678", "email": "w@x.cn", "project": "A"}).customer
    crm.customers.set_stage(b.id, "buyer", "A")
    crm.interactions.log(b.id, {"kind": "call"})
    crm.consent.grant(b.id, "sms")
    merged = crm.customers.merge(a.id, b.id)
    assert merged.mobiles == ["+8613812345678", "+8613912345678"]
    assert merged.email == "w@x.cn"
    assert merged.stage == "buyer"
    assert [p.stage for p in merged.projects] == ["buyer"]
    assert crm.customers.get(b.id).id == a.id
    assert {i.kind for i in crm.interactions.list(a.id)} == {"call", "contract"}
    assert crm.consent.allowed(a.id, "sms")
    assert crm.customers.count() == 1
    with pytest.raises(Refused):
        crm.customers.merge(a.id, b.id)


def test_reassign(crm: CRM) -> None:
    for i in range(3):
        crm.customers.add({"mobile": f"1381234567{i}", "project": "A", "owner_staff": "s1"})
    crm.customers.add({"mobile": "13912345670", "project": "B", "owner_staff": "s1"})
    assert crm.customers.reassign("s1", "s2", project="A") == 3
    assert crm.customers.reassign("s1", "s2") == 1
    with pytest.raises(NotFound):
        crm.customers.reassign("s1", "s2", project="nope")


def test_unknown_customer(crm: CRM) -> None:
    with pytest.raises(NotFound):
        crm.customers.get(12345)


def test_view_lists_identities(crm: CRM) -> None:
    c = crm.customers.add(
        {"mobile": "13812345678", "id_card": "11010519491231002x", "project": "XL2"}
    ).customer
    crm.customers.update(c.id, {"add_mobiles": ["+852 5123 4567"]})
    view = crm.customers.view(c.id)
    assert [(i.kind, i.value) for i in view.identities] == [
        ("mobile", "+8613812345678"),
        ("id_card", "11010519491231002X"),
        ("mobile", "+85251234567"),
    ]
