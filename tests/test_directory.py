"""The staff and department directory: commands, leaving, require_known_staff on every
path that names a staff member, and the ids in use the directory lacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recrm_core import CRM, Actor, InvalidInput, NotFound, Refused
from recrm_core.testing import RecrmCliRunner


def test_departments_and_staff_commands(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    added = cli_runner.invoke("departments", "add", "XL-SALES", "--name", "星珑湾销售部",
                              "--projects", "XL1, XL2", "--email", "XL@Dev.Example", "--json")
    assert added.exit_code == 0, added.stderr
    assert added.json() == {"code": "XL-SALES", "name": "星珑湾销售部",
                            "email": "xl@dev.example", "projects": ["XL1", "XL2"]}
    again = cli_runner.invoke("departments", "add", "XL-SALES", "--name", "x")
    assert again.exit_code == 1 and "department 'XL-SALES' exists" in again.stderr
    r = cli_runner.invoke("staff", "add", "wang", "--name", "王经理", "--role", "manager",
                          "--department", "XL-SALES", "--mobile", "138 0000 0001",
                          "--email", "wang@dev.example")
    assert r.exit_code == 0, r.stderr
    r = cli_runner.invoke("staff", "add", "zhang", "--name", "张顾问", "--role", "consultant",
                          "--department", "XL-SALES", "--manager", "wang")
    assert r.exit_code == 0, r.stderr
    listed = cli_runner.invoke("staff", "list", "--department", "XL-SALES", "--json").json()
    assert [(s["id"], s["role"], s["manager"], s["mobile"]) for s in listed] == [
        ("wang", "manager", None, "+8613800000001"), ("zhang", "sales", "wang", None)]
    table = cli_runner.invoke("departments", "list")
    assert "星珑湾销售部" in table.stdout and "XL1, XL2" in table.stdout
    for args, code, message in [
        (("staff", "add", "x1", "--name", "X", "--role", "boss"), 2, "unknown role 'boss'"),
        (("staff", "add", "x1", "--name", "X", "--role", "sales", "--department", "NOPE"), 1,
         "no such department 'NOPE'"),
        (("staff", "add", "x1", "--name", "X", "--role", "sales", "--manager", "nobody"), 1,
         "no such staff 'nobody'"),
        (("staff", "add", "zhang", "--name", "X", "--role", "sales"), 1,
         "staff 'zhang' exists"),
        (("staff", "add", "x1", "--name", " ", "--role", "sales"), 2, "staff name is empty"),
        (("staff", "list", "--department", "NOPE"), 1, "no such department 'NOPE'"),
        (("staff", "leave", "nobody"), 1, "no such staff 'nobody'"),
    ]:
        result = cli_runner.invoke(*args)
        assert (result.exit_code, result.stdout) == (code, ""), (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_only_admins_keep_the_directory(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    denied = cli_runner.invoke("--as", "sales:zhang", "staff", "add", "x", "--name", "X",
                               "--role", "sales")
    assert denied.exit_code == 1 and "role sales may not change the staff directory" \
        in denied.stderr
    assert crm.directory.staff() == []
    assert cli_runner.invoke("--as", "partner:li", "staff", "list").exit_code == 1


def test_leaving_keeps_history_and_blocks_new_assignments(crm: CRM) -> None:
    crm.directory.add_staff({"id": "zhang", "name": "张", "role": "sales"})
    crm.directory.add_staff({"id": "li", "name": "李", "role": "sales"})
    c = crm.customers.add({"mobile": "13812345678", "project": "XL1",
                           "owner_staff": "zhang"}).customer
    gone = crm.directory.leave("zhang")
    assert gone.active is False and gone.left_at is not None
    with pytest.raises(Refused, match="already left"):
        crm.directory.leave("zhang")
    # history keeps them
    assert crm.customers.get(c.id).projects[0].owner_staff == "zhang"
    assert [s.id for s in crm.directory.staff()] == ["li", "zhang"]
    # no new assignment: owner, assignee, reassign target, and they act no more
    with pytest.raises(Refused, match="staff 'zhang' has left"):
        crm.customers.add({"mobile": "13912345678", "project": "XL1", "owner_staff": "zhang"})
    with pytest.raises(Refused, match="has left"):
        crm.cases.open({"customer_id": c.id, "category": "repair", "subject": "漏水",
                        "assignee": "zhang"})
    with pytest.raises(Refused, match="has left"):
        crm.customers.reassign("li", "zhang")
    with pytest.raises(Refused, match="has left"):
        crm.interactions.log(c.id, {"kind": "call"}, actor=Actor(staff_id="zhang"))
    # moving their customers away still works
    assert crm.customers.reassign("zhang", "li") == 1


@pytest.mark.parametrize("role", ["partner", "analyst"])
def test_a_partner_or_an_analyst_owns_nothing_and_is_assigned_nothing(
        crm: CRM, role: str, tmp_path: Path) -> None:
    # An agency's agent (or an analyst) named as a customer's owner became it: a
    # consultant's follow-up calls, pool releases and customers went to someone who may
    # not even read tasks (docs/access.md).
    crm.directory.add_staff({"id": "li", "name": "李", "role": "sales"})
    crm.directory.add_staff({"id": "ag", "name": "代理", "role": role})
    c = crm.customers.add({"mobile": "13812345678", "project": "XL1",
                           "owner_staff": "li"}).customer
    refused = f"staff 'ag' is {role} in the directory: a {role} owns no customers"
    with pytest.raises(Refused, match=refused):
        crm.customers.add({"mobile": "13912345678", "project": "XL1", "owner_staff": "ag"})
    with pytest.raises(Refused, match=refused):
        crm.cases.open({"customer_id": c.id, "category": "repair", "subject": "漏水",
                        "assignee": "ag"})
    with pytest.raises(Refused, match=refused):
        crm.customers.reassign("li", "ag")
    with pytest.raises(Refused, match=refused):
        crm.tasks.add({"customer_id": c.id, "project": "XL1", "kind": "call",
                       "due_at": "2030-01-01T08:00:00+08:00", "staff": "ag"})
    rows = tmp_path / "rows.csv"
    rows.write_text("手机,项目,置业顾问\n13700000001,XL1,ag\n13700000002,XL1,li\n",
                    encoding="utf-8")
    rejected: list[Any] = []
    result = crm.importer.import_file(rows, on_reject=rejected.append)
    assert (result.created, [(r.row, r.field) for r in rejected]) == (1, [(1, "owner_staff")])
    assert refused in rejected[0].reason
    # Recording who made a contact is no assignment; their reads are unchanged.
    crm.interactions.log(c.id, {"kind": "call", "staff": "ag"})
    assert crm.customers.get(c.id).projects[0].owner_staff == "li"


def test_unknown_staff_ids_work_by_default_and_are_listed(
        crm: CRM, cli_runner: RecrmCliRunner) -> None:
    crm.directory.add_staff({"id": "li", "name": "李", "role": "sales"})
    c = crm.customers.add({"mobile": "13812345678", "project": "XL1",
                           "owner_staff": "zhang"}).customer
    crm.cases.open({"customer_id": c.id, "category": "repair", "subject": "x",
                    "assignee": "kf9"})
    crm.interactions.log(c.id, {"kind": "call", "staff": "li"})
    crm.interactions.log(c.id, {"kind": "visit", "staff": "wu"})
    assert crm.directory.unknown_ids() == ["kf9", "wu", "zhang"]
    shown = cli_runner.invoke("staff", "list", "--unknown", "--json")
    assert shown.exit_code == 0 and shown.json() == ["kf9", "wu", "zhang"]


@pytest.mark.recrm_settings(require_known_staff=True)
def test_require_known_staff_refuses_unknown_ids_everywhere(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path) -> None:
    crm.directory.add_staff({"id": "li", "name": "李", "role": "sales"})
    c = crm.customers.add({"mobile": "13812345678", "project": "XL1",
                           "owner_staff": "li"}).customer
    refused = [
        lambda: crm.customers.add({"mobile": "13912345678", "owner_staff": "zhang",
                                   "project": "XL1"}),
        lambda: crm.cases.open({"customer_id": c.id, "category": "repair", "subject": "x",
                                "assignee": "zhang"}),
        lambda: crm.interactions.log(c.id, {"kind": "call", "staff": "zhang"}),
        lambda: crm.customers.reassign("li", "zhang"),
        lambda: crm.customers.get(c.id, actor=Actor(staff_id="zhang")),
    ]
    for attempt in refused:
        with pytest.raises(NotFound, match="no such staff 'zhang'"):
            attempt()
    # an import rejects the row, and keeps the others
    csv = tmp_path / "leads.csv"
    csv.write_text("mobile,project,owner_staff\n13700000001,XL1,zhang\n13700000002,XL1,li\n",
                   encoding="utf-8")
    errors = tmp_path / "errors.csv"
    result = crm.importer.import_file(csv, errors_path=errors)
    assert (result.created, result.rejected) == (1, 1)
    assert "1,owner_staff,no such staff 'zhang'" in errors.read_text(encoding="utf-8-sig")
    # the CLI: exit 1, one line
    crm.directory.add_staff({"id": "boss", "name": "老板", "role": "admin"})
    for args in (("--as", "sales:zhang", "customers", "show", str(c.id)),
                 ("customers", "show", str(c.id)),  # the system user is no staff either
                 ("--as", "admin:boss", "customers", "add", "--mobile", "13600000001",
                  "--owner-staff", "zhang"),
                 ("--as", "admin:boss", "cases", "open", str(c.id), "--category", "repair",
                  "--subject", "x", "--assignee", "zhang")):
        r = cli_runner.invoke(*args)
        import getpass

        who = getpass.getuser() if args[0] == "customers" else "zhang"
        assert (r.exit_code, r.stderr) == (1, f"error: no such staff {who!r}\n"), args
    # the directory commands themselves take no actor check: the first admin can be added
    r = cli_runner.invoke("--as", "admin:root", "staff", "add", "root", "--name", "Root",
                          "--role", "admin")
    assert r.exit_code == 0, r.stderr


def test_a_role_the_directory_contradicts_is_refused(
        crm: CRM, cli_runner: RecrmCliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    crm.directory.add_staff({"id": "li", "name": "李", "role": "partner"})
    crm.directory.add_staff({"id": "boss", "name": "老板", "role": "admin"})
    c = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer
    r = cli_runner.invoke("--as", "admin:li", "customers", "show", str(c.id))
    assert (r.exit_code, r.stderr.strip()) == (
        1, "error: staff 'li' is partner in the directory, not admin")
    # without a role, the directory's: RECRM_STAFF=li acts as the partner it is
    monkeypatch.setenv("RECRM_STAFF", "li")
    shown = cli_runner.invoke("customers", "find", "--mobile", "13812345678", "--json")
    assert shown.json()[0]["mobiles"] == ["138****5678"]
    # a directory admin may act in any role, to see what it sees
    monkeypatch.setenv("RECRM_AS", "partner:boss")
    assert cli_runner.invoke("customers", "show", str(c.id), "--json").json()[
        "customer"]["name"] == "王*"


def test_bad_directory_input_names_the_field(crm: CRM) -> None:
    with pytest.raises(InvalidInput, match="email"):
        crm.directory.add_staff({"id": "x", "name": "X", "role": "sales", "email": "no"})
    with pytest.raises(InvalidInput, match="manager"):
        crm.directory.add_staff({"id": "x", "name": "X", "role": "sales", "manager": "x"})
    with pytest.raises(InvalidInput, match="staff id"):
        crm.directory.add_staff({"id": "s" * 65, "name": "X", "role": "sales"})
