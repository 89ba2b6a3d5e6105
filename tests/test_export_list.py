"""``customers export-list``: CSV (UTF-8 with BOM) or XLSX, streamed, the columns and
masking of the actor's role, hostile cells neutralised, audited with the row count."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from recrm_core import CRM, Actor
from recrm_core.customerlist import COLUMNS, PARTNER_COLUMNS
from recrm_core.testing import RecrmCliRunner

ID_CARD = "11010519491231002X"


@pytest.fixture
def world(crm: CRM) -> dict[str, int]:
    own = crm.customers.add({"name": "王伟", "mobile": "13812345678", "id_card": ID_CARD,
                             "email": "wang.wei@example.com", "project": "XL1",
                             "owner_staff": "zhang"}).customer
    other = crm.customers.add({"name": "欧阳娜娜", "mobile": "13912345678", "project": "XL2",
                               "email": "ouyang@example.com"}).customer
    hostile = crm.customers.add({"name": "=HYPERLINK(\"http://x\",\"y\")",
                                 "mobile": "13700000001", "project": "XL2"}).customer
    return {"own": own.id, "other": other.id, "hostile": hostile.id}


def read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "no BOM: Excel would misread the Chinese"
    return list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))


def test_admin_exports_everyone_in_full(crm: CRM, cli_runner: RecrmCliRunner,
                                        world: dict[str, int], tmp_path: Path) -> None:
    out = tmp_path / "all.csv"
    r = cli_runner.invoke("customers", "export-list", "--all", "--out", str(out), "--json")
    assert r.exit_code == 0, r.stderr
    assert r.json() == {"rows": 3, "out": str(out)}
    rows = read_csv(out)
    assert list(rows[0]) == list(COLUMNS)
    by_id = {int(row["id"]): row for row in rows}
    own = by_id[world["own"]]
    assert (own["name"], own["mobiles"], own["id_card"], own["email"], own["masked"]) == (
        "王伟", "13812345678", ID_CARD, "wang.wei@example.com", "no")
    assert own["projects"] == "XL1:prospect" and own["owners"] == "XL1:zhang"
    # a cell Excel would run as a formula is written as text
    assert by_id[world["hostile"]]["name"].startswith("'=HYPERLINK")
    [entry] = crm.audit.entries(action="export")
    assert entry.details["rows"] == 3 and entry.details["segment"] == "all"
    assert entry.details["masked_rows"] == 0 and entry.channel == "cli"


def test_a_consultant_sees_own_customers_in_full_and_others_masked(
        crm: CRM, cli_runner: RecrmCliRunner, world: dict[str, int], tmp_path: Path) -> None:
    out = tmp_path / "mine.xlsx"
    r = cli_runner.invoke("--as", "sales:zhang", "customers", "export-list", "--all",
                          "--out", str(out))
    assert r.exit_code == 0, r.stderr
    from openpyxl import load_workbook

    sheet = load_workbook(out, read_only=True).active
    assert sheet is not None
    values = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    header, *rows = values
    assert tuple(header) == COLUMNS
    by_id = {int(str(row[0])): dict(zip(COLUMNS, row, strict=False)) for row in rows}
    assert by_id[world["own"]]["mobiles"] == "13812345678"
    other = by_id[world["other"]]
    assert (other["name"], other["mobiles"], other["email"], other["masked"]) == (
        "欧***", "139****5678", "o***@example.com", "yes")
    [entry] = crm.audit.entries(action="export")
    assert (entry.actor_staff, entry.actor_role, entry.details["masked_rows"]) == (
        "zhang", "sales", 2)


def test_a_partner_gets_their_columns_only(crm: CRM, cli_runner: RecrmCliRunner,
                                           world: dict[str, int], tmp_path: Path) -> None:
    out = tmp_path / "partner.csv"
    segment = json.dumps({"field": "project", "op": "eq", "value": "XL1"})
    r = cli_runner.invoke("--as", "partner:li", "customers", "export-list", "--segment",
                          segment, "--out", str(out))
    assert r.exit_code == 0, r.stderr
    rows = read_csv(out)
    assert list(rows[0]) == list(PARTNER_COLUMNS)
    assert rows == [{"id": str(world["own"]), "name": "王*", "mobiles": "138****5678",
                     "stage": "prospect", "projects": "XL1:prospect"}]
    text = out.read_text(encoding="utf-8-sig")
    assert "13812345678" not in text and ID_CARD not in text and "example.com" not in text
    by_card = json.dumps({"field": "id_card", "op": "eq", "value": ID_CARD})
    refused = cli_runner.invoke("--as", "partner:li", "customers", "export-list",
                                "--segment", by_card, "--out", str(tmp_path / "x.csv"))
    assert refused.exit_code == 1 and "may not select customers by id_card" in refused.stderr
    assert not (tmp_path / "x.csv").exists()
    by_plugin = json.dumps({"field": "membership.points", "op": "gte", "value": 1})
    counted = cli_runner.invoke("--as", "partner:li", "customers", "count", "--segment",
                                by_plugin)
    assert counted.exit_code == 1
    assert "may not select customers by membership.points" in counted.stderr


def test_the_audit_entry_holds_no_identity_in_clear(crm: CRM, world: dict[str, int],
                                                    tmp_path: Path) -> None:
    from recrm_core.customerlist import export_list

    definition = {"any": [{"field": "mobile", "op": "in", "value": ["13812345678",
                                                                    "13912345678"]},
                          {"field": "name", "op": "contains", "value": "王"}]}
    rows = export_list(crm, tmp_path / "x.csv", definition,
                       actor=Actor(staff_id="boss", role="admin"))
    assert rows == 2
    [entry] = crm.audit.entries(action="export")
    dumped = json.dumps(entry.details, ensure_ascii=False)
    assert "13812345678" not in dumped and "王" not in dumped
    hashed = entry.details["segment"]["any"][0]["value"]
    assert hashed == [crm.audit.hash("mobile", "13812345678"),
                      crm.audit.hash("mobile", "13912345678")]


def test_usage_errors(crm: CRM, cli_runner: RecrmCliRunner, world: dict[str, int],
                      tmp_path: Path) -> None:
    for args, message in [
        (("--all", "--segment", "{}", "--out", "x.csv"), "exactly one of --segment or --all"),
        (("--out", "x.csv"), "exactly one of --segment or --all"),
        (("--all", "--out", str(tmp_path / "x.txt")), "must end in .csv or .xlsx"),
        (("--all", "--out", str(tmp_path / "no" / "x.csv")), "cannot write"),
        (("--segment", '{"field": "nope", "op": "eq", "value": 1}', "--out",
          str(tmp_path / "y.csv")), "--segment"),
    ]:
        r = cli_runner.invoke("customers", "export-list", *args)
        assert r.exit_code == 2, (args, r.stderr)
        assert message in r.stderr and r.stderr.count("\n") == 1, (args, r.stderr)
    assert not list(tmp_path.glob("*.csv")) and not list(tmp_path.glob("*.t*"))
    assert crm.audit.entries(action="export") == []
