"""Acceptance review of the core against issue 2, with inputs nobody wrote the code for:
hostile CSV files through the real ``recrm`` process, over-long values that only
PostgreSQL refuses, and references left behind by merges. Each test here pins a
discrepancy the review found (and fixed), or a rule it checked end to end."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from recrm_core import CRM
from recrm_core.csvsource import ImportFileError
from recrm_core.errors import InvalidInput
from recrm_core.identity import id_card_check_character, normalise_mobile
from recrm_core.models import Actor, RejectedRow
from recrm_core.testing import CliResult, HookRecorder, RecrmCliRunner
from recrm_core.values import MAX_BUDGET, parse_budget

LONG = "x" * 65


def card(body: str) -> str:
    return body + id_card_check_character(body)


CARD_M = card("11010519900101123")  # male, 1990-01-01


def recrm(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script as a user runs it: real exit codes, real streams."""
    script = Path(sys.executable).with_name("recrm")
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "from recrm_core.cli import main; main()"]
    env = {k: v for k, v in os.environ.items() if k not in ("RECRM_DATABASE_URL", "RECRM_DEBUG")}
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    assert "internal error" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def usage_error(result: CliResult) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    return one_line_error(result.stderr)


# -- budgets beyond the BIGINT column --------------------------------------------------------


def test_budget_bound_is_the_column_bound() -> None:
    assert parse_budget(str(MAX_BUDGET)) == MAX_BUDGET
    assert parse_budget(MAX_BUDGET) == MAX_BUDGET
    for raw in (MAX_BUDGET + 1, str(MAX_BUDGET + 1), "99999999999999999999999",
                "1" * 30 + "万"):
        with pytest.raises(ValueError, match="too large"):
            parse_budget(raw)


def test_huge_budget_rejects_the_row_not_the_import(crm: CRM, tmp_path: Path) -> None:
    # It used to reach the INSERT: OverflowError on SQLite, bigint out of range on
    # PostgreSQL, the whole import an "internal error".
    path = tmp_path / "in.csv"
    path.write_text("mobile,budget\n13800000001,99999999999999999999999\n"
                    "13800000002,\"1,200,000\"\n", encoding="utf-8")
    rejected: list[RejectedRow] = []
    result = crm.importer.import_csv(path, on_reject=rejected.append)
    assert (result.rows, result.created, result.merged, result.rejected) == (2, 1, 0, 1)
    assert [(r.row, r.field) for r in rejected] == [(1, "budget")]
    assert crm.customers.find(mobile="13800000002")[0].budget == 1_200_000
    with pytest.raises(InvalidInput) as err:
        crm.customers.add({"mobile": "13800000003", "budget": 10**20})
    assert err.value.field == "budget"


# -- the errors file must not be the input ---------------------------------------------------


