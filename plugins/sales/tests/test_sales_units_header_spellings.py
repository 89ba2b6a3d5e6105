"""The 销控表 import reads headers as a new user's spreadsheet gives them: padded
(``楼 层``, ``楼　栋``) and labelled with a unit that leaves the figures as they are
(``建筑面积(㎡)``, ``总价（元）``, ``单价(元/㎡)``); a total in 万元 is refused with its
reason (exit 2), nothing imported: read as 元 it would be 10,000 times too cheap."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from recrm_sales import service
from sales_testkit import PROJECT

from recrm_core import CRM
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("sales")

ROW = "3,1,12,1201,98.50,80.00,三室两厅,南北,1970000,20000,可售\n"


def test_padded_and_labelled_unit_headers_are_read(crm: CRM, tmp_path: Path) -> None:
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    path = tmp_path / "units.csv"
    path.write_text("楼　栋,单 元,楼 层,房号,建筑面积(㎡),套内面积（m²）,户型,朝向,"
                    "总价（元）,单价(元/㎡),状态\n" + ROW, encoding="utf-8")
    outcome = service(crm).units.import_file(path, project=PROJECT)
    assert (outcome.created, outcome.rejected) == (1, 0), outcome.rejections
    unit = service(crm).units.get(f"{PROJECT}/3-1201")
    assert (unit.floor, unit.gross_area, unit.list_price) == (
        12, Decimal("98.50"), Decimal("1970000.00"))


def test_a_total_in_wan_yuan_is_refused_with_its_reason(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    path = tmp_path / "units.csv"
    path.write_text("楼栋,单元,楼层,房号,建筑面积,套内面积,户型,朝向,总价(万元),单价,状态\n"
                    "3,1,12,1201,98.50,80.00,三室两厅,南北,197,,可售\n", encoding="utf-8")
    result = cli_runner.invoke("sales", "units", "import", str(path), "--project", PROJECT)
    assert result.exit_code == 2, result.stderr
    assert "总价(万元)" in result.stderr and "10,000 times too small" in result.stderr
    assert service(crm).units.list(project=PROJECT) == []


def test_a_unit_on_a_column_that_holds_no_such_figure_is_an_unknown_column(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    """The 销控表's columns say their units: a floor in 元 or a total in ㎡ is no
    column this import knows (exit 2, nothing imported)."""
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    path = tmp_path / "units.csv"
    path.write_text("楼栋,单元,楼层(元),房号,建筑面积,套内面积,户型,朝向,总价(㎡),单价,状态\n"
                    + ROW, encoding="utf-8")
    result = cli_runner.invoke("sales", "units", "import", str(path), "--project", PROJECT)
    assert result.exit_code == 2, result.stderr
    assert "楼层(元)" in result.stderr
    assert service(crm).units.list(project=PROJECT) == []
