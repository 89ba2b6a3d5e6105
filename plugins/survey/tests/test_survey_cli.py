"""``recrm survey ...``: every command, its --json line and its error exits."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from recrm_survey import invitations, invite
from survey_testkit import Capture, ago, answered, checkin_values, customer, owner, utc

from recrm_core import CRM
from recrm_core.testing import CliResult, RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("survey")

MOVE_IN = """
key = "move_in"
title = "入住体验"

[[questions]]
id = "nps"
type = "nps"
text = "推荐意愿"
role = "nps"

[[questions]]
id = "note"
type = "text"
text = "建议"
required = false
"""


def one_json_line(result: CliResult) -> Any:
    stdout = result.stdout
    assert result.exit_code == 0, result.stderr
    assert stdout.count("\n") == 1 and stdout.endswith("\n")
    return json.loads(stdout)


def fails(result: CliResult, code: int, message: str) -> None:
    assert result.exit_code == code
    assert result.stdout == ""
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert message in err, err


def test_the_plugin_is_installed_with_its_commands(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    listed = {p["name"]: p for p in one_json_line(cli_runner.invoke(
        "plugins", "list", "--json"))}
    assert listed["survey"]["error"] is None and listed["survey"]["version"] == "0.1.0"
    assert {"recrm_case_status_changed", "recrm_stages_changed", "recrm_timeline",
            "recrm_segment_fields", "recrm_customer_merged", "recrm_demo"} <= set(
        listed["survey"]["hooks"])
    help_text = cli_runner.invoke("survey", "--help").stdout
    for command in ("define", "list", "trigger", "due", "send", "answer", "scores", "drivers"):
        assert command in help_text


def test_define_and_list(crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    toml_file = tmp_path / "move_in.toml"
    toml_file.write_text(MOVE_IN, encoding="utf-8")
    assert one_json_line(cli_runner.invoke("survey", "define", str(toml_file), "--json")) == {
        "key": "move_in", "title": "入住体验", "questions": 2}
    json_file = tmp_path / "quick.json"
    json_file.write_text(json.dumps({"key": "quick", "title": "快速", "questions": [
        {"id": "q", "type": "rating", "text": "满意吗", "role": "overall_satisfaction"}]}),
        encoding="utf-8")
    human = cli_runner.invoke("survey", "define", str(json_file))
    assert human.exit_code == 0 and "survey quick defined" in human.stderr
    listed = one_json_line(cli_runner.invoke("survey", "list", "--json"))
    assert [(s["key"], s["source"]) for s in listed] == [
        ("csat", "builtin"), ("handover_checkin", "builtin"), ("move_in", "database"),
        ("quick", "database"), ("yearly", "builtin")]
    table = cli_runner.invoke("survey", "list")
    assert table.exit_code == 0 and "入住体验" in table.stdout


def test_define_errors(crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(MOVE_IN.replace('type = "nps"', 'type = "stars"'), encoding="utf-8")
    fails(cli_runner.invoke("survey", "define", str(bad), "--json"), 1,
          "questions.0.type: Input should be")
    broken = tmp_path / "broken.toml"
    broken.write_text("key = ", encoding="utf-8")
    fails(cli_runner.invoke("survey", "define", str(broken)), 2, "cannot read")
    fails(cli_runner.invoke("survey", "define", str(tmp_path / "missing.toml")), 2,
          "does not exist")
    builtin = tmp_path / "csat.toml"
    builtin.write_text(MOVE_IN.replace('key = "move_in"', 'key = "csat"'), encoding="utf-8")
    fails(cli_runner.invoke("survey", "define", str(builtin)), 1, "defined in builtin")
    listed = tmp_path / "list.json"
    listed.write_text("[]", encoding="utf-8")
    fails(cli_runner.invoke("survey", "define", str(listed)), 2, "one survey definition")


@pytest.mark.parametrize(("name", "text"), [("empty.toml", ""), ("comments.toml", "# to do\n"),
                                          ("empty.json", "{}")])
def test_define_of_a_file_holding_nothing_is_a_usage_error(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, name: str, text: str) -> None:
    """Found by a new user's probe: an empty definition file exited 1 ("title: Field
    required", as a definition the rules refuse); it names no survey at all, the wrong
    file was given: exit 2, as a file holding a list."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    fails(cli_runner.invoke("survey", "define", str(path)), 2,
          "does not hold one survey definition (it holds nothing)")


