"""The 销控表: import (CSV, GBK, XLSX, rejected rows), list, holds with expiry."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sales_testkit import HEADER, NOW, PROJECT, customer, setup_units

from recrm_core import CRM, InvalidInput, NotFound, Refused

pytestmark = pytest.mark.recrm_plugins("sales")


def test_import_prices_units_and_lists_them(crm: CRM, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    units = {u.name: u for u in sales.units.list()}
    assert sorted(units) == ["XL2/3-1201", "XL2/3-1202", "XL2/3-1203", "XL2/5-101"]
    u = units["XL2/3-1201"]
    assert u.list_price == Decimal("1970000.00") and u.price_per_m2 == Decimal("20000.00")
    assert u.gross_area == Decimal("98.50") and u.layout == "3室2厅2卫" and u.entrance == "1"
    assert units["XL2/3-1202"].list_price == Decimal("3000000.00")
    assert units["XL2/5-101"].status == "withheld"
    assert [u.name for u in sales.units.list(building="5")] == ["XL2/5-101"]
    assert len(sales.units.list(status="available")) == 3
    assert sales.units.get(u.id).name == "XL2/3-1201"
    # a re-import updates, never duplicates
    again = sales.units.import_file(tmp_path / "units.csv", project=PROJECT)
    assert (again.created, again.updated) == (0, 4)


def test_rejected_rows_are_reported_and_good_rows_kept(crm: CRM, tmp_path: Path) -> None:
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    from recrm_sales import service

    path = tmp_path / "bad.csv"
    path.write_bytes((HEADER + "3,1,12,1201,98.5,,,,1970000,,可售\n"
                      "3,1,x,1202,98.5,,,,1970000,,可售\n"
                      "3,1,12,1203,-1,,,,1970000,,可售\n"
                      "3,1,12,1204,90,,,,,,可售\n"
                      "3,1,12,1205,90,,,,1000000,,已售\n").encode("gbk"))
    errors = tmp_path / "errors.csv"
    outcome = service(crm).units.import_file(path, project=PROJECT, errors_path=str(errors))
    assert (outcome.rows, outcome.created, outcome.rejected) == (5, 1, 4)
    assert [(r.row, r.field) for r in outcome.rejections] == [
        (2, "floor"), (3, "gross_area"), (4, "list_price"), (5, "status")]
    text = errors.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "row,field,reason" and "floor" in text
    unknown = tmp_path / "unknown.csv"
    unknown.write_text(HEADER.replace("楼栋", "项目,楼栋") + "ZZ9,3,1,12,1201,98.5,,,,1,,可售\n",
                       encoding="utf-8")
    # a project not yet registered is created, as the core's import does while
    # auto_create_projects is on (test_sales_units_probe has it off)
    assert service(crm).units.import_file(unknown).created == 1
    assert "ZZ9" in [p.code for p in crm.projects.list()]


def test_prices_in_wan_and_yi_are_taken_as_a_budget_is(crm: CRM, tmp_path: Path) -> None:
    # a 销控表 writes total prices in 万: "150万" was refused as "not a number"
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    from recrm_sales import service

    path = tmp_path / "wan.csv"
    path.write_text(HEADER + "3,1,12,1201,100,,,,150万,,可售\n"
                    "3,1,12,1202,100,,,,1.5亿,,可售\n"
                    "3,1,12,1203,100,,,,\"1,500,000\",,可售\n"
                    "3,1,12,1204,100,,,,,2.35万,可售\n"
                    "3,1,12,1205,100,,,,-150万,,可售\n"
                    "3,1,12,1206,100,,,,很多万,,可售\n"
                    "3,1,12,1207,100,,,,20000亿,,可售\n", encoding="utf-8")
    outcome = service(crm).units.import_file(path, project=PROJECT)
    assert (outcome.created, outcome.rejected) == (4, 3), outcome.rejections
    assert [(r.row, r.field) for r in outcome.rejections] == [
        (5, "list_price"), (6, "list_price"), (7, "list_price")]
    reasons = [r.reason for r in outcome.rejections]
    assert "cannot be negative" in reasons[0] and "is not a number" in reasons[1]
    assert "below 10^12" in reasons[2]
    prices = {u.name: (u.list_price, u.price_per_m2) for u in service(crm).units.list()}
    assert prices == {
        "XL2/3-1201": (Decimal("1500000.00"), Decimal("15000.00")),
        "XL2/3-1202": (Decimal("150000000.00"), Decimal("1500000.00")),
        "XL2/3-1203": (Decimal("1500000.00"), Decimal("15000.00")),
        "XL2/3-1204": (Decimal("2350000.00"), Decimal("23500.00"))}


def test_import_reads_a_workbook(crm: CRM, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    from recrm_sales import service

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["project", "building", "floor", "room", "gross_area", "price_per_m2"])
    sheet.append([PROJECT, "7", 3, "301", 100.25, 21000])
    sheet.append([PROJECT, "7", 3, "302", "abc", 21000])
    path = tmp_path / "units.xlsx"
    book.save(path)
    outcome = service(crm).units.import_file(path)
    assert (outcome.created, outcome.rejected) == (1, 1)
    assert outcome.rejections[0].sheet_row == 3
    [unit] = service(crm).units.list(building="7")
    assert unit.list_price == Decimal("2105250.00")


def test_hold_release_and_expiry(crm: CRM, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    a, b = customer(crm, "13800000001"), customer(crm, "13800000002")
    hold = sales.units.hold("XL2/3-1201", a, now=NOW)
    assert hold.state == "active" and hold.expires_at == NOW + dt.timedelta(minutes=30)
    with pytest.raises(Refused, match="held for another customer"):
        sales.units.hold("XL2/3-1201", b, now=NOW + dt.timedelta(minutes=29))
    with pytest.raises(Refused, match="withheld"):
        sales.units.hold("XL2/5-101", b, now=NOW)
    later = NOW + dt.timedelta(minutes=31)
    # read: the expired hold reads as released
    [unit] = [u for u in sales.units.list(now=later) if u.name == "XL2/3-1201"]
    assert unit.status == "available" and unit.hold_customer_id is None
    assert sales.units.holds(now=later) == []
    # write: expired under lock, then a new hold
    taken = sales.units.hold("XL2/3-1201", "13800000002", now=later)
    assert taken.customer_id == b
    released = sales.units.release("XL2/3-1201", now=later)
    assert released.state == "released"
    with pytest.raises(Refused, match="not held"):
        sales.units.release("XL2/3-1201", now=later)
    with pytest.raises(NotFound):
        sales.units.hold("XL2/9-999", a)
    with pytest.raises(InvalidInput):
        sales.units.hold("XL2-1201", a)


@pytest.mark.recrm_settings(sales={"hold_minutes": 5})
def test_hold_minutes_setting(crm: CRM, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    hold = sales.units.hold("XL2/3-1202", customer(crm, "13800000001"), now=NOW)
    assert hold.expires_at == NOW + dt.timedelta(minutes=5)
