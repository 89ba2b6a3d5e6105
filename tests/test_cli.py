"""The reference CLI: every core command, its --json output and its error exits.

Most tests run in-process through ``cli_runner`` (both backends); a few run the real
``recrm`` console script in a temporary working directory to check process exit
codes, database selection and that stderr never holds a traceback.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect

from recrm_core.plugins import installed_entry_points
from recrm_core.testing import CliResult, RecrmCliRunner

ID_CARD = "11010519491231002X"  # born 1949-12-31, female
OTHER_ID_CARD = "110105194912310038"


# -- helpers -------------------------------------------------------------------------------


def ok(result: CliResult) -> CliResult:
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def ok_json(result: CliResult) -> Any:
    """Exactly one line of JSON on stdout, nothing else."""
    ok(result)
    assert result.stdout.endswith("\n")
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def failed(result: CliResult, code: int) -> str:
    """An error exit: the code, one line on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith("error: ")
    assert "\n" not in line, result.stderr
    return line


def add(cli: RecrmCliRunner, *args: str) -> dict[str, Any]:
    out = ok_json(cli.invoke("customers", "add", *args, "--json"))
    customer: dict[str, Any] = out["customer"]
    return customer


# -- customers add -------------------------------------------------------------------------


def test_add_creates_merges_and_reports_unchanged(cli_runner: RecrmCliRunner) -> None:
    out = ok_json(cli_runner.invoke(
        "customers", "add", "--name", "王伟", "--mobile", "138 1234 5678", "--project", "XL2",
        "--source", "ad", "--owner-staff", "s1", "--json",
    ))
    assert out["outcome"] == "created"
    assert out["suspected_duplicate_of"] == []
    customer = out["customer"]
    assert customer["mobiles"] == ["+8613812345678"]
    assert customer["name"] == "王伟"
    assert [(p["project"], p["stage"], p["owner_staff"], p["source"])
            for p in customer["projects"]] == [("XL2", "prospect", "s1", "ad")]

    merged = ok_json(cli_runner.invoke(
        "customers", "add", "--mobile", "+86-138-1234-5678", "--email", "WW@Example.com",
        "--json",
    ))
    assert merged["outcome"] == "merged"
    assert merged["customer"]["id"] == customer["id"]
    assert merged["customer"]["email"] == "ww@example.com"

    same = ok_json(cli_runner.invoke("customers", "add", "--mobile", "13812345678", "--json"))
    assert same["outcome"] == "unchanged"


def test_add_every_field(cli_runner: RecrmCliRunner) -> None:
    customer = add(
        cli_runner, "--name", "李娜", "--mobile", "13812345678", "--mobile", "13912345678",
        "--id-card", ID_CARD.lower(), "--email", "LN@example.com", "--gender", "女",
        "--birth-date", "1949年12月31日", "--persona", "改善", "--budget", "300万",
        "--external-id", "E-1", "--source-system", "erp",
    )
    assert customer["mobiles"] == ["+8613812345678", "+8613912345678"]
    assert customer["id_card"] == ID_CARD
    assert (customer["gender"], customer["birth_date"]) == ("female", "1949-12-31")
    assert (customer["persona"], customer["budget"]) == ("upgrader", 3_000_000)
    assert (customer["source_system"], customer["external_id"]) == ("erp", "E-1")


def test_add_without_json_prints_a_table_and_a_message(cli_runner: RecrmCliRunner) -> None:
    result = ok(cli_runner.invoke("customers", "add", "--name", "王伟", "--mobile", "13812345678"))
    assert "created: customer" in result.stderr
    assert "+8613812345678" in result.stdout


def test_add_reports_a_suspected_duplicate(cli_runner: RecrmCliRunner) -> None:
    first = add(cli_runner, "--mobile", "13812345678", "--email", "family@example.com")
    out = ok_json(cli_runner.invoke(
        "customers", "add", "--mobile", "13912345678", "--email", "Family@Example.com", "--json"
    ))
    assert out["outcome"] == "created"
    assert out["suspected_duplicate_of"] == [first["id"]]


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--mobile", "abc"], "--mobile"),
        (["--mobile", "010 6552 9988"], "--mobile"),
        (["--name", "王先生"], "--mobile / --id-card"),
        (["--id-card", "110105194912310021"], "--id-card"),
        (["--mobile", "13812345678", "--email", "nope"], "--email"),
        (["--mobile", "13812345678", "--budget", "100-200万"], "--budget"),
        (["--mobile", "13812345678", "--birth-date", "2024-02-30"], "--birth-date"),
        (["--id-card", ID_CARD, "--gender", "male"], "--gender"),
    ],
)
def test_add_bad_values_are_usage_errors(
    cli_runner: RecrmCliRunner, args: list[str], hint: str
) -> None:
    line = failed(cli_runner.invoke("customers", "add", *args, "--json"), 2)
    assert hint in line
    assert ok_json(cli_runner.invoke("customers", "count", "--json")) == {"count": 0}


