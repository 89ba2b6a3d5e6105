"""A list file's header is found as the customer import finds its own: title rows
above it (a report title, an export date) are skipped, in a CSV file and a workbook,
while its unknown columns (备注) are still ignored, not a refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from newsletter_testkit import add_customers
from recrm_newsletter import service

from recrm_core import CRM, InvalidInput
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("newsletter")

TITLED = ("2024年VIP客户名单\n导出日期：2024-05-01\n"
          "姓名,手机,备注\n王伟0,13812340000,老客户\n,13812340001,\n")


def test_title_rows_above_a_list_header_are_skipped(crm: CRM, cli_runner: RecrmCliRunner,
                                                    tmp_path: Path) -> None:
    add_customers(crm, 2)
    csv = tmp_path / "vip.csv"
    csv.write_text(TITLED, encoding="utf-8")
    result = cli_runner.invoke("newsletter", "list", "import", "vip", str(csv), "--json")
    assert result.exit_code == 0, result.stderr
    counts = json.loads(result.stdout)
    assert (counts["rows"], counts["added"], counts["rejected"]) == (2, 2, 0)
    assert counts["ignored_columns"] == ["备注"]
    assert service(crm).list_size("vip") == 2


def test_the_customer_import_and_the_list_import_agree_on_the_header(
        crm: CRM, tmp_path: Path) -> None:
    from openpyxl import Workbook

    add_customers(crm, 1)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["星珑湾 业主名单"])
    sheet.append([])
    sheet.append(["手机", "姓名"])
    sheet.append(["13812340000", "王伟0"])
    path = tmp_path / "owners.xlsx"
    book.save(path)
    counts = service(crm).import_list("owners", path)
    assert (counts["rows"], counts["added"], counts["ignored_columns"]) == (1, 1, [])
    assert crm.importer.import_file(path).rows == 1  # the customer import reads the same header


def test_a_file_naming_nobody_in_any_of_its_first_rows_is_still_refused(
        crm: CRM, tmp_path: Path) -> None:
    csv = tmp_path / "notes.csv"
    csv.write_text("客户名单\n备注,楼盘\n老客户,星珑湾\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no mobile or ID-card column"):
        service(crm).import_list("vip", csv)
    assert "vip" not in _list_names(crm)


def _list_names(crm: CRM) -> list[str]:
    from recrm_newsletter.tables import ListRow
    from sqlalchemy import select

    with crm.unit_of_work(readonly=True) as uow:
        return list(uow.session.scalars(select(ListRow.name)))
