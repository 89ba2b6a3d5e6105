"""Headers as people type them are read by every import that opens a table: spaces
inside a header (ASCII, ideographic, NBSP) do not count, a unit that leaves the value's
scale alone (元, ㎡, m²) is dropped, a unit that changes it (万元) refuses the file with
its reason, and 生日 / 出生年月日 are the birth date."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from recrm_core import CRM, ImportFileError, RejectedRow, UnknownColumns, Vocabulary
from recrm_core.tabular import open_table

#: a vocabulary like the 销控表's: amounts in 元, areas in square metres
UNITS = Vocabulary({"楼层": "floor", "建筑面积": "gross_area", "总价": "list_price",
                    "单价": "price_per_m2", "gross_area": "gross_area"})


def _header(tmp_path: Path, line: str, vocabulary: Vocabulary) -> dict[int, str]:
    path = tmp_path / "table.csv"
    path.write_text(f"{line}\n1,2,3\n", encoding="utf-8")
    with open_table(path, vocabulary) as source:
        return source.header.fields


@pytest.mark.parametrize("line", [
    "楼 层,建筑面积(㎡),总价（元）",
    "楼\u3000层,建筑面积（m²）,总价(元)",
    "楼\u00a0层,建筑面积 (m2),总 价 (元)",
    "楼层,建筑面积(平方米),总价",
])
def test_padded_and_labelled_headers_are_read(tmp_path: Path, line: str) -> None:
    assert _header(tmp_path, line, UNITS) == {0: "floor", 1: "gross_area", 2: "list_price"}


def test_a_price_per_square_metre_in_yuan_is_read(tmp_path: Path) -> None:
    assert _header(tmp_path, "单价(元/㎡),楼层,Gross Area", UNITS) == {
        0: "price_per_m2", 1: "floor", 2: "gross_area"}


@pytest.mark.parametrize(("line", "unit", "scale"), [
    ("楼层,建筑面积,总价(万元)", "万元", "10,000"),
    ("楼层,建筑面积,总价（万）", "万", "10,000"),
    ("楼层,单价(万元/㎡),总价", "万元/m2", "10,000"),
])
def test_a_unit_that_changes_the_scale_is_refused_with_its_reason(
        tmp_path: Path, line: str, unit: str, scale: str) -> None:
    with pytest.raises(ImportFileError) as refused:
        _header(tmp_path, line, UNITS)
    assert f"is in {unit}" in str(refused.value)
    assert f"{scale} times too small" in str(refused.value)
    assert not isinstance(refused.value, UnknownColumns)


def test_an_unknown_header_with_a_unit_is_still_unknown(tmp_path: Path) -> None:
    with pytest.raises(UnknownColumns, match=r"车位\(元\)"):
        _header(tmp_path, "楼层,车位(元)", UNITS)
    with pytest.raises(UnknownColumns, match=r"总价\(美元\)"):
        _header(tmp_path, "楼层,总价(美元)", UNITS)


def _customers(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("birth", ["生日", "出生日期", "出生年月日", "出 生 日 期"])
def test_the_customer_import_reads_padded_headers_and_birthday(
        crm: CRM, tmp_path: Path, birth: str) -> None:
    path = _customers(tmp_path, f"姓\u3000名,手 机,{birth},预算（元）\n"
                                "王伟,13812345678,1990-05-04,2000000\n")
    result = crm.importer.import_file(path)
    assert (result.rows, result.created, result.rejected) == (1, 1, 0)
    customer = crm.customers.find(mobile="13812345678")[0]
    assert (customer.name, str(customer.birth_date), customer.budget) == (
        "王伟", "1990-05-04", 2000000)


def test_the_customer_import_refuses_a_budget_in_wan_yuan(crm: CRM, tmp_path: Path) -> None:
    path = _customers(tmp_path, "姓名,手机,预算(万元)\n王伟,13812345678,200\n")
    with pytest.raises(ImportFileError, match="10,000 times too small"):
        crm.importer.import_file(path)
    assert crm.customers.find(mobile="13812345678") == []


def test_a_workbook_s_padded_headers_are_read_as_a_csv_file_s(
        crm: CRM, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["客户名单"])
    sheet.append(["姓　名", "手\u00a0机", "生日"])
    sheet.append(["王伟", "13812345678", "45296"])
    path = tmp_path / "customers.xlsx"
    book.save(path)
    rejected: list[RejectedRow] = []
    result = crm.importer.import_file(path, on_reject=rejected.append)
    assert (result.rows, result.rejected) == (1, 1)
    assert rejected[0].field == "birth_date"  # 生日 is the birth date: its value is read


#: the same columns, saying which unit each amount and area is in
TYPED = Vocabulary({"楼层": "floor", "建筑面积": "gross_area", "总价": "list_price",
                    "单价": "price_per_m2"},
                   units={"gross_area": "m2", "list_price": "元", "price_per_m2": "元/m2"})


def test_a_vocabulary_with_units_reads_each_field_s_own_unit(tmp_path: Path) -> None:
    assert _header(tmp_path, "楼层,建筑面积(平米),总价（元）,单价(元/㎡)", TYPED) == {
        0: "floor", 1: "gross_area", 2: "list_price", 3: "price_per_m2"}
    with pytest.raises(ImportFileError, match="10,000 times too small"):
        _header(tmp_path, "楼层,单价(万元/平米)", TYPED)


@pytest.mark.parametrize(("line", "unknown"), [
    ("楼层(元),总价", r"楼层\(元\)"),          # a floor holds no money
    ("楼层,总价(㎡)", r"总价\(㎡\)"),           # a price is no area
    ("楼层,建筑面积(万元)", r"建筑面积\(万元\)"),  # nor an area money, however scaled
])
def test_a_unit_the_field_does_not_hold_is_an_unknown_column(
        tmp_path: Path, line: str, unknown: str) -> None:
    with pytest.raises(UnknownColumns, match=unknown):
        _header(tmp_path, line, TYPED)


@pytest.mark.parametrize("line", ["姓名(元),手机", "姓名,手机(元)", "姓名,手机,预算(㎡)"])
def test_the_customer_import_takes_a_unit_only_on_the_budget(
        crm: CRM, tmp_path: Path, line: str) -> None:
    path = _customers(tmp_path, f"{line}\n王伟,13812345678,2000000\n")
    with pytest.raises(UnknownColumns):
        crm.importer.import_file(path)
    assert crm.customers.find(mobile="13812345678") == []


def test_a_vocabulary_refuses_a_unit_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="unknown unit"):
        Vocabulary({"总价": "list_price"}, units={"list_price": "美元"})