def test_trigger(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    owner(crm, "13812345678")
    owner(crm, "13912345678")
    first = one_json_line(cli_runner.invoke("survey", "trigger", "--yearly", "--json"))
    assert first == {"survey": "yearly", "invited": 2, "already": 0, "no_consent": 0}
    again = one_json_line(cli_runner.invoke("survey", "trigger", "--yearly", "--year",
                                            "2031", "--json"))
    assert again == {"survey": "yearly", "invited": 2, "already": 0, "no_consent": 0}
    assert one_json_line(cli_runner.invoke("survey", "trigger", "--yearly", "--year", "2031",
                                           "--json"))["already"] == 2
    cid = customer(crm, "13712345678")
    one = one_json_line(cli_runner.invoke("survey", "trigger", "--customer", str(cid),
                                          "--survey", "csat", "--project", "XL2", "--json"))
    assert (one["customer_id"], one["survey"], one["trigger"], one["project"]) == (
        cid, "csat", "manual", "XL2")
    human = cli_runner.invoke("survey", "trigger", "--yearly")
    assert human.exit_code == 0 and "invited 0, already invited 2" in human.stderr


def test_trigger_errors(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    fails(cli_runner.invoke("survey", "trigger"), 2, "exactly one of --yearly and --customer")
    fails(cli_runner.invoke("survey", "trigger", "--yearly", "--customer", "1"), 2,
          "exactly one")
    fails(cli_runner.invoke("survey", "trigger", "--customer", "1"), 2, "--customer needs")
    fails(cli_runner.invoke("survey", "trigger", "--yearly", "--project", "XL2"), 2,
          "--project goes with --customer")
    fails(cli_runner.invoke("survey", "trigger", "--customer", "1", "--survey", "csat",
                            "--year", "2025"), 2, "--year goes with --yearly")
    fails(cli_runner.invoke("survey", "trigger", "--customer", "42", "--survey", "csat"), 1,
          "42")
    fails(cli_runner.invoke("survey", "trigger", "--yearly", "--survey", "nope"), 1,
          "no survey 'nope'")
    fails(cli_runner.invoke("survey", "trigger", "--yearly", "--year", "1999"), 2, "1999")
    cid = customer(crm, "13812345678")
    crm.consent.withdraw(cid, "sms", "surveys")
    fails(cli_runner.invoke("survey", "trigger", "--customer", str(cid), "--survey", "csat"),
          1, "does not consent to surveys by sms")


def test_due_and_send(crm: CRM, cli_runner: RecrmCliRunner,
                      register_plugin: Callable[..., str]) -> None:
    capture = Capture()
    register_plugin(capture)
    owner(crm, "13812345678", handed_over=ago(100), name="王伟")
    listed = one_json_line(cli_runner.invoke("survey", "due", "--json"))
    assert [(i["survey"], i["months_after"], i["status"]) for i in listed] == [
        ("handover_checkin", 3, "pending")]
    table = cli_runner.invoke("survey", "due")
    assert table.exit_code == 0 and "XL2" in table.stdout and "sms" in table.stdout
    sent = one_json_line(cli_runner.invoke("survey", "send", "--json"))
    assert sent == {"sent": 1, "failed": 0, "cancelled": 0, "expired": 0, "skipped": 0}
    assert len(capture.messages) == 1
    assert one_json_line(cli_runner.invoke("survey", "due", "--json")) == []
    again = cli_runner.invoke("survey", "send")
    assert again.exit_code == 0 and "sent 0" in again.stderr and again.stdout == ""
    assert len(capture.messages) == 1
    fails(cli_runner.invoke("survey", "send", "--limit", "0"), 2, "--limit")
    fails(cli_runner.invoke("survey", "due", "--limit", "x"), 2, "--limit")


def test_answer(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    owner(crm, "13812345678", handed_over=ago(100))
    [inv] = [i for i in invitations(crm) if i.months_after == 3]
    result = one_json_line(cli_runner.invoke(
        "survey", "answer", str(inv.id), "-a", "nps=3", "-a", "overall=2",
        "--answers", '{"repurchase": 2, "referral": 2, "issues": ["渗漏", "噪音"]}',
        "--answer", "comment=卫生间漏水", "--json"))
    assert result["answers"] == {
        "nps": 3, "overall": 2, "repurchase": 2, "referral": 2, "issues": ["渗漏", "噪音"],
        "comment": "卫生间漏水"}
    case_id = result["case_id"]
    assert crm.cases.get(case_id).subject == "业主入住回访: NPS 3"
    fails(cli_runner.invoke("survey", "answer", str(inv.id), "-a", "nps=9", "--json"), 1,
          "was answered already")
    second = invite(crm, inv.customer_id, "csat", due_at=ago(1))
    human = cli_runner.invoke("survey", "answer", second.token, "-a", "satisfaction=5",
                              "-a", "resolved=已解决")
    assert human.exit_code == 0 and human.stdout == ""
    assert f"recorded for invitation {second.id}" in human.stderr


def test_answer_errors(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    cid = customer(crm, "13812345678")
    inv = invite(crm, cid, "handover_checkin", due_at=ago(1))
    fails(cli_runner.invoke("survey", "answer", str(inv.id), "-a", "nps=11", "-a", "overall=5",
                            "-a", "repurchase=5", "-a", "referral=5"), 1,
          "nps: '11' is not a whole number from 0 to 10")
    fails(cli_runner.invoke("survey", "answer", str(inv.id), "-a", "nps=9", "-a", "overall=5",
                            "-a", "repurchase=5", "-a", "referral=5", "-a", "issues=地震"), 1,
          "issues: unknown choice '地震'")
    fails(cli_runner.invoke("survey", "answer", str(inv.id), "-a", "nps=9"), 1,
          "overall: required question not answered")
    fails(cli_runner.invoke("survey", "answer", str(inv.id), "-a", "nps"), 2,
          "'nps' is not QUESTION=VALUE")
    fails(cli_runner.invoke("survey", "answer", str(inv.id)), 2, "give the answers")
    fails(cli_runner.invoke("survey", "answer", str(inv.id), "--answers", "{nope"), 2,
          "not JSON")
    fails(cli_runner.invoke("survey", "answer", str(inv.id), "--answers", "[1]"), 2,
          "must be a JSON object")
    fails(cli_runner.invoke("survey", "answer", "999", "-a", "nps=1"), 1,
          "no survey invitation '999'")
    assert [i.status for i in invitations(crm)] == ["pending"]


def test_scores_and_drivers(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    for i, (nps, overall, quality) in enumerate([(10, 5, 5), (9, 4, 4), (3, 2, 1)]):
        cid = customer(crm, f"1381234567{i}")
        answered(crm, cid, utc(2025, 4, 2 + i, 4),
                 checkin_values(nps, overall, overall, overall, quality=quality))
    [row] = one_json_line(cli_runner.invoke("survey", "scores", "--json"))
    assert (row["project"], row["period"], row["nps"], row["promoters"], row["detractors"],
            row["nps_answers"], row["csat"], row["satisfied"], row["csat_answers"]) == (
        "XL2", "2025-Q2", 33, 2, 1, 3, 66.7, 2, 3)
    months = one_json_line(cli_runner.invoke("survey", "scores", "--period", "month",
                                             "--survey", "handover_checkin", "--project",
                                             "XL2", "--since", "2025-04-03", "--json"))
    assert [(m["period"], m["answers"]) for m in months] == [("2025-04", 2)]
    table = cli_runner.invoke("survey", "scores")
    assert table.exit_code == 0
    for text in ("NPS", "CSAT", "L3", "+33", "66.7%", "2/0/1", "33.3%", "1/3"):
        assert text in table.stdout, text
    [driver] = one_json_line(cli_runner.invoke("survey", "drivers", "--json"))
    assert (driver["factor"], driver["n"]) == ("quality", 3) and driver["r"] > 0.9
    shown = cli_runner.invoke("survey", "drivers", "--project", "XL2")
    assert shown.exit_code == 0 and "quality" in shown.stdout
    fails(cli_runner.invoke("survey", "scores", "--period", "week"), 2, "--period")
    fails(cli_runner.invoke("survey", "scores", "--since", "yesterday"), 2, "--since")
    fails(cli_runner.invoke("survey", "drivers", "--since", "2025-05-01", "--until",
                            "2025-01-01", "--json"), 2,
          "--to: the period ends (2025-01-01) before it starts (2025-05-01)")


def test_scores_for_an_unknown_project_exit_1(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    # They used to print an empty table, as if the mistyped project had no answers.
    cid = customer(crm, "13812345670")
    answered(crm, cid, utc(2025, 4, 2, 4), checkin_values(10, 5, 5, 5, quality=5))
    for command in ("scores", "drivers"):
        fails(cli_runner.invoke("survey", command, "--project", "XL3", "--json"), 1,
              "no such project 'XL3' (known: XL2)")
        fails(cli_runner.invoke("survey", command, "--project", "XL3"), 1, "no such project")


def test_a_renamed_project_keeps_its_scores(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    cid = customer(crm, "13812345670")
    answered(crm, cid, utc(2025, 4, 2, 4), checkin_values(10, 5, 5, 5, quality=5))
    assert cli_runner.invoke("projects", "rename", "XL2", "星珑二期").exit_code == 0
    [row] = one_json_line(cli_runner.invoke("survey", "scores", "--project", "星珑二期",
                                            "--json"))
    assert (row["project"], row["answers"]) == ("星珑二期", 1)
    assert [i.project for i in invitations(crm)] == ["星珑二期"]
