"""``recrm member ...``: every command with --json (one compact line) and its error
exits (1 refused or not found, 2 usage)."""

from __future__ import annotations

import json

import pytest
from membership_helpers import T0, club, customer, owner

from recrm_core import CRM, NotFound
from recrm_core.testing import CliResult, RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("membership")


def ok(result: CliResult) -> object:
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\n")
    parsed = result.json()
    # compact: exactly what a separator-free dump of the same document gives
    assert json.dumps(parsed, ensure_ascii=False, separators=(",", ":")) == result.stdout[:-1]
    return parsed


def failed(result: CliResult, code: int, message: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_enroll_show_leave(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    c = customer(crm, "13812345678", name="王伟")
    member = ok(cli_runner.invoke("member", "enroll", str(c.id), "--note", "walk-in",
                                  "--actor", "liu.yang", "--json"))
    assert isinstance(member, dict)
    assert (member["number"], member["status"], member["tier"]) == ("WK00000001", "active",
                                                                    "普通")
    failed(cli_runner.invoke("member", "enroll", str(c.id), "--json"), 1, "already a member")
    failed(cli_runner.invoke("member", "enroll", "999"), 1, "no customer 999")
    failed(cli_runner.invoke("member", "enroll", "abc"), 2, "not a valid integer")
    view = ok(cli_runner.invoke("member", "show", str(c.id), "--json"))
    assert isinstance(view, dict)
    assert view["member"]["number"] == "WK00000001"
    assert view["events"][0]["actor_staff"] == "liu.yang"
    human = cli_runner.invoke("member", "show", str(c.id))
    assert human.exit_code == 0 and "WK00000001" in human.stdout
    left = ok(cli_runner.invoke("member", "leave", str(c.id), "--reason", "搬家", "--json"))
    assert isinstance(left, dict) and left["status"] == "left"
    failed(cli_runner.invoke("member", "leave", str(c.id)), 1, "has left")
    other = customer(crm, "13912345678")
    failed(cli_runner.invoke("member", "show", str(other.id), "--json"), 1, "not a member")
    rejoined = ok(cli_runner.invoke("member", "enroll", str(c.id), "--json"))
    assert isinstance(rejoined, dict) and rejoined["number"] == "WK00000001"


def test_earn_redeem_adjust_points(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    c = owner(crm, "13812345678")
    cid = str(c.id)
    award = ok(cli_runner.invoke("member", "earn", cid, "--kind", "event", "--ref", "中秋家宴",
                                 "--json"))
    assert isinstance(award, dict)
    assert (award["awarded"], award["balance"], award["entry"]["points"]) == (True, 50, 50)
    again = ok(cli_runner.invoke("member", "earn", cid, "--kind", "event", "--ref", "中秋家宴",
                                 "--json"))
    assert isinstance(again, dict) and (again["awarded"], again["balance"]) == (False, 50)
    ok(cli_runner.invoke("member", "earn", cid, "--kind", "gift", "--ref", "g1",
                         "--points", "450", "--json"))
    failed(cli_runner.invoke("member", "earn", cid, "--kind", "gift", "--ref", "g2"), 2,
           "no earn amount for 'gift'")
    failed(cli_runner.invoke("member", "earn", cid, "--kind", "event"), 2, "--ref")
    failed(cli_runner.invoke("member", "earn", cid, "--kind", "gift", "--ref", "g3",
                             "--points", "-4"), 2, "positive")
    redeemed = ok(cli_runner.invoke("member", "redeem", cid, "--points", "300", "--ref", "O-1",
                                    "--json"))
    assert isinstance(redeemed, dict) and (redeemed["redeemed"], redeemed["balance"]) == (
        True, 200,
    )
    failed(cli_runner.invoke("member", "redeem", cid, "--points", "201", "--json"), 1,
           "has 200 points; cannot redeem 201")
    failed(cli_runner.invoke("member", "redeem", cid, "--points", "0"), 2, "positive")
    failed(cli_runner.invoke("member", "redeem", cid), 2, "--points")
    adjusted = ok(cli_runner.invoke("member", "adjust", cid, "--points", "-50", "--reason",
                                    "误发", "--actor", "kf.wangli", "--json"))
    assert isinstance(adjusted, dict)
    assert (adjusted["points"], adjusted["actor_staff"]) == (-50, "kf.wangli")
    failed(cli_runner.invoke("member", "adjust", cid, "--points", "10", "--reason", "x"), 2,
           "--actor")
    failed(cli_runner.invoke("member", "adjust", cid, "--points", "-151", "--reason", "x",
                             "--actor", "kf"), 1, "cannot deduct 151")
    points = ok(cli_runner.invoke("member", "points", cid, "--json"))
    assert isinstance(points, dict)
    assert points["balance"]["balance"] == 150
    assert [e["points"] for e in points["ledger"]] == [50, 450, -300, -50]
    human = cli_runner.invoke("member", "points", cid)
    assert human.exit_code == 0 and "150" in human.stdout
    failed(cli_runner.invoke("member", "points"), 2, "give a CUSTOMER_ID")


def test_points_expire(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    c = owner(crm, "13812345678")
    club(crm).earn(c.id, "gift", "old", points=100, occurred_at=T0)
    result = ok(cli_runner.invoke("member", "points", "--expire", "--now", "2025-02-01", "--yes",
                                  "--json"))
    assert isinstance(result, dict)
    assert (result["members"], result["points"]) == (1, 100)
    assert result["now"] == "2025-01-31T16:00:00Z"  # midnight in Shanghai
    again = ok(cli_runner.invoke("member", "points", str(c.id), "--expire", "--json"))
    assert isinstance(again, dict) and again["points"] == 0
    failed(cli_runner.invoke("member", "points", "--expire", "--now", "soon"), 2, "--now")
    failed(cli_runner.invoke("member", "points", str(c.id), "--now", "2025-01-01"), 2,
           "--now goes with --expire")
    human = cli_runner.invoke("member", "points", "--expire")
    assert human.exit_code == 0 and "expired 0 points" in human.stderr


def test_refer_tiers_report(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    a = owner(crm, "13812345678", name="王伟")
    friend = customer(crm, "13912345678")
    referral = ok(cli_runner.invoke("member", "refer", str(a.id), str(friend.id), "--project",
                                    "XL2", "--json"))
    assert isinstance(referral, dict) and referral["status"] == "pending"
    failed(cli_runner.invoke("member", "refer", str(a.id), str(a.id), "--project", "XL2"), 1,
           "cannot refer themselves")
    failed(cli_runner.invoke("member", "refer", str(a.id), str(friend.id)), 2, "--project")
    failed(cli_runner.invoke("member", "refer", str(a.id), str(friend.id), "--project", " "),
           2, "project is empty")
    crm.customers.set_stage(friend.id, "buyer", "XL2")
    tiers = ok(cli_runner.invoke("member", "tiers", "--json"))
    assert tiers == [
        {"name": "普通", "min_points": None, "min_contracts": None, "members": 1},
        {"name": "银卡", "min_points": 5000, "min_contracts": 2, "members": 0},
        {"name": "金卡", "min_points": 20000, "min_contracts": 3, "members": 0},
    ]
    report = ok(cli_runner.invoke("member", "report", "--json"))
    assert isinstance(report, dict)
    assert report["referrals"] == {"made": 1, "converted": 1, "conversion_rate": 1.0}
    assert report["referrals_by_member"][0]["name"] == "王伟"
    assert report["points"]["issued"] == 500
    crm.projects.add({"code": "YH1", "name": "御湖一期"})
    by_project = ok(cli_runner.invoke("member", "report", "--project", "YH1", "--json"))
    assert isinstance(by_project, dict) and by_project["referrals"]["made"] == 0
    for args in (("tiers",), ("report",)):
        human = cli_runner.invoke("member", *args)
        assert human.exit_code == 0 and "普通" in human.stdout


def test_help_lists_every_command(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    result = cli_runner.invoke("member", "--help")
    assert result.exit_code == 0
    for name in ("enroll", "leave", "show", "points", "earn", "redeem", "adjust", "refer",
                 "tiers", "report"):
        assert name in result.stdout


def test_report_for_an_unknown_project_exits_1(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    # It used to print an empty report, as if the mistyped project had no referrals.
    crm.projects.add({"code": "XL2", "name": "星珑二期"})
    failed(cli_runner.invoke("member", "report", "--project", "XL3", "--json"), 1,
           "no such project 'XL3' (known: XL2)")
    failed(cli_runner.invoke("member", "report", "--project", "XL3"), 1, "no such project")
    with pytest.raises(NotFound, match="no such project 'XL3'"):
        club(crm).referrals(project="XL3")


def test_a_renamed_project_keeps_its_referrals(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    a = owner(crm, "13812345678", name="王伟")
    friend = customer(crm, "13912345678")
    ok(cli_runner.invoke("member", "refer", str(a.id), str(friend.id), "--project", "XL2",
                         "--json"))
    ok(cli_runner.invoke("projects", "rename", "XL2", "XL2B", "--json"))
    # The referred customer signs at the project under its new code: the referral converts.
    crm.customers.set_stage(friend.id, "buyer", "XL2B")
    report = ok(cli_runner.invoke("member", "report", "--project", "XL2B", "--json"))
    assert isinstance(report, dict)
    assert report["referrals"] == {"made": 1, "converted": 1, "conversion_rate": 1.0}
    assert [r.project for r in club(crm).referrals()] == ["XL2B"]


@pytest.mark.recrm_settings({"auto_create_projects": False})
def test_earn_for_an_unknown_project_exits_1(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    # It used to award the points against a project no registry holds, which
    # `member report --project` then called unknown (issue 9: one convention).
    crm.projects.add({"code": "XL2", "name": "星珑二期"})
    c = owner(crm, "13812345678")
    before = club(crm).balance(c.id).balance
    failed(cli_runner.invoke("member", "earn", str(c.id), "--kind", "event", "--ref", "e1",
                             "--points", "5", "--project", "XL3"), 1,
           "no such project 'XL3' (known: XL2)")
    assert club(crm).balance(c.id).balance == before
    with pytest.raises(NotFound, match="no such project 'XL3'"):
        club(crm).earn(c.id, "event", "e1", points=5, project="XL3")
    award = ok(cli_runner.invoke("member", "earn", str(c.id), "--kind", "event", "--ref",
                                 "e1", "--points", "5", "--project", " XL2 ", "--json"))
    assert isinstance(award, dict) and award["entry"]["project"] == "XL2"
