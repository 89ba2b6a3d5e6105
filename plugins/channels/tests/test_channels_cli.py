"""``recrm channel ...``: the commands with --json, and a refusal's one line and exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from channels_testkit import PROJECT

from recrm_core import CRM
from recrm_core.testing import CliResult, RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("channels")


def ok(result: CliResult) -> object:
    assert result.exit_code == 0, result.stderr
    return result.json() if result.stdout else None


def test_the_whole_flow_on_the_command_line(crm: CRM, cli_runner: RecrmCliRunner,
                                            tmp_path: Path) -> None:
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    run = cli_runner.invoke
    ok(run("channel", "agency", "add", "A", "--name", "链家", "--json"))
    ok(run("channel", "agency", "add", "B", "--name", "B", "--json"))
    ok(run("channel", "agent", "add", "a1", "--name", "A1", "--agency", "A", "--json"))
    ok(run("channel", "agent", "add", "b1", "--name", "B1", "--agency", "B", "--json"))
    assert [a["code"] for a in ok(run("channel", "agency", "list", "--json"))] == ["A", "B"]  # type: ignore[union-attr]
    rules = tmp_path / "rules.toml"
    rules.write_text("registration_valid_hours = 48\nvisit_is_king = false\n", encoding="utf-8")
    set_ = ok(run("channel", "rules", "set", "--project", PROJECT, "--file", str(rules),
                  "--json"))
    assert set_["version"] == 1  # type: ignore[index]
    shown = ok(run("channel", "rules", "show", "--project", PROJECT, "--json"))
    assert [v["rules"]["registration_valid_hours"] for v in shown] == [72, 48]  # type: ignore[union-attr]
    reg = ok(run("channel", "register", "--agent", "a1", "--project", PROJECT,
                 "--mobile", "13812345678", "--name", "王伟", "--json"))
    assert reg["state"] == "pending" and reg["rule_version"] == 1  # type: ignore[index]
    refused = run("channel", "register", "--agent", "b1", "--project", PROJECT,
                  "--mobile", "13812345678")
    assert refused.exit_code == 1 and refused.stdout == ""
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "already registered by another agency" in lines[0]
    assert "13812345678" not in refused.stderr and "a1" not in refused.stderr
    visit = ok(run("channel", "visit", "--project", PROJECT, "--mobile", "13812345678",
                   "--agent", "a1", "--json"))
    assert visit["state"] == "confirmed"  # type: ignore[index]
    explained = ok(run("channel", "explain", str(reg["id"]), "--json"))  # type: ignore[index]
    assert "confirmed by a visit" in explained["explanation"]  # type: ignore[index]
    human = run("channel", "explain", str(reg["id"]))  # type: ignore[index]
    assert human.exit_code == 0 and "rule v1" in human.stdout
    listed = ok(run("channel", "registrations", "--state", "rejected", "--json"))
    assert [r["agency"] for r in listed] == ["B"]  # type: ignore[union-attr]
    partner = ok(run("--as", "partner:b1", "channel", "registrations", "--json"))
    assert [r["mobile"] for r in partner] == ["138****5678"]  # type: ignore[union-attr]
    assert ok(run("channel", "sweep", "--json")) == {"checked": 1, "expired": 0,
                                                     "released": 0}


def test_bad_rules_file_is_a_usage_error(crm: CRM, cli_runner: RecrmCliRunner,
                                         tmp_path: Path) -> None:
    crm.projects.ensure(PROJECT)
    rules = tmp_path / "rules.toml"
    rules.write_text("registration_valid_hours = 0\n", encoding="utf-8")
    result = cli_runner.invoke("channel", "rules", "set", "--project", PROJECT,
                               "--file", str(rules))
    assert result.exit_code == 2 and "registration_valid_hours" in result.stderr
    rules.write_text("no_such_key = 1\n", encoding="utf-8")
    result = cli_runner.invoke("channel", "rules", "set", "--project", PROJECT,
                               "--file", str(rules))
    assert result.exit_code == 2 and "no_such_key" in result.stderr


@pytest.mark.parametrize("text", ["a = " + "[" * 5000 + "]" * 5000 + "\n", "a = [\n"])
def test_a_rules_file_tomllib_cannot_read_is_a_usage_error(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, text: str) -> None:
    # nested too deeply, tomllib recurses out of the stack: one line naming the file
    crm.projects.ensure(PROJECT)
    rules = tmp_path / "deep.toml"
    rules.write_text(text, encoding="utf-8")
    for args in (("rules", "set", "--project", PROJECT, "--file", str(rules)),
                 ("simulate", "--project", PROJECT, "--rules", str(rules))):
        result = cli_runner.invoke("channel", *args)
        assert result.exit_code == 2, result.stderr
        assert "deep.toml" in result.stderr and "not valid TOML" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "internal error" not in result.stderr


def test_disputes_on_the_command_line(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    from channels_testkit import setup_agencies

    setup_agencies(crm)
    run = cli_runner.invoke
    held = ok(run("channel", "register", "--agent", "a1", "--project", PROJECT,
                  "--mobile", "13812345678", "--json"))
    refused = run("channel", "register", "--agent", "b1", "--project", PROJECT,
                  "--mobile", "13812345678", "--json")
    assert refused.exit_code == 1
    lost = refused.json()["id"]
    opened = ok(run("--as", "partner:b1", "channel", "dispute", "open", str(lost),
                    "--note", "我们先带看", "--json"))
    assert opened["state"] == "open" and opened["claimant"] == lost  # type: ignore[index]
    again = run("--as", "partner:b1", "channel", "dispute", "open", str(lost), "--note", "x")
    assert again.exit_code == 1 and "open already" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    usage = run("channel", "dispute", "resolve", str(opened["id"]), "--note", "x")  # type: ignore[index]
    assert usage.exit_code == 2 and "--uphold or --dismiss" in usage.stderr
    forbidden = run("--as", "sales:s1", "channel", "dispute", "resolve",
                    str(opened["id"]), "--uphold", "--note", "x")  # type: ignore[index]
    assert forbidden.exit_code == 1 and "Traceback" not in forbidden.stderr
    ruled = ok(run("channel", "dispute", "resolve", str(opened["id"]), "--uphold",  # type: ignore[index]
                   "--note", "phone log", "--json"))
    assert ruled["state"] == "upheld"  # type: ignore[index]
    states = {r["id"]: r["state"] for r in ok(run("channel", "registrations", "--json"))}  # type: ignore[union-attr]
    assert (states[held["id"]], states[lost]) == ("released", "confirmed")  # type: ignore[index]
    human = run("channel", "explain", str(lost))
    assert human.exit_code == 0 and f"dispute {opened['id']} by agency B" in human.stdout  # type: ignore[index]
    assert f"dispute #{opened['id']} upheld" in human.stdout  # type: ignore[index]
    listed = ok(run("channel", "dispute", "list", "--state", "upheld", "--json"))
    assert [d["id"] for d in listed] == [opened["id"]]  # type: ignore[index, union-attr]
    assert ok(run("--as", "partner:a1", "channel", "dispute", "list", "--json")) == []


def test_a_bad_code_names_the_argument(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    """A code given as the command's argument is named as the argument (found by
    probe10: ``agency add 'a b'`` blamed an option --agency the command has not)."""
    run = cli_runner.invoke
    bad = run("channel", "agency", "add", "a b", "--name", "x")
    assert bad.exit_code == 2
    assert bad.stderr == ("error: Invalid value for CODE: agency must be 1 to 64 characters "
                          "without spaces or control characters\n")
    ok(run("channel", "agency", "add", "A", "--name", "链家"))
    bad = run("channel", "agent", "add", "a b", "--name", "x", "--agency", "A")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: Invalid value for AGENT_ID: agent must be")
