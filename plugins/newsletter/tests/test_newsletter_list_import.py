"""A static list's import reports what it could not read: a row whose mobile or ID card
is no mobile or ID card at all is rejected with its number and reason (printed, in
``--errors`` and in ``--json``), not counted among the strangers; a file with no
column to find anyone by is refused before a list is made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from newsletter_testkit import add_customers
from recrm_newsletter import service

from recrm_core import CRM, InvalidInput, NotFound
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("newsletter")


def test_an_invalid_mobile_is_rejected_with_its_row(crm: CRM, cli_runner: RecrmCliRunner,
                                                     tmp_path: Path) -> None:
    add_customers(crm, 2)
    csv = tmp_path / "vip.csv"
    csv.write_text("手机\n13812340000\nabc\n13900000000\n13812340001\n", encoding="utf-8")
    errors = tmp_path / "rejected.csv"
    result = cli_runner.invoke("newsletter", "list", "import", "vip", str(csv),
                               "--errors", str(errors))
    assert result.exit_code == 0, result.stderr
    assert "2 added from 4 row(s); 1 named nobody, 1 rejected" in result.stderr
    assert "row 2: mobile: mobile 'abc' contains letters" in result.stderr
    assert errors.read_text(encoding="utf-8-sig").splitlines() == [
        "row,field,reason", "2,mobile,mobile 'abc' contains letters or an extension"]
    again = cli_runner.invoke("newsletter", "list", "import", "vip", str(csv), "--json")
    assert again.exit_code == 0, again.stderr
    counts = json.loads(again.stdout)
    assert (counts["added"], counts["unknown"], counts["rejected"]) == (0, 1, 1)
    assert counts["rejections"] == [{"row": 2, "field": "mobile", "sheet_row": None,
                                     "reason": "mobile 'abc' contains letters or an "
                                               "extension"}]
    assert service(crm).list_size("vip") == 2


def test_a_bad_id_card_in_a_workbook_names_its_sheet_row(crm: CRM, tmp_path: Path) -> None:
    from openpyxl import Workbook

    crm.customers.add({"name": "王伟", "mobile": "13812345678",
                       "id_card": "11010519491231002X"})
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["身份证号"])
    sheet.append(["11010519491231002X"])
    sheet.append(["110105194912310029"])  # a wrong check character
    path = tmp_path / "owners.xlsx"
    book.save(path)
    counts = service(crm).import_list("vip", path)
    assert (counts["rows"], counts["added"], counts["unknown"], counts["rejected"]) == (
        2, 1, 0, 1)
    bad = counts["rejections"][0]
    assert (bad.row, bad.field, bad.sheet_row) == (2, "id_card", 3)


def test_a_file_without_a_mobile_or_id_card_column_is_refused(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    add_customers(crm, 1)
    csv = tmp_path / "names.csv"
    csv.write_text("姓名,备注\n王伟0,老业主\n", encoding="utf-8")
    result = cli_runner.invoke("newsletter", "list", "import", "vip", str(csv))
    assert result.exit_code == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "has no mobile or ID-card column (手机 / 身份证) in its header (备注)" \
        in result.stderr
    with pytest.raises(InvalidInput):
        service(crm).import_list("vip", csv)
    with pytest.raises(NotFound):  # no empty list left behind
        service(crm).list_size("vip")


def test_a_row_with_neither_mobile_nor_id_card_is_rejected_with_its_row(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    """A row whose key cells are blank (a note typed, the mobile forgotten) names no
    stranger: it is a row to complete, so it is rejected with its number like a typo
    rather than counted among those who named nobody (before: ``unknown``, no row)."""
    add_customers(crm, 1)
    csv = tmp_path / "vip.csv"
    csv.write_text("手机,身份证,备注\n13812340000,,\n,,忘了填手机\n13999999999,,\n",
                   encoding="utf-8")
    errors = tmp_path / "rejected.csv"
    result = cli_runner.invoke("newsletter", "list", "import", "vip", str(csv), "--json",
                               "--errors", str(errors))
    assert result.exit_code == 0, result.stderr
    counts = json.loads(result.stdout)
    assert [counts[k] for k in ("rows", "added", "unknown", "rejected")] == [3, 1, 1, 1]
    assert counts["rejections"] == [{"row": 2, "field": "mobile,id_card", "sheet_row": None,
                                     "reason": "no mobile or ID card"}]
    assert errors.read_text(encoding="utf-8-sig").splitlines()[1:] == [
        '2,"mobile,id_card",no mobile or ID card']
    assert service(crm).list_size("vip") == 1


def test_a_workbook_s_other_sheet_and_a_csv_s_encoding_can_be_chosen(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    """Found by a new user: a workbook whose first sheet is a cover (说明) could not be
    imported without editing it (no --sheet, as the customer import has), and a GBK
    file read as something else had no --encoding."""
    from openpyxl import Workbook

    add_customers(crm, 2)
    book = Workbook()
    cover = book.active
    assert cover is not None
    cover.title = "说明"
    cover.append(["本表为 VIP 客户名单，请勿外传"])
    names = book.create_sheet("名单")
    names.append(["VIP 名单"])
    names.append(["序号", "姓名", "手机号", "备注"])
    names.append([1, "王伟0", 13812340000, "老业主"])
    names.append([2, "王伟1", "138 1234 0001", None])
    path = tmp_path / "vip.xlsx"
    book.save(path)
    refused = cli_runner.invoke("newsletter", "list", "import", "vip", str(path))
    assert refused.exit_code == 2, refused.stderr
    assert "(sheet '说明'; choose another with --sheet NAME)" in refused.stderr
    chosen = cli_runner.invoke("newsletter", "list", "import", "vip", str(path),
                               "--sheet", "名单", "--json")
    assert chosen.exit_code == 0, chosen.stderr
    counts = json.loads(chosen.stdout)
    assert (counts["added"], counts["ignored_columns"]) == (2, ["序号", "备注"])
    assert service(crm).list_size("vip") == 2
    gbk = tmp_path / "vip.csv"
    gbk.write_bytes("姓名,手机\n王伟0,13812340000\n".encode("gbk"))
    assert service(crm).import_list("other", gbk, encoding="gb18030")["added"] == 1
    wrong = cli_runner.invoke("newsletter", "list", "import", "other", str(gbk),
                              "--encoding", "utf-8")
    assert wrong.exit_code == 2 and "cannot be decoded as utf-8" in wrong.stderr
