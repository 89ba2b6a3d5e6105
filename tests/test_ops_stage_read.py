"""``set_stage``'s first read: the customer, the project and the link in one statement.

The common case (the customer as named, the project known) is read at once; every
other case goes the way it went before (``resolve_id``, ``project_id_in``), so a merged
id moves the survivor, and the errors and their order are those of the separate reads.
Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from recrm_core import CRM, NotFound, UnknownProject

Factory = Callable[..., CRM]


def test_a_move_returns_the_customer_as_stored(crm: CRM) -> None:
    crm.projects.ensure("P1", "Project one")
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678",
                             "wechat_unionid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}).customer.id
    crm.customers.add({"name": "李娜", "mobile": "13812345679", "project": "P0"})
    moved = crm.customers.set_stage(cid, "visitor", "P1")
    assert moved == crm.customers.get(cid)
    assert [p.stage for p in moved.projects] == ["visitor"]
    # A link found is moved on (read again, locked).
    again = crm.customers.set_stage(cid, "subscriber", "P1", unit="8-101")
    assert again == crm.customers.get(cid)
    assert [(p.project, p.stage) for p in again.projects] == [("P1", "subscriber")]


def test_a_merged_id_moves_the_survivor(crm: CRM) -> None:
    crm.projects.ensure("P1", "Project one")
    survivor = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    duplicate = crm.customers.add({"name": "王伟", "mobile": "13912345678"}).customer.id
    crm.customers.merge(survivor, duplicate)
    moved = crm.customers.set_stage(duplicate, "visitor", "P1")
    assert moved.id == survivor
    assert crm.customers.get(survivor).projects[0].stage == "visitor"


def test_an_unknown_customer_is_named_before_an_unknown_project(
    crm_factory: Factory,
) -> None:
    crm = crm_factory(settings={"auto_create_projects": False})
    with pytest.raises(NotFound, match="no customer 424242") as caught:
        crm.customers.set_stage(424242, "visitor", "NOPE")
    assert not isinstance(caught.value, UnknownProject)
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    with pytest.raises(UnknownProject):
        crm.customers.set_stage(cid, "visitor", "NOPE")
    assert crm.customers.get(cid).projects == []


def test_a_new_project_is_created_while_auto_create_is_on(crm: CRM) -> None:
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    moved = crm.customers.set_stage(cid, "visitor", "NEW1")
    assert [(p.project, p.stage) for p in moved.projects] == [("NEW1", "visitor")]
    assert crm.projects.get("NEW1").code == "NEW1"


def test_an_erased_customer_is_not_moved(crm: CRM) -> None:
    crm.projects.ensure("P1", "Project one")
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    crm.privacy.erase(cid, "asked")
    with pytest.raises(NotFound, match="erased"):
        crm.customers.set_stage(cid, "visitor", "P1")