def test_errors_file_that_is_the_input_is_refused(crm: CRM, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    text = "mobile\n" + "".join(f"137{i:08d}\n" for i in range(3000))
    path.write_text(text, encoding="utf-8")
    link = tmp_path / "link.csv"
    link.symlink_to(path)
    for target in (path, link):
        with pytest.raises(ImportFileError, match="is the file being imported"):
            crm.importer.import_csv(path, errors_path=target)
    # refused before anything was written: the input is intact and nothing imported
    assert path.read_text(encoding="utf-8") == text
    assert crm.customers.count() == 0


def test_errors_file_that_is_the_input_exit_2(recrm_database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    text = "name,mobile\n" + "".join(f"n{i},137{i:08d}\n" for i in range(20000))
    path.write_text(text, encoding="utf-8")
    done = recrm(tmp_path, "--db", recrm_database_url, "customers", "import", "in.csv",
                 "--errors", "./in.csv", "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert "is the file being imported" in one_line_error(done.stderr)
    # Before the fix this truncated the file being read and imported ~250 rows, exit 0.
    assert path.read_text(encoding="utf-8") == text


# -- external references of merged-away customers --------------------------------------------


def test_external_id_of_a_merged_customer_resolves_to_the_survivor(crm: CRM) -> None:
    survivor = crm.customers.add({"mobile": "13800000001", "external_id": "E-1"}).customer
    gone = crm.customers.add({"mobile": "13800000002", "external_id": "E-2"}).customer
    crm.customers.merge(survivor.id, gone.id)
    # The survivor kept its own reference; E-2 stays on the merged row (UNIQUE) and
    # must keep resolving to the survivor, as the merged id does. Before the fix both
    # doors created a customer with E-2 again and died on the UNIQUE constraint.
    added = crm.customers.add({"mobile": "13800000003", "external_id": "E-2"})
    assert not added.created and added.customer.id == survivor.id
    assert "+8613800000003" in added.customer.mobiles
    result = crm.importer.import_rows([
        {"mobile": "13800000004", "external_id": "E-2", "name": "王五"},
        {"mobile": "13800000005", "external_id": "E-9"},
    ])
    assert (result.rows, result.created, result.merged, result.rejected) == (2, 1, 1, 0)
    again = crm.customers.get(survivor.id)
    assert "+8613800000004" in again.mobiles and again.name == "王五"
    assert again.external_id == "E-1"
    assert crm.customers.count() == 2


def test_external_id_of_a_merged_customer_conflicts_with_another_customer(crm: CRM) -> None:
    survivor = crm.customers.add({"mobile": "13800000001", "external_id": "E-1"}).customer
    gone = crm.customers.add({"mobile": "13800000002", "external_id": "E-2"}).customer
    other = crm.customers.add({"mobile": "13800000003"}).customer
    crm.customers.merge(survivor.id, gone.id)
    rejected: list[RejectedRow] = []
    result = crm.importer.import_rows(
        [{"mobile": "13800000003", "external_id": "E-2"}], on_reject=rejected.append)
    assert result.rejected == 1 and [r.field for r in rejected] == ["mobile,id_card"]
    assert other.id != survivor.id and crm.customers.count() == 2  # merged-away not counted


# -- values only PostgreSQL measures ---------------------------------------------------------


def test_actor_staff_id_fits_its_column() -> None:
    assert Actor(staff_id="s" * 64).staff_id == "s" * 64
    with pytest.raises(ValidationError):
        Actor(staff_id=LONG)
    with pytest.raises(ValidationError):
        Actor(staff_id="s1", role="r" * 33)


def test_over_long_cli_values_are_usage_errors(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    # On PostgreSQL each of these was a DataError (VARCHAR overflow): exit 1 with an
    # "internal error" carrying the SQL. They are bad option values: exit 2, one line.
    cid = str(crm.customers.add({"mobile": "13800000001"}).customer.id)
    case_id = str(crm.cases.open({"customer_id": int(cid), "category": "repair",
                                  "subject": "漏水"}).id)
    crm.customers.add({"mobile": "13800000002", "project": "XL2", "owner_staff": "s1"})
    cases: list[tuple[list[str], str]] = [
        (["interactions", "log", cid, "--kind", "visit", "--staff", LONG], "--staff"),
        (["interactions", "log", cid, "--kind", "visit", "--channel", "c" * 33], "--channel"),
        (["consent", "grant", cid, "sms", "--source", LONG], "--source"),
        (["consent", "withdraw", cid, "sms", "--actor", LONG], "--actor"),
        (["cases", "open", cid, "--category", "repair", "--subject", "s", "--actor", LONG],
         "--actor"),
        (["cases", "start", case_id, "--actor", LONG], "--actor"),
        (["customers", "stage", cid, "visitor", "--project", "p" * 65], "--project"),
        (["customers", "stage", cid, "visitor", "--project", "XL2", "--actor", LONG],
         "--actor"),
        (["customers", "reassign", "s1", LONG], "staff id"),
        (["customers", "add", "--mobile", "13800000009", "--actor", LONG], "--actor"),
    ]
    for args, named in cases:
        line = usage_error(cli_runner.invoke(*args, "--json"))
        assert named in line, (args, line)
    # nothing of it was written
    assert crm.interactions.list(int(cid)) == []
    assert crm.consent.current(int(cid)) == []
    assert crm.cases.get(int(case_id)).status == "open"
    assert crm.customers.get(int(cid)).projects == []
    assert crm.customers.find(mobile="13800000002")[0].projects[0].owner_staff == "s1"
    assert crm.customers.count() == 2


def test_import_actor_too_long_is_a_usage_error(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_text("mobile\n13800000001\n", encoding="utf-8")
    usage_error(cli_runner.invoke("customers", "import", str(path), "--actor", LONG, "--json"))
    assert crm.customers.count() == 0


# -- phone numbers as they are copied ------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    "\u202d138 1234 5678\u202c",  # what Windows and phones wrap a copied number in
    "138\u200b1234\u200b5678",
    "\ufeff+86 138 1234 5678",
])
def test_invisible_format_characters_in_mobiles(raw: str) -> None:
    assert normalise_mobile(raw) == "+8613812345678"


@pytest.mark.parametrize(
    "raw", ["138 1234 5678 ext 12", "021-12345678", "138\u20131234\u20135678x"]
)
def test_mobiles_still_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_mobile(raw)


# -- a messy sales-office file through the real process, both backends -----------------------


def _messy_rows() -> list[str]:
    return [
        "客户姓名 ,手机号码,身份证号,邮箱,性别,出生日期,预算,客户类型,项目,置业顾问,来源,,",
        "王先生,86 138 1234 5678,,WANG@Example.com,男,1990年1月1日,200万,刚需,翠湖,张三,来访,,",
        ",(+86)13812345678,,,,,,,,,,,",  # the same person again: merged, nothing changes
        "",  # a blank line: skipped, not counted
        ",,,,,,,,,,,,",  # what Excel writes for a used but empty row
        f"\"王先生\",+86-138-1234-5678,{CARD_M.lower()},,,,,,翠湖,,,,",  # adds the ID card
        "李女士,0086.139.1234.5678,,wang@example.com,女,1985/3/4,\"1,200,000\",改善,云顶,,,,",
        "张三,１３７１２３４５６７８,,,M,19900101,1.5万,投资,,,,,",
        "坏预算,13612345678,,,,,100-200万,,,,,,",
        "坏日期,13512345678,,,,2023-02-29,,,,,,,",
        "只有名字,,,,,,,,,,,,",
        f"冲突,13912345678,{CARD_M},,,,,,,,,,",  # mobile -> 李女士, card -> 王先生
        "座机,021-12345678,,,,,,,,,,,",
        "\"Wang, Jr.\",+852 6123 4567,,,,,,,,,,,",
    ]


def test_messy_gbk_file_through_the_real_command(
    recrm_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file holds ID numbers, stored encrypted: PostgreSQL has no default key file.
    from recrm_core.keys import create_key_file

    create_key_file(tmp_path / "test.key")
    monkeypatch.setenv("RECRM_KEY_FILE", str(tmp_path / "test.key"))
    path = tmp_path / "销售台账.csv"
    path.write_bytes("\r\n".join(_messy_rows()).encode("gbk") + b"\r\n")
    db = ["--db", recrm_database_url]
    done = recrm(tmp_path, *db, "customers", "import", str(path), "--errors", "err.csv",
                 "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not a terminal: no progress bar, no messages
    assert done.stdout.count("\n") == 1
    summary = json.loads(done.stdout)
    assert summary == {"rows": 11, "created": 4, "merged": 2, "rejected": 5,
                       "suspected_duplicates": 2}
    assert summary["created"] + summary["merged"] + summary["rejected"] == summary["rows"]
    raw = (tmp_path / "err.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    errors = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert errors[0] == ["row", "field", "reason"]
    assert [(r[0], r[1]) for r in errors[1:]] == [
        ("6", "budget"), ("7", "birth_date"), ("8", "mobile,id_card"),
        ("9", "mobile,id_card"), ("10", "mobile")]
    found = recrm(tmp_path, *db, "customers", "find", "--id-card", CARD_M, "--json")
    assert found.returncode == 0, found.stderr
    (wang,) = json.loads(found.stdout)
    assert {"id", "name", "mobiles", "id_card", "email", "stage", "projects"} <= wang.keys()
    assert wang["name"] == "王先生" and wang["mobiles"] == ["+8613812345678"]
    assert wang["id_card"] == CARD_M and wang["email"] == "wang@example.com"
    assert [p["project"] for p in wang["projects"]] == ["翠湖"]
    assert wang["projects"][0]["owner_staff"] == "张三"
    count = recrm(tmp_path, *db, "customers", "count", "--json")
    assert json.loads(count.stdout) == {"count": 4}
    # the same file again creates nothing and changes nothing
    again = recrm(tmp_path, *db, "customers", "import", str(path), "--json")
    assert json.loads(again.stdout) == {"rows": 11, "created": 0, "merged": 6, "rejected": 5,
                                        "suspected_duplicates": 0}
    after = json.loads(recrm(tmp_path, *db, "customers", "find", "--id-card", CARD_M,
                             "--json").stdout)
    assert after[0]["updated_at"] == wang["updated_at"]


def test_ascii_head_then_gbk_is_read_as_gbk(recrm_database_url: str, tmp_path: Path) -> None:
    # Issue 7 changed the rule: when the first 64 KB are pure ASCII, the first rows
    # holding other bytes decide, so the GBK rows after them are read right (they
    # used to stop the import at the first of them); --encoding gbk reads the same.
    rows = ["mobile,name"] + [f"139{i:08d},Lee{i}" for i in range(4000)]
    head = "\r\n".join(rows).encode("ascii")
    assert len(head) > 64 * 1024
    path = tmp_path / "in.csv"
    path.write_bytes(head + "\r\n13700000001,王先生\r\n13700000002,李女士\r\n".encode("gbk"))
    db = ["--db", recrm_database_url]
    done = recrm(tmp_path, *db, "customers", "import", "in.csv", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["created"] == 4002
    done = recrm(tmp_path, *db, "customers", "import", "in.csv", "--encoding", "gbk", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["created"] == 0
    found: list[dict[str, Any]] = json.loads(
        recrm(tmp_path, *db, "customers", "find", "--mobile", "13700000002", "--json").stdout)
    assert found[0]["name"] == "李女士"


# -- "a match that changes nothing fires no update hook and leaves updated_at alone" ---------


def test_unchanged_matches_fire_nothing_and_keep_updated_at(
    crm: CRM, hook_recorder: HookRecorder
) -> None:
    first = crm.customers.add({"mobile": "13800000001", "name": "王五", "project": "XL2",
                               "owner_staff": "s1", "id_card": CARD_M}).customer
    crm.customers.set_stage(first.id, "visitor", "XL2")
    stamp = crm.customers.get(first.id).updated_at
    hook_recorder.calls.clear()
    # the same person through every door, in every spelling, adding nothing
    again = crm.customers.add({"mobile": "+86 138-0000-0001", "name": "王先生",
                               "id_card": CARD_M.lower(), "project": " XL2 "})
    assert not again.created and not again.changed
    crm.customers.update(first.id, {"name": "王五"})
    crm.customers.set_stage(first.id, "visitor", "XL2")
    result = crm.importer.import_rows([{"mobile": "8613800000001"}, {"id_card": CARD_M}])
    assert (result.created, result.merged) == (0, 2)
    assert hook_recorder.named("recrm_customer_updated") == []
    assert hook_recorder.named("recrm_stage_changed") == []
    assert crm.customers.get(first.id).updated_at == stamp