def test_add_conflict_is_refused(cli_runner: RecrmCliRunner) -> None:
    add(cli_runner, "--mobile", "13812345678", "--id-card", ID_CARD)
    line = failed(cli_runner.invoke(
        "customers", "add", "--mobile", "13812345678", "--id-card", OTHER_ID_CARD, "--json"
    ), 1)
    assert "ID card" in line
    add(cli_runner, "--mobile", "13912345678")
    failed(cli_runner.invoke(
        "customers", "add", "--mobile", "13912345678", "--id-card", ID_CARD
    ), 1)


# -- customers update ----------------------------------------------------------------------


def test_update(cli_runner: RecrmCliRunner) -> None:
    customer = add(cli_runner, "--mobile", "13812345678")
    cid = str(customer["id"])
    out = ok_json(cli_runner.invoke(
        "customers", "update", cid, "--name", "王伟", "--persona", "投资",
        "--add-mobile", "139 1234 5678", "--json",
    ))
    assert out["id"] == customer["id"]  # one customer object, not a list
    assert (out["name"], out["persona"]) == ("王伟", "investor")
    assert out["mobiles"] == ["+8613812345678", "+8613912345678"]
    result = ok(cli_runner.invoke("customers", "update", cid, "--budget", "1.5万"))
    assert result.stdout == ""
    assert f"updated customer {cid}" in result.stderr


def test_update_errors(cli_runner: RecrmCliRunner) -> None:
    a = add(cli_runner, "--mobile", "13812345678", "--id-card", ID_CARD)
    add(cli_runner, "--mobile", "13912345678")
    cid = str(a["id"])
    failed(cli_runner.invoke("customers", "update", "9999", "--name", "x", "--json"), 1)
    assert "give at least one option" in failed(cli_runner.invoke("customers", "update", cid), 2)
    assert "--add-mobile" in failed(
        cli_runner.invoke("customers", "update", cid, "--add-mobile", "abc"), 2
    )
    assert "--gender" in failed(
        cli_runner.invoke("customers", "update", cid, "--gender", "male"), 2
    )
    # a mobile held by another customer: refused by the data
    failed(cli_runner.invoke("customers", "update", cid, "--add-mobile", "13912345678"), 1)
    failed(cli_runner.invoke("customers", "update", "abc", "--name", "x"), 2)


# -- customers find ------------------------------------------------------------------------


def test_find_by_each_key(cli_runner: RecrmCliRunner) -> None:
    customer = add(cli_runner, "--name", "王伟", "--mobile", "13812345678", "--id-card", ID_CARD,
                   "--email", "ww@example.com", "--project", "XL2")
    for option, value in (
        ("--mobile", "+86 138-1234-5678"),
        ("--mobile", "１３８１２３４５６７８"),
        ("--id-card", ID_CARD.lower()),
        ("--email", "WW@EXAMPLE.COM"),
    ):
        found = ok_json(cli_runner.invoke("customers", "find", option, value, "--json"))
        assert [c["id"] for c in found] == [customer["id"]], option
        assert {"id", "name", "mobiles", "id_card", "email", "stage", "projects"} <= set(found[0])
        assert found[0]["mobiles"] == ["+8613812345678"]
        assert found[0]["projects"][0]["project"] == "XL2"


def test_find_email_lists_every_holder(cli_runner: RecrmCliRunner) -> None:
    a = add(cli_runner, "--mobile", "13812345678", "--email", "family@example.com")
    b = add(cli_runner, "--mobile", "13912345678", "--email", "family@example.com")
    found = ok_json(cli_runner.invoke("customers", "find", "--email", "family@example.com",
                                      "--json"))
    assert [c["id"] for c in found] == [a["id"], b["id"]]


