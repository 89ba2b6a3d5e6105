"""Who sees what in the club: every ``recrm member`` command and every read of the
service follows ``crm.access`` for the actor (``recrm --as ROLE[:STAFF_ID]``).

- partners (agencies) are refused every member detail, and never get a full mobile;
- analysts read details and reports without free text (ledger reasons, event
  notes) or award keys (a contract's names the unit: with the customer, a home
  address), with the referrers' names masked;
- staff see what their role allows (names masked unless they may see the customer
  in full; a manager's masked until they disclose); admins see everything;
- partners and analysts change nothing; writes record the actor and its channel;
- an expiry run is recorded in the audit log as ``membership.expire``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from membership_helpers import club, customer, sign

from recrm_core import CRM, HIDDEN, Actor, Refused
from recrm_core.testing import CliResult, RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("membership")

MOBILE = "13812345678"
FULL_MOBILES = ("13812345678", "+8613812345678", "13912345678", "+8613912345678")
#: free text about the person: written by staff, read back by no partner or analyst
REASON = "腰椎手术后送按摩椅"
NOTE = f"王伟的朋友，电话{MOBILE}"
LONG_AGO = dt.datetime(2020, 1, 15, 4, 0, tzinfo=dt.UTC)
#: a flat number: with the customer, a home address (a contract's award key names it)
UNIT = "4-2302"

PARTNER = Actor(staff_id="li.agency", role="partner")
ANALYST = Actor(staff_id="an.bi", role="analyst")


@dataclass
class Club:
    referrer: int
    friend: int


def seeded(crm: CRM) -> Club:
    """王伟 (owned by the consultant liu at XL2) is a member with an award whose reason
    is free text and points long expired; 李娜 was referred by him and signed; a
    third member joined with a note that quotes a mobile."""
    referrer = customer(crm, MOBILE, name="王伟", project="XL2", owner_staff="liu")
    sign(crm, referrer.id, "XL2", unit="1-1-101")
    crm.customers.set_stage(referrer.id, "owner", "XL2", unit="1-1-101")  # enrols him
    friend = customer(crm, "13912345678", name="李娜", project="XL3")
    svc = club(crm)
    svc.earn(referrer.id, "gift", "chair", points=300, reason=REASON)
    svc.earn(referrer.id, "gift", "old", points=70, reason="旧系统积分", occurred_at=LONG_AGO)
    svc.refer(referrer.id, friend.id, "XL3")
    sign(crm, friend.id, "XL3")
    svc.enroll(friend.id, note=NOTE)
    return Club(referrer=referrer.id, friend=friend.id)


def buys_a_flat(crm: CRM, member: int) -> str:
    """The member signs for flat UNIT at YH1 (an award keyed by the unit); the key."""
    crm.customers.set_stage(member, "buyer", "YH1", unit=UNIT, amount=3_000_000)
    return f"contract:{member}:YH1/{UNIT}"


def as_role(cli_runner: RecrmCliRunner, who: str, *args: str) -> CliResult:
    return cli_runner.invoke("--as", who, "member", *args)


def refused(result: CliResult, role: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"role {role} may not" in lines[0], result.stderr


def no_full_mobile(result: CliResult) -> None:
    for mobile in FULL_MOBILES:
        assert mobile not in result.stdout and mobile not in result.stderr, mobile


def every_command(c: Club) -> list[list[str]]:
    """Every ``recrm member`` command, reads and writes, with and without --json."""
    cid, fid = str(c.referrer), str(c.friend)
    commands = [
        ["show", cid], ["show", fid], ["points", cid], ["points", "--expire", "--dry-run"],
        ["points", cid, "--expire", "--dry-run"], ["points", "--expire", "--yes"],
        ["tiers"], ["report"], ["report", "--project", "XL3"],
        ["enroll", cid], ["leave", fid, "--reason", "x"],
        ["earn", cid, "--kind", "gift", "--ref", "p1", "--points", "5"],
        ["redeem", cid, "--points", "1"],
        ["adjust", cid, "--points", "1", "--reason", "x", "--actor", "li.agency"],
        ["refer", fid, cid, "--project", "XL2"],
    ]
    return commands + [[*command, "--json"] for command in commands]


# -- partners ---------------------------------------------------------------------------------


def test_a_partner_never_gets_a_full_mobile_from_any_member_command(
    crm: CRM, cli_runner: RecrmCliRunner
) -> None:
    c = seeded(crm)
    for command in every_command(c):
        result = as_role(cli_runner, "partner:li.agency", *command)
        no_full_mobile(result)
        assert NOTE not in result.stdout + result.stderr
        assert REASON not in result.stdout + result.stderr
        if command[0] == "tiers":
            assert result.exit_code == 0, result.stderr
        else:
            refused(result, "partner")
    # nothing changed on their behalf
    assert club(crm).balance(c.referrer).balance == 870


def test_a_partner_sees_the_tiers_only(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    seeded(crm)
    tiers = as_role(cli_runner, "partner:li.agency", "tiers", "--json")
    assert tiers.exit_code == 0, tiers.stderr
    assert {t["name"]: t["members"] for t in tiers.json()} == {"普通": 2, "银卡": 0, "金卡": 0}
    shown = json.dumps(tiers.json(), ensure_ascii=False)
    assert "王" not in shown and "李" not in shown
    refused(as_role(cli_runner, "partner:li.agency", "report"), "partner")
    refused(as_role(cli_runner, "partner:li.agency", "show", "1"), "partner")


def test_the_service_refuses_partners_every_detail(crm: CRM) -> None:
    c = seeded(crm)
    svc = club(crm)
    reads: list[Callable[[], object]] = [
        lambda: svc.get(c.referrer, actor=PARTNER),
        lambda: svc.show(c.referrer, actor=PARTNER),
        lambda: svc.balance(c.referrer, actor=PARTNER),
        lambda: svc.ledger(c.referrer, actor=PARTNER),
        lambda: svc.referrals(actor=PARTNER),
        lambda: svc.report(actor=PARTNER),
        lambda: svc.expire(dry_run=True, actor=PARTNER),
    ]
    for read in reads:
        with pytest.raises(Refused, match="role partner may not"):
            read()
    # refused before anything is looked up: an unknown customer says the same
    with pytest.raises(Refused, match="role partner may not"):
        svc.show(999, actor=PARTNER)
    assert sum(t.members for t in svc.tiers(actor=PARTNER)) == 2


# -- analysts ---------------------------------------------------------------------------------


def test_an_analyst_reads_details_without_free_text(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    c = seeded(crm)
    buys_a_flat(crm, c.friend)
    view = as_role(cli_runner, "analyst:an.bi", "show", str(c.referrer), "--json")
    assert view.exit_code == 0, view.stderr
    data = view.json()
    assert data["balance"]["balance"] == 870
    assert [e["points"] for e in data["ledger"]] == [300, 70, 500]
    assert {e["reason"] for e in data["ledger"]} == {HIDDEN}
    assert {e["event_key"] for e in data["ledger"]} == {HIDDEN}  # a ref is free text
    assert {e["note"] for e in data["events"] if e["note"] is not None} == {HIDDEN}
    assert REASON not in view.stdout
    friend = as_role(cli_runner, "analyst:an.bi", "show", str(c.friend), "--json")
    assert friend.exit_code == 0, friend.stderr
    notes = [e["note"] for e in friend.json()["events"]]
    assert notes == [HIDDEN] and NOTE not in friend.stdout
    # the contract's award key names the flat: hidden like the reason
    [award] = friend.json()["ledger"]
    assert (award["kind"], award["points"], award["event_key"]) == ("earn", 1000, HIDDEN)
    assert UNIT not in friend.stdout
    no_full_mobile(friend)
    human = as_role(cli_runner, "analyst:an.bi", "show", str(c.friend))
    assert human.exit_code == 0 and HIDDEN in human.stdout and NOTE not in human.stdout
    assert UNIT not in human.stdout
    for args in (["points", str(c.friend)], ["points", str(c.friend), "--json"]):
        shown = as_role(cli_runner, "analyst:an.bi", *args)
        assert shown.exit_code == 0 and UNIT not in shown.stdout, (args, shown.stdout)
    points = as_role(cli_runner, "analyst:an.bi", "points", str(c.referrer))
    assert points.exit_code == 0, points.stderr
    assert "870 points" in points.stdout
    assert REASON not in points.stdout and HIDDEN in points.stdout


def test_an_analyst_sees_reports_with_masked_names(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    c = seeded(crm)
    report = as_role(cli_runner, "analyst:an.bi", "report", "--json")
    assert report.exit_code == 0, report.stderr
    data = report.json()
    assert data["members"] == 2 and data["referrals"]["converted"] == 1
    [line] = data["referrals_by_member"]
    assert (line["customer_id"], line["name"], line["converted"]) == (c.referrer, "王*", 1)
    human = as_role(cli_runner, "analyst:an.bi", "report")
    assert human.exit_code == 0 and "王*" in human.stdout and "王伟" not in human.stdout
    no_full_mobile(human)
    tiers = as_role(cli_runner, "analyst:an.bi", "tiers", "--json")
    assert tiers.exit_code == 0 and sum(t["members"] for t in tiers.json()) == 2


def test_an_analyst_previews_an_expiry_but_changes_nothing(
    crm: CRM, cli_runner: RecrmCliRunner
) -> None:
    c = seeded(crm)
    preview = as_role(cli_runner, "analyst:an.bi", "points", "--expire", "--dry-run", "--json")
    assert preview.exit_code == 0, preview.stderr
    assert (preview.json()["points"], preview.json()["dry_run"]) == (70, True)
    refused(as_role(cli_runner, "analyst:an.bi", "points", "--expire", "--yes"), "analyst")
    for command in (["enroll", str(c.referrer)], ["redeem", str(c.referrer), "--points", "1"],
                    ["earn", str(c.referrer), "--kind", "gift", "--ref", "x", "--points", "1"],
                    ["refer", str(c.friend), str(c.referrer), "--project", "XL2"]):
        refused(as_role(cli_runner, "analyst:an.bi", *command), "analyst")
    assert club(crm).balance(c.referrer).balance == 870
    assert crm.audit.entries(action="membership.expire") == []
    with pytest.raises(Refused, match="role analyst may not change the club"):
        club(crm).earn(c.referrer, "gift", "y", points=1, actor=ANALYST)


def test_the_service_hides_free_text_from_analysts(crm: CRM) -> None:
    c = seeded(crm)
    key = buys_a_flat(crm, c.friend)
    svc = club(crm)
    assert {e.reason for e in svc.ledger(c.referrer, actor=ANALYST)} == {HIDDEN}
    assert {e.event_key for e in svc.ledger(c.referrer, actor=ANALYST)} == {HIDDEN}
    assert [e.event_key for e in svc.ledger(c.friend, actor=ANALYST)] == [HIDDEN]
    assert UNIT not in svc.show(c.friend, actor=ANALYST).model_dump_json()
    assert [e.note for e in svc.show(c.friend, actor=ANALYST).events] == [HIDDEN]
    assert svc.balance(c.referrer, actor=ANALYST).balance == 870
    assert [r.referrer_id for r in svc.referrals(actor=ANALYST)] == [c.referrer]
    assert [m.name for m in svc.report(actor=ANALYST).referrals_by_member] == ["王*"]
    # the integrator's own code (no actor) reads everything
    assert REASON in {e.reason for e in svc.ledger(c.referrer)}
    assert [e.event_key for e in svc.ledger(c.friend)] == [key]
    assert [e.note for e in svc.show(c.friend).events] == [NOTE]
    assert [m.name for m in svc.report().referrals_by_member] == ["王伟"]


def test_the_club_on_the_360_view_follows_the_reader(
    crm: CRM, cli_runner: RecrmCliRunner
) -> None:
    # The plugin's timeline entries (a ledger line's title carries its reason) reach
    # partners and analysts only as the core shows them: without free text.
    c = seeded(crm)
    for who in ("partner:li.agency", "analyst:an.bi"):
        view = cli_runner.invoke("--as", who, "customers", "show", str(c.referrer), "--json")
        assert view.exit_code == 0, view.stderr
        kinds = [e["kind"] for e in view.json()["timeline"]]
        assert "points_earn" in kinds and "member_enrol" in kinds
        assert REASON not in view.stdout and "owner at XL2" not in view.stdout
        no_full_mobile(view)
    admin = cli_runner.invoke("--as", "admin:boss", "customers", "show", str(c.referrer))
    assert admin.exit_code == 0 and REASON in admin.stdout


# -- staff and admins -------------------------------------------------------------------------


def test_an_admin_sees_everything(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    c = seeded(crm)
    key = buys_a_flat(crm, c.friend)
    view = as_role(cli_runner, "admin:boss", "show", str(c.referrer), "--json")
    assert view.exit_code == 0, view.stderr
    assert REASON in {e["reason"] for e in view.json()["ledger"]}
    assert f"gift:{c.referrer}:chair" in {e["event_key"] for e in view.json()["ledger"]}
    friend = as_role(cli_runner, "admin:boss", "show", str(c.friend))
    assert friend.exit_code == 0 and NOTE in friend.stdout  # free text, as written
    keyed = as_role(cli_runner, "admin:boss", "show", str(c.friend), "--json")
    assert [e["event_key"] for e in keyed.json()["ledger"]] == [key]  # the unit, as recorded
    assert UNIT in keyed.stdout
    report = as_role(cli_runner, "admin:boss", "report", "--json")
    assert [m["name"] for m in report.json()["referrals_by_member"]] == ["王伟"]
    points = as_role(cli_runner, "admin:boss", "points", str(c.referrer))
    assert points.exit_code == 0 and REASON in points.stdout


@pytest.mark.parametrize(("who", "name"), [
    ("sales:liu", "王伟"),       # owns 王伟 at XL2: in full
    ("sales:chen", "王*"),       # owns nobody
    ("manager:zhao", "王*"),     # masked until they disclose
    ("service:kf.wu", "王*"),    # no case of his
])
def test_staff_see_the_names_their_role_allows(
    crm: CRM, cli_runner: RecrmCliRunner, who: str, name: str
) -> None:
    c = seeded(crm)
    report = as_role(cli_runner, who, "report", "--json")
    assert report.exit_code == 0, report.stderr
    assert [m["name"] for m in report.json()["referrals_by_member"]] == [name]
    # staff read free text: a member's history is theirs to work with
    view = as_role(cli_runner, who, "show", str(c.referrer), "--json")
    assert view.exit_code == 0, view.stderr
    assert REASON in {e["reason"] for e in view.json()["ledger"]}
    no_full_mobile(report)


def test_writes_record_the_actor_of_as(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    c = seeded(crm)
    earned = as_role(cli_runner, "sales:liu", "earn", str(c.referrer), "--kind", "gift",
                     "--ref", "p9", "--points", "10", "--json")
    assert earned.exit_code == 0, earned.stderr
    assert earned.json()["entry"]["actor_staff"] == "liu"
    # a command's --actor names the staff id; --as the role
    adjusted = as_role(cli_runner, "service", "adjust", str(c.referrer), "--points", "-5",
                       "--reason", "误发", "--actor", "kf.wu", "--json")
    assert adjusted.exit_code == 0, adjusted.stderr
    assert adjusted.json()["actor_staff"] == "kf.wu"
    assert club(crm).balance(c.referrer).balance == 805  # the deduction expired the 70 first


# -- the audit log ----------------------------------------------------------------------------


def test_hook_recrm_register_audit_actions(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    assert "membership.expire" in crm.audit.actions()
    assert "points" in crm.audit.actions()["membership.expire"]
    c = seeded(crm)
    # a preview and a run that finds nothing record nothing
    club(crm).expire(dry_run=True)
    assert crm.audit.entries(action="membership.expire") == []
    ran = as_role(cli_runner, "admin:ops", "points", "--expire", "--yes", "--json")
    assert ran.exit_code == 0, ran.stderr
    assert (ran.json()["members"], ran.json()["points"]) == (1, 70)
    [entry] = crm.audit.entries(action="membership.expire")
    assert (entry.actor_staff, entry.actor_role, entry.channel, entry.customer_id) == (
        "ops", "admin", "cli", None)
    assert {k: entry.details[k] for k in ("scope", "members", "points", "entries")} == {
        "scope": "all", "members": 1, "points": 70, "entries": 1}
    details = json.dumps(entry.details, ensure_ascii=False)
    assert MOBILE not in details and "王" not in details and REASON not in details
    # a second run writes nothing off, and records nothing
    again = as_role(cli_runner, "admin:ops", "points", "--expire", "--yes", "--json")
    assert again.exit_code == 0 and again.json()["points"] == 0
    assert len(crm.audit.entries(action="membership.expire")) == 1
    # one member's expiry names the member; the SDK's own call is recorded as such
    svc = club(crm)
    svc.earn(c.friend, "gift", "old", points=20, occurred_at=LONG_AGO)
    assert svc.expire(customer_id=c.friend).points == 20
    first, second = crm.audit.entries(action="membership.expire")
    assert first.id == entry.id
    assert (second.actor_role, second.channel, second.customer_id) == ("sdk", "sdk", c.friend)
    assert (second.details["scope"], second.details["points"]) == ("member", 20)
    # and the audit command lists the plugin's action
    listed = cli_runner.invoke("audit", "list", "--action", "membership.expire", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert [e["id"] for e in listed.json()] == [first.id, second.id]
