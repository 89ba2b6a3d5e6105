"""Who sees what in surveys: every ``recrm survey`` command and every read of the
plugin's API follows ``crm.access`` for the actor (``recrm --as ROLE[:STAFF_ID]``).

- partners are refused invitations and answers (details of a customer) and every
  write; they read surveys, scores and drivers (aggregates, with no customer or free
  text in them) and never get a full mobile;
- analysts read the same aggregates and the invitations without link tokens, units
  (a flat number with the customer is a home address) or a transport's words, and
  answers without the text ones; they change nothing;
- only an admin sends (a message needs the recipient's address in full), and each
  send run appends one ``bulk_send`` audit entry with counts and no personal data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from recrm_survey import answers, due, invitations, list_surveys, scores, send_due
from survey_testkit import Capture, ago, answered, checkin_values, customer, owner

from recrm_core import CRM, HIDDEN, Actor, DeliveryResult, Message, Refused, hookimpl
from recrm_core.testing import CliResult, RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("survey")

MOBILE = "13812345678"
FULL_MOBILES = ("13812345678", "+8613812345678", "13912345678", "+8613912345678")
#: a text answer: free text, which may hold anything (here: a mobile)
COMMENT = f"卫生间漏水，请打我电话{MOBILE}"
#: the flat handed over to the waiting owner: with the customer, a home address
UNIT = "4-2302"

PARTNER = Actor(staff_id="li.agency", role="partner")
ANALYST = Actor(staff_id="an.bi", role="analyst")
SALES = Actor(staff_id="liu", role="sales")

MOVE_IN = """
key = "move_in"
title = "入住体验"

