"""``recrm cases ...`` through the CLI runner, on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from recrm_core import CRM
from recrm_core.testing import CliResult, RecrmCliRunner

T0 = dt.datetime(2024, 5, 1, 0, 0, tzinfo=dt.UTC)  # 08:00 in Asia/Shanghai


@pytest.fixture
def cid(crm: CRM) -> int:
    return crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id


def _ok_json(result: CliResult) -> Any:
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n") == 1  # exactly one compact line
    return result.json()


def _error(result: CliResult, code: int, *fragments: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def _open(cli_runner: RecrmCliRunner, cid: int, *extra: str) -> dict[str, Any]:
    result = cli_runner.invoke("cases", "open", str(cid), "--category", "repair",
                               "--subject", "卫生间漏水", *extra, "--json")
    case: dict[str, Any] = _ok_json(result)
    return case


def test_open(cli_runner: RecrmCliRunner, crm: CRM, cid: int) -> None:
    case = _open(cli_runner, cid, "--priority", "URGENT", "--project", "XL2",
                 "--department", "客服部", "--assignee", "李娜", "--description", "楼上渗水",
                 "--actor", "kf01")
    assert case["customer_id"] == cid
    assert (case["priority"], case["status"], case["project"]) == ("urgent", "open", "XL2")
    assert (case["department"], case["assignee"]) == ("客服部", "李娜")
    opened = dt.datetime.fromisoformat(case["opened_at"])
    assert dt.datetime.fromisoformat(case["sla_due_at"]) == opened + dt.timedelta(hours=4)
    assert case["history"][0]["actor_staff"] == "kf01"
    assert crm.cases.get(case["id"]).description == "楼上渗水"


def test_open_human_output(cli_runner: RecrmCliRunner, cid: int) -> None:
    result = cli_runner.invoke("cases", "open", str(cid), "--category", "inquiry",
                               "--subject", "交房时间")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("case 1 opened: open, due ")


def test_open_errors(cli_runner: RecrmCliRunner, crm: CRM, cid: int) -> None:
    base = ("cases", "open", str(cid), "--category", "repair", "--subject", "漏水")
    _error(cli_runner.invoke("cases", "open", "999", "--category", "repair", "--subject", "x"),
           1, "no customer 999")
    _error(cli_runner.invoke(*base, "--priority", "asap"), 2, "--priority")
    _error(cli_runner.invoke("cases", "open", str(cid), "--subject", "漏水"), 2, "--category")
    _error(cli_runner.invoke("cases", "open", str(cid), "--category", "repair", "--subject",
                             " "), 2, "subject")
    _error(cli_runner.invoke("cases", "open", "abc", "--category", "r", "--subject", "s"), 2)
    assert crm.cases.list() == []


@pytest.mark.parametrize(
    ("command", "setup", "status"),
    [
        ("start", [], "in_progress"),
        ("resolve", [], "resolved"),
        ("close", ["resolve"], "closed"),
        ("reopen", ["resolve", "close"], "reopened"),
    ],
)
def test_status_commands(cli_runner: RecrmCliRunner, crm: CRM, cid: int, command: str,
                         setup: list[str], status: str) -> None:
    case_id = _open(cli_runner, cid)["id"]
    for step in setup:
        getattr(crm.cases, step)(case_id)
    got = _ok_json(cli_runner.invoke("cases", command, str(case_id), "--note", "备注",
                                     "--actor", "gc07", "--json"))
    assert got["status"] == status
    last = got["history"][-1]
    assert (last["action"], last["to_value"], last["note"], last["actor_staff"]) == (
        command, status, "备注", "gc07")
    # the same command again is refused: the status no longer allows it
    _error(cli_runner.invoke("cases", command, str(case_id)), 1, f"is {status}", "allowed:")
    _error(cli_runner.invoke("cases", command, "404"), 1, "no case 404")


def test_status_command_human_output(cli_runner: RecrmCliRunner, cid: int) -> None:
    case_id = _open(cli_runner, cid)["id"]
    result = cli_runner.invoke("cases", "start", str(case_id))
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.startswith(f"case {case_id} started: in_progress")


def test_refused_close_from_open(cli_runner: RecrmCliRunner, crm: CRM, cid: int) -> None:
    case_id = _open(cli_runner, cid)["id"]
    _error(cli_runner.invoke("cases", "close", str(case_id), "--json"), 1,
           f"case {case_id} is open: cannot close; allowed: start, resolve")
    assert crm.cases.get(case_id).status == "open"


def test_escalate(cli_runner: RecrmCliRunner, crm: CRM, cid: int) -> None:
    case_id = crm.cases.open({"customer_id": cid, "category": "complaint", "subject": "噪音"},
                             opened_at=T0).id
    got = _ok_json(cli_runner.invoke("cases", "escalate", str(case_id), "--note", "领导关注",
                                     "--actor", "kf01", "--json"))
    assert (got["escalation_level"], got["priority"]) == (1, "high")
    assert got["sla_due_at"] == "2024-05-02T00:00:00Z"
    assert [h["action"] for h in got["history"]] == ["open", "escalate", "priority",
                                                     "transfer", "notify"]
    assert (got["level"], got["department"]) == ("city customer-relations centre", "CRC")
    crm.cases.resolve(case_id)
    _error(cli_runner.invoke("cases", "escalate", str(case_id)), 1, "cannot escalate")
    _error(cli_runner.invoke("cases", "escalate", "404"), 1, "no case 404")


def test_transfer(cli_runner: RecrmCliRunner, crm: CRM, cid: int) -> None:
    case_id = _open(cli_runner, cid, "--department", "客服部")["id"]
    got = _ok_json(cli_runner.invoke("cases", "transfer", str(case_id), "--department", "工程部",
                                     "--assignee", "张工", "--note", "需要维修", "--actor",
                                     "kf01", "--json"))
    assert (got["department"], got["assignee"]) == ("工程部", "张工")
    last = got["history"][-1]
    assert (last["action"], last["from_value"], last["to_value"], last["actor_staff"]) == (
        "transfer", "客服部/-", "工程部/张工", "kf01")
    human = cli_runner.invoke("cases", "transfer", str(case_id), "--assignee", "李工")
    assert human.exit_code == 0 and human.stdout == ""
    assert "transferred to 工程部/李工" in human.stderr


def test_transfer_errors(cli_runner: RecrmCliRunner, crm: CRM, cid: int) -> None:
    case_id = _open(cli_runner, cid, "--department", "工程部")["id"]
    _error(cli_runner.invoke("cases", "transfer", str(case_id)), 2,
           "--department or --assignee")
    _error(cli_runner.invoke("cases", "transfer", str(case_id), "--department", "工程部"), 1,
           "already with 工程部/-")
    _error(cli_runner.invoke("cases", "transfer", str(case_id), "--assignee", "张" * 65), 2,
           "assignee")
    _error(cli_runner.invoke("cases", "transfer", "404", "--assignee", "张工"), 1,
           "no case 404")
    crm.cases.resolve(case_id)
    _error(cli_runner.invoke("cases", "transfer", str(case_id), "--assignee", "张工"), 1,
           "is resolved: cannot transfer")
    assert [h.action for h in crm.cases.get(case_id).history] == ["open", "resolve"]


def test_show(cli_runner: RecrmCliRunner, crm: CRM, cid: int) -> None:
    case_id = crm.cases.open({"customer_id": cid, "category": "repair", "subject": "门锁坏了",
                              "priority": "high"}, opened_at=T0).id
    crm.cases.transfer(case_id, department="工程部", note="转维修")
    got = _ok_json(cli_runner.invoke("cases", "show", str(case_id), "--json"))
    assert got["overdue"] is True
    assert [h["action"] for h in got["history"]] == ["open", "transfer"]
    result = cli_runner.invoke("cases", "show", str(case_id))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    # business time zone (Asia/Shanghai): T0 is 08:00 there, due 24 h later
    assert "2024-05-01 08:00" in out and "2024-05-02 08:00" in out
    assert "OVERDUE" in out
    assert "门锁坏了" in out and "转维修" in out and "工程部/-" in out
    _error(cli_runner.invoke("cases", "show", "404"), 1, "no case 404")
    _error(cli_runner.invoke("cases", "show", "404", "--json"), 1, "no case 404")


@pytest.mark.recrm_settings(timezone="UTC")
def test_show_uses_configured_time_zone(cli_runner: RecrmCliRunner, crm: CRM, cid: int) -> None:
    case_id = crm.cases.open({"customer_id": cid, "category": "repair", "subject": "x"},
                             opened_at=T0).id
    out = cli_runner.invoke("cases", "show", str(case_id)).stdout
    assert "2024-05-01 00:00" in out and "08:00" not in out


def test_list(cli_runner: RecrmCliRunner, crm: CRM, cid: int) -> None:
    other = crm.customers.add({"mobile": "13912345678"}).customer.id
    now = dt.datetime.now(dt.UTC)
    late = crm.cases.open({"customer_id": cid, "category": "repair", "subject": "漏水",
                           "priority": "urgent", "project": "XL2", "assignee": "张工"},
                          opened_at=T0).id
    fresh = crm.cases.open({"customer_id": cid, "category": "inquiry", "subject": "车位",
                            "project": "XL2", "department": "销售部"}, opened_at=now).id
    done = crm.cases.open({"customer_id": other, "category": "repair", "subject": "门锁",
                           "project": "HY1", "assignee": "张工"}, opened_at=T0).id
    crm.cases.resolve(done)

    def ids(*args: str) -> list[int]:
        return [c["id"] for c in _ok_json(cli_runner.invoke("cases", "list", *args, "--json"))]

    assert ids() == [late, done, fresh]
    assert ids("--overdue") == [late]
    assert ids("--status", "resolved") == [done]
    assert ids("--status", "OPEN") == [late, fresh]
    assert ids("--customer", str(other)) == [done]
    assert ids("--project", "XL2") == [late, fresh]
    assert ids("--assignee", "张工") == [late, done]
    assert ids("--department", "销售部") == [fresh]
    assert ids("--limit", "1") == [late]
    assert ids("--overdue", "--project", "HY1") == []
    human = cli_runner.invoke("cases", "list", "--overdue")
    assert human.exit_code == 0 and human.stderr == ""
    assert "OVERDUE" in human.stdout and "张工" in human.stdout
    assert "销售部" not in human.stdout  # the fresh case is not overdue


def test_list_errors(cli_runner: RecrmCliRunner, cid: int) -> None:
    _error(cli_runner.invoke("cases", "list", "--status", "pending"), 2, "--status")
    _error(cli_runner.invoke("cases", "list", "--limit", "0"), 2, "--limit")
    _error(cli_runner.invoke("cases", "list", "--project", "nope"), 1, "no such project 'nope'")
    _error(cli_runner.invoke("cases", "list", "--customer", "999", "--json"), 1,
           "no customer 999")
