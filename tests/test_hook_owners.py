"""``recrm_owners_changed``: every way an owner changes tells plugins, once per
operation, and a plugin can refuse a change (the operation rolls back)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from recrm_core import CRM, Actor, OwnerChange, PluginError, UnitOfWork, hookimpl

Register = Callable[..., str]


class OwnerWatch:
    """Keeps every batch of changes, and refuses to hand customers to ``blocked``."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[int, str, str | None, str | None, str]]] = []

    @hookimpl
    def recrm_owners_changed(self, uow: UnitOfWork, changes: list[OwnerChange]) -> None:
        self.calls.append([(c.customer_id, c.project, c.old_owner, c.new_owner, c.reason)
                           for c in changes])
        if any(c.new_owner == "blocked" for c in changes):
            raise ValueError("staff 'blocked' has left the company")


def test_hook_recrm_owners_changed(crm: CRM, register_plugin: Register, tmp_path: Path) -> None:
    watch = OwnerWatch()
    register_plugin(watch, name="ownerwatch")
    a = crm.customers.add({"mobile": "13812345678", "project": "XL1",
                           "owner_staff": "zhang"}).customer.id
    assert watch.calls.pop() == [(a, "XL1", None, "zhang", "first_link")]
    b = crm.customers.add({"mobile": "13812345679", "project": "XL1"}).customer.id
    assert watch.calls == []  # a link without an owner changes no owner
    crm.customers.add({"mobile": "13812345679", "project": "XL1", "owner_staff": "li"})
    assert watch.calls.pop() == [(b, "XL1", None, "li", "filled")]
    crm.customers.set_stage(a, "visitor", "XL2", actor=Actor(staff_id="wang"))
    assert watch.calls.pop() == [(a, "XL2", None, "wang", "first_link")]

    # A bulk reassign is one call with every link it moved.
    assert crm.customers.reassign("zhang", "li") == 1
    crm.customers.add({"mobile": "13812345670", "project": "XL2", "owner_staff": "wang"})
    c = watch.calls.pop()[0][0]
    assert crm.customers.reassign("wang", "zhao") == 2
    assert watch.calls[-1] == [(a, "XL2", "wang", "zhao", "reassign"),
                               (c, "XL2", "wang", "zhao", "reassign")]
    assert watch.calls[-2] == [(a, "XL1", "zhang", "li", "reassign")]
    watch.calls.clear()

    # A merge: the duplicate's link moves to the survivor, owner and all.
    crm.customers.merge(b, c)
    assert watch.calls.pop() == [(b, "XL2", None, "zhao", "merge")]

    # An import batch: one call with the batch's changes.
    path = tmp_path / "leads.csv"
    path.write_text("mobile,project,owner_staff\n13912340001,XL1,qian\n13912340002,XL1,sun\n"
                    "13812345678,XL3,qian\n", encoding="utf-8")
    crm.importer.import_csv(path)
    (batch,) = watch.calls
    assert [(ch[1], ch[2], ch[3], ch[4]) for ch in batch] == [
        ("XL1", None, "qian", "first_link"), ("XL1", None, "sun", "first_link"),
        ("XL3", None, "qian", "first_link"),
    ]
    assert batch[2][0] == a

    # The plugin refuses: the reassign rolls back whole.
    with pytest.raises(PluginError, match="ownerwatch"):
        crm.customers.reassign("li", "blocked")
    assert {p.owner_staff for p in crm.customers.get(a).projects if p.project == "XL1"} == {"li"}