def test_find_nothing_is_an_empty_list(cli_runner: RecrmCliRunner) -> None:
    assert ok_json(cli_runner.invoke("customers", "find", "--mobile", "13812345678",
                                     "--json")) == []
    result = ok(cli_runner.invoke("customers", "find", "--mobile", "13812345678"))
    assert "Traceback" not in result.stdout


def test_find_without_json_prints_a_table(cli_runner: RecrmCliRunner) -> None:
    add(cli_runner, "--name", "王伟", "--mobile", "13812345678")
    result = ok(cli_runner.invoke("customers", "find", "--mobile", "13812345678"))
    assert "王伟" in result.stdout and "+8613812345678" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--mobile", "abc"],
        ["--mobile", "010 6552 9988"],
        ["--mobile", "13812345678 ext 1"],
        ["--id-card", "110105194912310021"],
        ["--email", "nope"],
        [],
        ["--mobile", "13812345678", "--email", "a@example.com"],
    ],
)
def test_find_usage_errors(cli_runner: RecrmCliRunner, args: list[str]) -> None:
    failed(cli_runner.invoke("customers", "find", *args, "--json"), 2)


# -- customers show ------------------------------------------------------------------------


def test_show(cli_runner: RecrmCliRunner) -> None:
    customer = add(cli_runner, "--name", "王伟", "--mobile", "13812345678", "--project", "XL2")
    cid = str(customer["id"])
    ok(cli_runner.invoke("interactions", "log", cid, "--kind", "visit", "--project", "XL2",
                         "--summary", "看样板间"))
    ok(cli_runner.invoke("consent", "grant", cid, "sms"))
    view = ok_json(cli_runner.invoke("customers", "show", cid, "--json"))
    assert set(view) == {"customer", "identities", "birthplace", "timeline", "cases",
                         "consents", "tasks"}
    assert [i["kind"] for i in view["identities"]] == ["mobile"]
    assert view["customer"]["name"] == "王伟"
    assert [(e["kind"], e["title"]) for e in view["timeline"]] == [("visit", "看样板间")]
    assert [(c["channel"], c["granted"]) for c in view["consents"]] == [("sms", True)]
    assert view["cases"] == []
    human = ok(cli_runner.invoke("customers", "show", cid))
    assert "王伟" in human.stdout and "看样板间" in human.stdout and "XL2" in human.stdout


def test_show_unknown_customer_exits_1(cli_runner: RecrmCliRunner) -> None:
    assert "no customer 4242" in failed(cli_runner.invoke("customers", "show", "4242", "--json"),
                                        1)
    failed(cli_runner.invoke("customers", "show", "4242"), 1)
    failed(cli_runner.invoke("customers", "show", "abc"), 2)
    failed(cli_runner.invoke("customers", "show"), 2)


# -- customers stage -----------------------------------------------------------------------


def test_stage_forward_backward_and_force(cli_runner: RecrmCliRunner) -> None:
    customer = add(cli_runner, "--mobile", "13812345678", "--project", "XL2")
    cid = str(customer["id"])
    out = ok_json(cli_runner.invoke("customers", "stage", cid, "buyer", "--project", "XL2",
                                    "--unit", "3-1201", "--amount", "2500000", "--json"))
    assert out["stage"] == "buyer"
    assert [(p["project"], p["stage"]) for p in out["projects"]] == [("XL2", "buyer")]
    contract = ok_json(cli_runner.invoke("interactions", "list", cid, "--json"))[0]
    assert contract["kind"] == "contract"
    assert contract["data"] == {"stage": "buyer", "unit": "3-1201", "amount": 2500000}

    line = failed(cli_runner.invoke("customers", "stage", cid, "visitor", "--project", "XL2",
                                    "--json"), 1)
    assert "--force" in line
    forced = ok_json(cli_runner.invoke("customers", "stage", cid, " Visitor ", "--project", "XL2",
                                       "--force", "--json"))
    assert forced["stage"] == "visitor"
    human = ok(cli_runner.invoke("customers", "stage", cid, "subscriber", "--project", "XL2"))
    assert human.stdout == "" and "subscriber at XL2" in human.stderr


def test_stage_errors(cli_runner: RecrmCliRunner) -> None:
    cid = str(add(cli_runner, "--mobile", "13812345678")["id"])
    assert "not one of" in failed(
        cli_runner.invoke("customers", "stage", cid, "customer", "--project", "XL2"), 2
    )
    failed(cli_runner.invoke("customers", "stage", cid, "buyer"), 2)  # --project missing
    failed(cli_runner.invoke("customers", "stage", cid, "buyer", "--project", "XL2",
                             "--amount", "-1"), 2)
    failed(cli_runner.invoke("customers", "stage", cid, "buyer", "--project", "XL2",
                             "--amount", "lots"), 2)
    failed(cli_runner.invoke("customers", "stage", "9999", "buyer", "--project", "XL2"), 1)


