"""``recrm tasks ...`` and ``recrm pool ...`` (and the pool's ways out of ``customers
reassign`` and ``staff leave``) through the CLI runner, on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from recrm_core import CRM, InvalidInput
from recrm_core.testing import CliResult, RecrmCliRunner


@pytest.fixture
def cid(crm: CRM) -> int:
    return crm.customers.add({"name": "王伟", "mobile": "13812345678", "project": "XL2",
                              "owner_staff": "zhang"}).customer.id


def ok_json(result: CliResult) -> Any:
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n") == 1  # exactly one compact line
    return result.json()


def error(result: CliResult, code: int, *fragments: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_add_list_done_cancel(cli_runner: RecrmCliRunner, cid: int) -> None:
    task = ok_json(cli_runner.invoke("tasks", "add", str(cid), "--project", "XL2", "--kind",
                                     "WeChat", "--due", "+2d", "--staff", "zhang", "--note",
                                     "发户型图", "--json"))
    assert (task["kind"], task["owner_staff"], task["note"]) == ("wechat", "zhang", "发户型图")
    listed = ok_json(cli_runner.invoke("tasks", "list", "--staff", "zhang", "--json"))
    assert [t["id"] for t in listed] == [task["id"]]
    assert ok_json(cli_runner.invoke("tasks", "list", "--overdue", "--json")) == []
    assert ok_json(cli_runner.invoke("tasks", "list", "--due-today", "--json")) == []
    table = cli_runner.invoke("tasks", "list")
    assert table.exit_code == 0 and "发户型图" in table.stdout
    done = ok_json(cli_runner.invoke("tasks", "done", str(task["id"]), "--json"))
    assert done["status"] == "done"
    error(cli_runner.invoke("tasks", "done", str(task["id"])), 1, "is done, not open")
    other = ok_json(cli_runner.invoke("tasks", "add", str(cid), "--project", "XL2", "--kind",
                                      "call", "--due", "2030-01-01 09:00", "--staff", "li",
                                      "--json"))
    assert other["due_at"] == "2030-01-01T01:00:00Z"
    result = cli_runner.invoke("tasks", "cancel", str(other["id"]), "--reason", "客户出国")
    assert result.exit_code == 0 and "cancelled" in result.stderr
    everything = ok_json(cli_runner.invoke("tasks", "list", "--status", "all", "--json"))
    assert [t["status"] for t in everything] == ["done", "cancelled"]
    report = ok_json(cli_runner.invoke("tasks", "report", "--json"))
    assert {r["staff"]: r["created"] for r in report} == {"zhang": 1, "li": 1}


def test_user_mistakes_are_one_line(cli_runner: RecrmCliRunner, cid: int) -> None:
    add = ("tasks", "add", str(cid), "--project", "XL2", "--kind", "call")
    error(cli_runner.invoke(*add, "--due", "tomorrow"), 2, "--due", "is no time")
    error(cli_runner.invoke(*add, "--due", "+1d", "--staff", "x" * 65), 2, "--staff")
    error(cli_runner.invoke("tasks", "add", str(cid), "--project", "NOPE", "--kind", "call",
                            "--due", "+1d", "--staff", "zhang"), 1, "no such project")
    error(cli_runner.invoke("tasks", "add", "999", "--project", "XL2", "--kind", "call",
                            "--due", "+1d", "--staff", "zhang"), 1, "999")
    error(cli_runner.invoke("tasks", "done", "42"), 1, "no such task 42")
    error(cli_runner.invoke("tasks", "done", "abc"), 2)
    error(cli_runner.invoke("tasks", "cancel", "42"), 2, "--reason")
    error(cli_runner.invoke("tasks", "report", "--from", "2026-05-02", "--to", "2026-05-01"),
          2, "--to: the period ends (2026-05-01) before it starts (2026-05-02)")
    error(cli_runner.invoke("tasks", "list", "--status", "later"), 2)
    error(cli_runner.invoke("pool", "report", "--from", "0001-01-01"), 2, "--from",
          "outside the dates")
    error(cli_runner.invoke("--as", "partner:p1", "tasks", "list"), 1, "partner")
    error(cli_runner.invoke("--as", "sales:zhang", "tasks", "sweep"), 1, "sweep")


def test_terminal_values_are_escaped(cli_runner: RecrmCliRunner, cid: int) -> None:
    ok_json(cli_runner.invoke("tasks", "add", str(cid), "--project", "XL2", "--kind", "call",
                              "--due", "+1d", "--staff", "zhang", "--note",
                              "a\x1b[31mred[/bold]", "--json"))
    shown = cli_runner.invoke("tasks", "list")
    assert shown.exit_code == 0 and "\x1b" not in shown.stdout and "[/bold]" in shown.stdout


def test_sweep(cli_runner: RecrmCliRunner, crm: CRM, cid: int) -> None:
    crm.interactions.log(cid, {"kind": "visit", "project": "XL2", "staff": "zhang"})
    assert ok_json(cli_runner.invoke("tasks", "sweep", "--json")) == {
        "after_visit": 0, "prospect_idle": 0}
    result = cli_runner.invoke("tasks", "sweep")
    assert result.exit_code == 0 and "created 0" in result.stderr


def test_pool(cli_runner: RecrmCliRunner, crm: CRM, cid: int) -> None:
    dry = ok_json(cli_runner.invoke("pool", "sweep", "--dry-run", "--json"))
    assert dry == {"dry_run": True, "released": []}
    error(cli_runner.invoke("pool", "claim", str(cid), "--project", "XL2", "--staff", "li"),
          1, "not in the pool: zhang has it")
    error(cli_runner.invoke("customers", "reassign", "zhang"), 2, "TO_STAFF or --to-pool")
    error(cli_runner.invoke("customers", "reassign", "zhang", "li", "--to-pool"), 2)
    assert ok_json(cli_runner.invoke("customers", "reassign", "zhang", "--to-pool",
                                     "--project", "XL2", "--json")) == {"released": 1}
    pooled = ok_json(cli_runner.invoke("pool", "list", "--project", "XL2", "--json"))
    assert [(p["customer_id"], p["released_from"], p["reason"]) for p in pooled] == [
        (cid, "zhang", "to_pool")]
    assert "zhang" in cli_runner.invoke("pool", "list", "--project", "XL2").stdout
    error(cli_runner.invoke("pool", "list"), 2, "--project")
    error(cli_runner.invoke("pool", "list", "--project", "NOPE"), 1, "no such project")
    claimed = ok_json(cli_runner.invoke("pool", "claim", str(cid), "--project", "XL2",
                                        "--staff", "li", "--json"))
    assert (claimed["action"], claimed["staff"]) == ("claimed", "li")
    error(cli_runner.invoke("pool", "claim", str(cid), "--project", "XL2", "--staff", "wang"),
          1, "li has it")
    history = ok_json(cli_runner.invoke("pool", "history", str(cid), "--json"))
    assert [e["action"] for e in history] == ["released", "claimed"]
    report = ok_json(cli_runner.invoke("pool", "report", "--json"))
    assert (report[0]["released"], report[0]["claimed"]) == (1, 1)
    assert cli_runner.invoke("pool", "report").exit_code == 0
    ok = cli_runner.invoke("pool", "sweep")
    assert ok.exit_code == 0 and "released 0" in ok.stderr


def test_staff_leave(cli_runner: RecrmCliRunner, crm: CRM, cid: int) -> None:
    for sid in ("zhang", "li"):
        crm.directory.add_staff({"id": sid, "name": sid, "role": "sales"})
    error(cli_runner.invoke("staff", "leave", "zhang", "--reassign-to", "li", "--to-pool"),
          2, "not both")
    gone = ok_json(cli_runner.invoke("staff", "leave", "zhang", "--reassign-to", "li", "--json"))
    assert gone["active"] is False
    assert crm.customers.get(cid).projects[0].owner_staff == "li"
    ok_json(cli_runner.invoke("staff", "leave", "li", "--to-pool", "--json"))
    assert crm.customers.get(cid).projects[0].owner_staff is None
    assert [e.reason for e in crm.pool.history(cid)] == ["staff_left"]


def test_leaving_with_customers_needs_a_destination(crm: CRM,
                                                   cli_runner: RecrmCliRunner) -> None:
    crm.directory.add_staff({"id": "wang", "name": "王", "role": "sales"})
    crm.directory.add_staff({"id": "quiet", "name": "静", "role": "sales"})
    crm.customers.add({"mobile": "13812345678", "project": "XL1", "owner_staff": "wang"})
    refused = cli_runner.invoke("staff", "leave", "wang")
    assert refused.exit_code == 2 and "--reassign-to STAFF or --to-pool" in refused.stderr
    assert crm.directory.get("wang").left_at is None
    assert cli_runner.invoke("staff", "leave", "quiet").exit_code == 0  # owns nobody
    assert cli_runner.invoke("staff", "leave", "wang", "--to-pool").exit_code == 0
    with pytest.raises(InvalidInput):
        crm.tasks.list(staff="b\x00")