[[questions]]
id = "nps"
type = "nps"
text = "推荐意愿"
role = "nps"
"""


@dataclass
class Seeded:
    #: an owner whose 3-month check-in is due (not sent, not answered)
    waiting: int
    #: a customer who answered with a low NPS and a comment
    answered: int
    invitation: int


def seeded(crm: CRM) -> Seeded:
    waiting = customer(crm, MOBILE, name="王伟")
    crm.customers.set_stage(waiting, "buyer", "YH1", unit=UNIT, amount=3_000_000,
                            occurred_at=ago(200))
    crm.customers.set_stage(waiting, "owner", "YH1", unit=UNIT, occurred_at=ago(100))
    other = customer(crm, "13912345678", name="李娜")
    done = answered(crm, other, ago(2), checkin_values(3, 2, 2, 2, comment=COMMENT,
                                                       issues=["渗漏"]))
    return Seeded(waiting=waiting, answered=other, invitation=done.invitation_id)


def as_role(cli_runner: RecrmCliRunner, who: str, *args: str) -> CliResult:
    return cli_runner.invoke("--as", who, "survey", *args)


def refused(result: CliResult, role: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"role {role} may not" in lines[0], result.stderr


def leaks_nothing(result: CliResult) -> None:
    """No full mobile, no name, no unit, no free text in anything the command
    printed."""
    printed = result.stdout + result.stderr
    for secret in (*FULL_MOBILES, "王伟", "李娜", UNIT, "卫生间漏水"):
        assert secret not in printed, secret


def every_command(s: Seeded, definition: Path) -> list[list[str]]:
    """Every ``recrm survey`` command, with and without --json."""
    commands = [
        ["list"], ["scores"], ["scores", "--period", "all"], ["drivers"],
        ["due"], ["send"], ["trigger", "--yearly"],
        ["trigger", "--customer", str(s.waiting), "--survey", "csat"],
        ["answer", str(s.invitation), "-a", "nps=9"], ["define", str(definition)],
    ]
    return commands + [[*command, "--json"] for command in commands]


# -- partners ---------------------------------------------------------------------------------


def test_a_partner_never_gets_a_full_mobile_from_any_survey_command(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    s = seeded(crm)
    definition = tmp_path / "move_in.toml"
    definition.write_text(MOVE_IN, encoding="utf-8")
    aggregates = {"list", "scores", "drivers"}
    for command in every_command(s, definition):
        result = as_role(cli_runner, "partner:li.agency", *command)
        leaks_nothing(result)
        if command[0] in aggregates:
            assert result.exit_code == 0, (command, result.stderr)
        else:
            refused(result, "partner")
    # nothing was sent, invited, answered or defined on their behalf
    assert [i.status for i in invitations(crm, customer_id=s.waiting)].count("pending") == 4
    assert len(invitations(crm)) == 5
    assert "move_in" not in {i.key for i in list_surveys(crm)}
    assert crm.audit.entries(action="bulk_send") == []


def test_a_partner_reads_scores_without_customers_or_text(
    crm: CRM, cli_runner: RecrmCliRunner
) -> None:
    seeded(crm)
    result = as_role(cli_runner, "partner:li.agency", "scores", "--period", "all", "--json")
    assert result.exit_code == 0, result.stderr
    [row] = result.json()
    assert (row["survey"], row["answers"], row["nps"], row["detractors"]) == (
        "handover_checkin", 1, -100, 1)
    assert "customer" not in json.dumps(row)
    leaks_nothing(result)
    drivers = as_role(cli_runner, "partner:li.agency", "drivers", "--json")
    assert drivers.exit_code == 0 and drivers.json() == []  # no factor was rated
    surveys = as_role(cli_runner, "partner:li.agency", "list", "--json")
    assert {x["key"]: x["answers"] for x in surveys.json()}["handover_checkin"] == 1


def test_the_service_refuses_partners_invitations_and_answers(crm: CRM) -> None:
    s = seeded(crm)
    reads: list[Callable[[], object]] = [
        lambda: invitations(crm, actor=PARTNER), lambda: due(crm, actor=PARTNER),
        lambda: answers(crm, customer_id=s.answered, actor=PARTNER),
        lambda: send_due(crm, actor=PARTNER),
    ]
    for read in reads:
        with pytest.raises(Refused, match="role partner may not"):
            read()
    assert [x.answers for x in scores(crm, period="all", actor=PARTNER)] == [1]


# -- analysts ---------------------------------------------------------------------------------


def test_an_analyst_sees_invitations_without_tokens(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    s = seeded(crm)
    listed = as_role(cli_runner, "analyst:an.bi", "due", "--json")
    assert listed.exit_code == 0, listed.stderr
    [item] = listed.json()
    assert (item["customer_id"], item["survey"], item["token"], item["unit"]) == (
        s.waiting, "handover_checkin", HIDDEN, HIDDEN)
    assert item["project"] == "YH1"  # the project is no address; the unit is
    real = due(crm)[0].token
    assert real != HIDDEN and real not in listed.stdout
    leaks_nothing(listed)
    table = as_role(cli_runner, "analyst:an.bi", "due")
    assert table.exit_code == 0 and "handover_checkin" in table.stdout
    leaks_nothing(table)
    assert {i.unit for i in invitations(crm, customer_id=s.waiting, actor=ANALYST)} == {HIDDEN}
    assert {i.unit for i in due(crm, actor=ANALYST)} == {HIDDEN}
    for command in (["send"], ["trigger", "--yearly"],
                    ["answer", str(s.invitation), "-a", "nps=9"]):
        refused(as_role(cli_runner, "analyst:an.bi", *command), "analyst")
    scored = as_role(cli_runner, "analyst:an.bi", "scores", "--json")
    assert scored.exit_code == 0 and scored.json()[0]["nps"] == -100
    leaks_nothing(scored)


def test_an_analyst_reads_answers_without_free_text(crm: CRM) -> None:
    s = seeded(crm)
    [seen] = answers(crm, customer_id=s.answered, actor=ANALYST)
    assert seen.answers == {"nps": 3, "overall": 2, "repurchase": 2, "referral": 2,
                            "issues": ["渗漏"], "comment": HIDDEN}
    assert seen.case_id is not None
    # staff read what the customer wrote; so does the integrator's own code
    [by_sales] = answers(crm, customer_id=s.answered, actor=SALES)
    assert by_sales.answers["comment"] == COMMENT
    assert answers(crm)[0].answers["comment"] == COMMENT


def test_an_analyst_never_reads_a_transports_words(
    crm: CRM, register_plugin: Callable[..., str]
) -> None:
    s = seeded(crm)

    class Refusing:
        @hookimpl
        def recrm_deliver_message(self, message: Message) -> DeliveryResult:
            return DeliveryResult(transport="gw", ok=False, detail=f"{message.to} is blocked")

    register_plugin(Refusing(), name="refusing")
    assert send_due(crm).failed == 1
    [failed] = invitations(crm, status="failed")
    assert failed.customer_id == s.waiting and failed.detail == "+8613812345678 is blocked"
    [hidden] = invitations(crm, status="failed", actor=ANALYST)
    assert (hidden.detail, hidden.token) == (HIDDEN, HIDDEN)
    [staff] = invitations(crm, status="failed", actor=SALES)
    assert staff.detail == failed.detail and staff.token == failed.token
    assert (failed.unit, hidden.unit, staff.unit) == (UNIT, HIDDEN, UNIT)


# -- staff and admins -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["manager:zhao", "sales:liu", "service:kf.wu"])
def test_only_an_admin_sends_but_staff_work_with_invitations(
    crm: CRM, cli_runner: RecrmCliRunner, who: str
) -> None:
    s = seeded(crm)
    role = who.partition(":")[0]
    refused(as_role(cli_runner, who, "send"), role)
    listed = as_role(cli_runner, who, "due", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert [i["token"] for i in listed.json()] == [i.token for i in due(crm)]
    invited = as_role(cli_runner, who, "trigger", "--customer", str(s.answered),
                      "--survey", "csat", "--json")
    assert invited.exit_code == 0, invited.stderr
    recorded = as_role(cli_runner, who, "answer", str(invited.json()["id"]),
                       "-a", "satisfaction=5", "-a", "resolved=已解决", "--json")
    assert recorded.exit_code == 0, recorded.stderr
    assert crm.audit.entries(action="bulk_send") == []


def test_an_admin_sees_everything_and_a_send_is_audited(
    crm: CRM, cli_runner: RecrmCliRunner, register_plugin: Callable[..., str]
) -> None:
    capture = Capture()
    register_plugin(capture)
    s = seeded(crm)
    listed = as_role(cli_runner, "admin:ops", "due", "--json")
    assert [i["token"] for i in listed.json()] == [i.token for i in due(crm)]
    assert [i["unit"] for i in listed.json()] == [UNIT]
    admin = Actor(staff_id="ops", role="admin")
    assert {i.unit for i in invitations(crm, customer_id=s.waiting, actor=admin)} == {UNIT}
    sent = as_role(cli_runner, "admin:ops", "send", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert (sent.json()["sent"], sent.json()["failed"]) == (1, 0)
    assert [m.to for m in capture.messages] == ["+8613812345678"]
    [entry] = crm.audit.entries(action="bulk_send")
    assert (entry.actor_staff, entry.actor_role, entry.channel, entry.customer_id) == (
        "ops", "admin", "cli", None)
    assert entry.details["surveys"] == ["handover_checkin"]
    assert (entry.details["sent"], entry.details["failed"]) == (1, 0)
    assert entry.details["by_survey"] == {"handover_checkin": {"sent": 1, "failed": 0}}
    details = json.dumps(entry.details, ensure_ascii=False)
    for secret in (*FULL_MOBILES, "王伟", capture.messages[0].body):
        assert secret not in details
    # a run that sends nothing records nothing
    again = as_role(cli_runner, "admin:ops", "send", "--json")
    assert again.exit_code == 0 and again.json()["sent"] == 0
    assert len(crm.audit.entries(action="bulk_send")) == 1
    # the admin reads the text answers
    [seen] = answers(crm, customer_id=s.answered, actor=Actor(staff_id="ops", role="admin"))
    assert seen.answers["comment"] == COMMENT


def test_a_bulk_send_counts_failures_and_records_the_sdk(
    crm: CRM, register_plugin: Callable[..., str]
) -> None:
    seeded(crm)
    second = owner(crm, "13912345679", handed_over=ago(100), name="张三")
    blocked = {second}

    class Gateway:
        @hookimpl
        def recrm_deliver_message(self, message: Message) -> DeliveryResult:
            if message.customer_id in blocked:
                return DeliveryResult(transport="gw", ok=False, detail="blocked")
            return DeliveryResult(transport="gw")

    register_plugin(Gateway(), name="gateway")
    result = send_due(crm)
    assert (result.sent, result.failed) == (1, 1)
    [entry] = crm.audit.entries(action="bulk_send")
    assert (entry.actor_role, entry.channel, entry.actor_staff) == ("sdk", "sdk", None)
    assert (entry.details["sent"], entry.details["failed"], entry.details["surveys"]) == (
        1, 1, ["handover_checkin"])
    assert "13912345679" not in json.dumps(entry.details)