# -- customers merge / reassign / duplicates / count ---------------------------------------


def test_merge(cli_runner: RecrmCliRunner) -> None:
    a = add(cli_runner, "--name", "王伟", "--mobile", "13812345678", "--project", "A")
    b = add(cli_runner, "--mobile", "13912345678", "--email", "w@example.com", "--project", "B")
    out = ok_json(cli_runner.invoke("customers", "merge", str(a["id"]), str(b["id"]), "--json"))
    assert out["id"] == a["id"]
    assert out["mobiles"] == ["+8613812345678", "+8613912345678"]
    assert out["email"] == "w@example.com"
    assert sorted(p["project"] for p in out["projects"]) == ["A", "B"]
    # the duplicate's id keeps resolving to the survivor
    shown = ok_json(cli_runner.invoke("customers", "show", str(b["id"]), "--json"))
    assert shown["customer"]["id"] == a["id"]
    assert ok_json(cli_runner.invoke("customers", "count", "--json")) == {"count": 1}
    failed(cli_runner.invoke("customers", "merge", str(a["id"]), str(b["id"])), 1)  # already one
    failed(cli_runner.invoke("customers", "merge", str(a["id"]), "9999"), 1)
    failed(cli_runner.invoke("customers", "merge", str(a["id"])), 2)


def test_merge_refuses_different_id_cards(cli_runner: RecrmCliRunner) -> None:
    a = add(cli_runner, "--mobile", "13812345678", "--id-card", ID_CARD)
    b = add(cli_runner, "--mobile", "13912345678", "--id-card", OTHER_ID_CARD)
    failed(cli_runner.invoke("customers", "merge", str(a["id"]), str(b["id"]), "--json"), 1)


def test_reassign(cli_runner: RecrmCliRunner) -> None:
    a = add(cli_runner, "--mobile", "13812345678", "--project", "A", "--owner-staff", "s1")
    add(cli_runner, "--mobile", "13912345678", "--project", "B", "--owner-staff", "s1")
    add(cli_runner, "--mobile", "13712345678", "--project", "A", "--owner-staff", "s2")
    assert ok_json(cli_runner.invoke("customers", "reassign", "s1", "s3", "--project", "A",
                                     "--json")) == {"reassigned": 1}
    found = ok_json(cli_runner.invoke("customers", "find", "--mobile", "13812345678", "--json"))
    assert found[0]["id"] == a["id"]
    assert found[0]["projects"][0]["owner_staff"] == "s3"
    assert ok_json(cli_runner.invoke("customers", "reassign", "s1", "s3",
                                     "--json")) == {"reassigned": 1}
    assert ok_json(cli_runner.invoke("customers", "reassign", "s1", "s3",
                                     "--json")) == {"reassigned": 0}
    human = ok(cli_runner.invoke("customers", "reassign", "s2", " s3\u3000"))
    assert "reassigned 1" in human.stderr
    # the new owner is stored cleaned, so a later reassign from "s3" finds all three
    assert ok_json(cli_runner.invoke("customers", "reassign", "s3", "s4",
                                     "--json")) == {"reassigned": 3}
    failed(cli_runner.invoke("customers", "reassign", "s3", "s4", "--project", "NOPE"), 1)
    failed(cli_runner.invoke("customers", "reassign", " ", "s4"), 2)
    failed(cli_runner.invoke("customers", "reassign", "s3"), 2)


def test_duplicates(cli_runner: RecrmCliRunner) -> None:
    assert ok_json(cli_runner.invoke("customers", "duplicates", "--json")) == []
    a = add(cli_runner, "--mobile", "13812345678", "--email", "family@example.com")
    b = add(cli_runner, "--mobile", "13912345678", "--email", "family@example.com")
    add(cli_runner, "--mobile", "13712345678", "--email", "a@example.com")
    c = add(cli_runner, "--mobile", "13612345678", "--email", "a@example.com")
    d = add(cli_runner, "--mobile", "13512345678", "--email", "a@example.com")
    pairs = ok_json(cli_runner.invoke("customers", "duplicates", "--json"))
    assert [p["email"] for p in pairs] == ["a@example.com", "family@example.com"]
    assert pairs[1]["customer_ids"] == [a["id"], b["id"]]
    assert len(pairs[0]["customer_ids"]) == 3 and {c["id"], d["id"]} < set(pairs[0]["customer_ids"])
    limited = ok_json(cli_runner.invoke("customers", "duplicates", "--limit", "1", "--json"))
    assert [p["email"] for p in limited] == ["a@example.com"]
    human = ok(cli_runner.invoke("customers", "duplicates"))
    assert "family@example.com" in human.stdout
    failed(cli_runner.invoke("customers", "duplicates", "--limit", "0"), 2)


def test_count(cli_runner: RecrmCliRunner) -> None:
    assert ok_json(cli_runner.invoke("customers", "count", "--json")) == {"count": 0}
    add(cli_runner, "--mobile", "13812345678")
    add(cli_runner, "--mobile", "13912345678")
    assert ok_json(cli_runner.invoke("customers", "count", "--json")) == {"count": 2}
    assert ok(cli_runner.invoke("customers", "count")).stdout == "2\n"


def test_count_bad_segment_argument(cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    assert "not valid JSON" in failed(
        cli_runner.invoke("customers", "count", "--segment", "{nope", "--json"), 2
    )
    assert "cannot read" in failed(
        cli_runner.invoke("customers", "count", "--segment", str(tmp_path / "missing.json")), 2
    )
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    failed(cli_runner.invoke("customers", "count", "--segment", str(listed)), 2)


# -- interactions --------------------------------------------------------------------------


def test_interactions_log_and_list(cli_runner: RecrmCliRunner) -> None:
    cid = str(add(cli_runner, "--mobile", "13812345678")["id"])
    first = ok_json(cli_runner.invoke("interactions", "log", cid, "--kind", "Call",
                                      "--channel", "phone", "--staff", "s1",
                                      "--summary", "问价格", "--json"))
    assert (first["kind"], first["channel"], first["staff"], first["summary"]) == (
        "call", "phone", "s1", "问价格")
    second = ok_json(cli_runner.invoke("interactions", "log", cid, "--kind", "visit",
                                       "--project", "XL2", "--json"))
    assert second["project"] == "XL2"
    items = ok_json(cli_runner.invoke("interactions", "list", cid, "--json"))
    assert [i["id"] for i in items] == [second["id"], first["id"]]  # newest first
    limited = ok_json(cli_runner.invoke("interactions", "list", cid, "--limit", "1", "--json"))
    assert [i["id"] for i in limited] == [second["id"]]
    human = ok(cli_runner.invoke("interactions", "log", cid, "--kind", "sms"))
    assert human.stdout == "" and "logged sms" in human.stderr
    assert "问价格" in ok(cli_runner.invoke("interactions", "list", cid)).stdout


def test_interactions_errors(cli_runner: RecrmCliRunner) -> None:
    cid = str(add(cli_runner, "--mobile", "13812345678")["id"])
    failed(cli_runner.invoke("interactions", "log", "9999", "--kind", "call", "--json"), 1)
    failed(cli_runner.invoke("interactions", "list", "9999", "--json"), 1)
    failed(cli_runner.invoke("interactions", "log", cid), 2)  # --kind missing
    assert "--kind" in failed(cli_runner.invoke("interactions", "log", cid, "--kind", " "), 2)
    failed(cli_runner.invoke("interactions", "list", cid, "--limit", "0"), 2)


# -- consent -------------------------------------------------------------------------------


def test_consent_grant_withdraw_show(cli_runner: RecrmCliRunner) -> None:
    cid = str(add(cli_runner, "--mobile", "13812345678")["id"])
    assert ok_json(cli_runner.invoke("consent", "show", cid, "--json")) == []
    granted = ok_json(cli_runner.invoke("consent", "grant", cid, "sms", "--source", "form",
                                        "--json"))
    assert (granted["channel"], granted["purpose"], granted["granted"], granted["source"]) == (
        "sms", "marketing", True, "form")
    ok(cli_runner.invoke("consent", "grant", cid, "email", "--purpose", "surveys"))
    withdrawn = ok_json(cli_runner.invoke("consent", "withdraw", cid, "sms", "--json"))
    assert withdrawn["granted"] is False
    current = ok_json(cli_runner.invoke("consent", "show", cid, "--json"))
    assert sorted((c["channel"], c["purpose"], c["granted"]) for c in current) == [
        ("email", "surveys", True), ("sms", "marketing", False)]
    human = ok(cli_runner.invoke("consent", "show", cid))
    assert "sms" in human.stdout and "surveys" in human.stdout


def test_consent_errors(cli_runner: RecrmCliRunner) -> None:
    cid = str(add(cli_runner, "--mobile", "13812345678")["id"])
    failed(cli_runner.invoke("consent", "grant", "9999", "sms", "--json"), 1)
    failed(cli_runner.invoke("consent", "show", "9999", "--json"), 1)
    failed(cli_runner.invoke("consent", "grant", cid, "fax"), 2)
    failed(cli_runner.invoke("consent", "withdraw", cid, "sms", "--purpose", "spam"), 2)


# -- plugins and general usage errors ------------------------------------------------------


def test_plugins_list_json(cli_runner: RecrmCliRunner) -> None:
    listed = ok_json(cli_runner.invoke("plugins", "list", "--json"))
    assert isinstance(listed, list)
    assert [p["name"] for p in listed] == sorted(installed_entry_points())
    for plugin in listed:
        assert set(plugin) == {"name", "version", "enabled", "hooks", "error", "warnings"}
        assert isinstance(plugin["enabled"], bool)
        assert all(h.startswith("recrm_") for h in plugin["hooks"])


@pytest.mark.parametrize(
    "args",
    [
        ["customers", "count", "--bogus"],
        ["customers", "find", "--phone", "13812345678"],
        ["--bogus", "customers", "count"],
        ["customers", "nosuchcommand"],
        ["nosuchgroup"],
        ["customers", "show", "1", "2"],
    ],
)
def test_usage_errors_exit_2(cli_runner: RecrmCliRunner, args: list[str]) -> None:
    failed(cli_runner.invoke(*args), 2)


# -- real processes ------------------------------------------------------------------------


def recrm_command() -> list[str]:
    script = Path(sys.executable).with_name("recrm")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from recrm_core.cli import main; main()"]


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> CliResult:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("RECRM_DATABASE_URL", "RECRM_DEBUG")}
    environ.update(env or {})
    proc = subprocess.run([*recrm_command(), *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=120)
    return CliResult(proc.returncode, proc.stdout, proc.stderr, None)  # type: ignore[arg-type]


def count_in(path: Path) -> int:
    """Customers in a SQLite file, read without recrm."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM customers").fetchone()[0])


def test_process_exit_codes_and_stderr(recrm_database_url: str, tmp_path: Path) -> None:
    db = ["--db", recrm_database_url]
    created = ok_json(run(tmp_path, *db, "customers", "add", "--mobile", "13812345678",
                          "--json"))
    cid = str(created["customer"]["id"])
    assert ok_json(run(tmp_path, *db, "customers", "find", "--mobile", "138 1234 5678",
                       "--json"))[0]["id"] == created["customer"]["id"]
    failed(run(tmp_path, *db, "customers", "show", "4242", "--json"), 1)
    failed(run(tmp_path, *db, "customers", "find", "--mobile", "abc", "--json"), 2)
    ok(run(tmp_path, *db, "customers", "stage", cid, "buyer", "--project", "XL2"))
    failed(run(tmp_path, *db, "customers", "stage", cid, "visitor", "--project", "XL2"), 1)
    failed(run(tmp_path, *db, "customers", "count", "--bogus"), 2)
    failed(run(tmp_path, *db, "customers", "stage", cid, "nope", "--project", "XL2"), 2)


def test_process_config_errors_are_one_line(tmp_path: Path) -> None:
    failed(run(tmp_path, "--config", str(tmp_path / "missing.toml"), "customers", "count"), 2)
    (tmp_path / "recrm.toml").write_text("database_url = [", encoding="utf-8")
    failed(run(tmp_path, "customers", "count"), 2)
    (tmp_path / "recrm.toml").write_text('plugins = ["no-such-plugin"]\n', encoding="utf-8")
    failed(run(tmp_path, "customers", "count"), 2)


def test_process_unusable_database_is_one_line(tmp_path: Path) -> None:
    result = run(tmp_path, "--db", "nosuchdialect://x", "customers", "count")
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: ") and "\n" not in result.stderr.strip()


def test_init_writes_config_and_schema(tmp_path: Path) -> None:
    db_file = tmp_path / "数据 dir" / "crm.db"
    db_file.parent.mkdir()
    url = f"sqlite:///{db_file}"
    result = ok(run(tmp_path, "--db", url, "init"))
    assert result.stdout == ""
    config = tomllib.loads((tmp_path / "recrm.toml").read_text(encoding="utf-8"))
    assert config["database_url"] == url
    assert config["plugins"] == sorted(installed_entry_points())
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"customers", "identities", "projects", "customer_projects", "interactions",
            "consents", "cases"} <= tables

    # a second init leaves the file alone, whatever --db says, and still succeeds
    before = (tmp_path / "recrm.toml").read_bytes()
    again = ok(run(tmp_path, "init", "--db", f"sqlite:///{tmp_path / 'other.db'}"))
    assert "left unchanged" in again.stderr
    assert (tmp_path / "recrm.toml").read_bytes() == before


def test_init_db_option_after_the_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'after.db'}"
    ok(run(tmp_path, "init", "--db", url))
    assert tomllib.loads((tmp_path / "recrm.toml").read_text("utf-8"))["database_url"] == url
    assert (tmp_path / "after.db").exists()
    # the written configuration is what later commands use
    ok(run(tmp_path, "customers", "add", "--mobile", "13812345678"))
    assert count_in(tmp_path / "after.db") == 1


def test_database_selection_precedence(tmp_path: Path) -> None:
    (tmp_path / "recrm.toml").write_text(
        f'database_url = "sqlite:///{tmp_path / "toml.db"}"\nplugins = []\n', encoding="utf-8"
    )
    env = {"RECRM_DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}"}
    add_args = ["customers", "add", "--mobile"]

    # --db beats the environment and the file
    ok(run(tmp_path, "--db", f"sqlite:///{tmp_path / 'flag.db'}", *add_args, "13812345678",
           env=env))
    assert count_in(tmp_path / "flag.db") == 1
    assert not (tmp_path / "env.db").exists() and not (tmp_path / "toml.db").exists()

    # RECRM_DATABASE_URL beats recrm.toml
    ok(run(tmp_path, *add_args, "13912345678", env=env))
    ok(run(tmp_path, *add_args, "13712345678", env=env))
    assert count_in(tmp_path / "env.db") == 2
    assert not (tmp_path / "toml.db").exists()

    # recrm.toml in the working directory
    ok(run(tmp_path, *add_args, "13612345678"))
    assert count_in(tmp_path / "toml.db") == 1
    assert not (tmp_path / "recrm.db").exists()

    # nothing at all: sqlite:///recrm.db in the working directory
    bare = tmp_path / "bare"
    bare.mkdir()
    ok(run(bare, *add_args, "13512345678"))
    assert count_in(bare / "recrm.db") == 1
    assert ok_json(run(bare, "customers", "count", "--json")) == {"count": 1}


def test_a_sqlite_file_where_none_can_be_is_named_on_every_command(tmp_path: Path) -> None:
    """A --db path in a missing directory, or a directory: exit 2 naming the path, on
    the commands that check the schema and on `recrm db ...` alike (it was exit 1
    "cannot use the database: unable to open database file", and an internal error
    from `db upgrade`)."""
    missing = tmp_path / "nodir" / "crm.db"
    for args in (("customers", "count"), ("db", "upgrade"), ("db", "current")):
        assert failed(run(tmp_path, "--db", f"sqlite:///{missing}", *args), 2) == (
            f"error: database file {str(missing)!r}: no directory {str(missing.parent)!r}")
    assert failed(run(tmp_path, "--db", f"sqlite:///{tmp_path}", "customers", "count"), 2) \
        == f"error: database file {str(tmp_path)!r} is a directory"
    assert not missing.parent.exists()


def test_unusable_databases_are_one_line_errors(tmp_path: Path) -> None:
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("shopping list\n", encoding="utf-8")
    assert "not a usable database" in failed(
        run(tmp_path, "--db", f"sqlite:///{not_a_db}", "customers", "count"), 2)
    failed(run(tmp_path, "--db", "nosuchdialect://x", "customers", "count"), 2)
    # a malformed port or host: SQLAlchemy's ValueError, not its ArgumentError
    for malformed in ("postgresql://postgres@[::1", "postgresql://postgres@h:abc/d"):
        assert "is not a valid URL" in failed(
            run(tmp_path, "--db", malformed, "customers", "count"), 2)
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    assert "cannot use the database" in failed(
        run(tmp_path, "--db", unreachable, "customers", "count"), 1)
