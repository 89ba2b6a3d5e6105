"""The 销控表 import as a new user's spreadsheet gives it: a unit twice in one file,
full-width digits, control characters in codes."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from recrm_sales import service
from recrm_sales.models import ImportOutcome
from sales_testkit import HEADER, PROJECT

from recrm_core import CRM, InvalidInput, UnknownProject

pytestmark = pytest.mark.recrm_plugins("sales")


def _import(crm: CRM, tmp_path: Path, *rows: str) -> ImportOutcome:
    """The 销控表 ``rows`` (CSV lines after the header) imported into project XL2."""
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    path = tmp_path / "units.csv"
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    return service(crm).units.import_file(path, project=PROJECT)


def test_a_unit_twice_in_one_file_rejects_the_later_row(crm: CRM, tmp_path: Path) -> None:
    """The second row of the same unit used to overwrite the first silently (counted
    as an update): which one the user meant is theirs to say, so the later row is
    rejected naming the earlier one and the first row's values stay."""
    outcome = _import(crm, tmp_path, "3,1,12,1201,98.50,,,,1970000,,可售",
                      "3,1,12,1202,98.50,,,,1970000,,可售",
                      "3,1,12,1201,120.00,,,,2500000,,销控", "３,1,12,１２０２,90,,,,1,,可售")
    assert (outcome.rows, outcome.created, outcome.updated, outcome.rejected) == (4, 2, 0, 2)
    assert [(r.row, r.field) for r in outcome.rejections] == [(3, "room"), (4, "room")]
    assert "row 1" in outcome.rejections[0].reason
    assert "row 2" in outcome.rejections[1].reason
    unit = service(crm).units.get(f"{PROJECT}/3-1201")
    assert (unit.gross_area, unit.status) == (Decimal("98.50"), "available")


def test_a_unit_twice_across_batches_is_still_one_file(
        crm: CRM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recrm_sales import inventory

    monkeypatch.setattr(inventory, "BATCH", 1)
    outcome = _import(crm, tmp_path, "3,1,12,1201,98.50,,,,1970000,,可售",
                      "3,1,12,1201,120.00,,,,2500000,,可售")
    assert (outcome.created, outcome.updated, outcome.rejected) == (1, 0, 1)
    assert service(crm).units.get(f"{PROJECT}/3-1201").gross_area == Decimal("98.50")


def test_full_width_building_and_room_are_the_ascii_unit(crm: CRM, tmp_path: Path) -> None:
    """Typed on a Chinese keyboard, ``３`` and ``１２０１`` are 3 and 1201: one unit, found
    by either spelling (the core cleans codes the same way)."""
    outcome = _import(crm, tmp_path, "３,1,１２,１２０１,98.50,,,,1970000,,可售")
    assert outcome.created == 1, outcome.rejections
    assert service(crm).units.get(f"{PROJECT}/3-1201").room == "1201"
    assert service(crm).units.get(f"{PROJECT}/３-１２０１").room == "1201"


def test_a_control_character_in_a_code_rejects_its_row(crm: CRM, tmp_path: Path) -> None:
    """An escape sequence in a building, room or layout would repaint the terminal of
    whoever lists the units; a zero-width space would make two units that print alike."""
    outcome = _import(crm, tmp_path, "3\x1b[2J,1,12,1201,98.50,,,,1970000,,可售",
                      "3,1,12,12\x1b]0;x\x0702,98.50,,,,1970000,,可售",
                      "3,1,12,1203,98.50,,3室\x1b[31m,,1970000,,可售",
                      "3,1,12,12\u200b04,98.50,,,,1970000,,可售")
    assert [(r.row, r.field) for r in outcome.rejections] == [
        (1, "building"), (2, "room"), (3, "layout")]
    assert all("\x1b" not in r.reason for r in outcome.rejections)
    assert [u.room for u in service(crm).units.list()] == ["1204"]


def test_a_unit_twice_in_rows_given_by_code_is_refused(crm: CRM) -> None:
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    row = {"building": "3", "floor": "12", "room": "1201", "gross_area": "98.5",
           "list_price": "1970000"}
    with pytest.raises(InvalidInput, match=r"row 2: .*also on row 1"):
        service(crm).units.add([row, row | {"gross_area": "120"}], project=PROJECT)
    assert service(crm).units.list() == []


def test_a_missing_floor_or_gross_area_is_named_as_missing(crm: CRM, tmp_path: Path) -> None:
    """Found by probing as a new user: a 销控表 without a 楼层 column (the room number
    says the floor) had every row rejected as "a floor is a whole number", and a blank
    建筑面积 as "'' is not a number"; each now says the value is missing and where it
    goes. The good rows are still imported."""
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    path = tmp_path / "no_floor.csv"
    path.write_text("楼栋,房号,建筑面积,总价\n5,501,89.5,2500000\n", encoding="utf-8")
    outcome = service(crm).units.import_file(path, project=PROJECT)
    assert [(r.row, r.field, r.reason) for r in outcome.rejections] == [
        (1, "floor", "no floor: add a 楼层 (floor) column or fill its cell")]
    outcome = _import(crm, tmp_path, "3,1,12,1201,,,,,1970000,,可售",
                      "3,1,,1202,98.5,,,,1970000,,可售", "3,1,12,1203,98.5,,,,1970000,,可售")
    assert [(r.row, r.field, r.reason) for r in outcome.rejections] == [
        (1, "gross_area", "no gross_area: add a 建筑面积 (gross_area) column or fill its cell"),
        (2, "floor", "no floor: add a 楼层 (floor) column or fill its cell")]
    assert [u.name for u in service(crm).units.list()] == ["XL2/3-1203"]


def test_a_spreadsheet_error_value_in_an_area_or_price_is_named(crm: CRM,
                                                                tmp_path: Path) -> None:
    """Found by a new user's probe: a 销控表 whose formulas failed (``#DIV/0!`` in the
    area, ``#N/A`` from a lookup in the price) is rejected saying the cell holds the
    sheet's error value, as the core's budget says, not that it "is not a number"."""
    outcome = _import(crm, tmp_path, "3,1,12,1201,#DIV/0!,,,,1970000,,可售",
                      "3,1,12,1202,98.50,#REF!,,,1970000,,可售",
                      "3,1,12,1203,98.50,,,,#N/A,,可售",
                      "3,1,12,1204,98.50,,,,,#VALUE!,可售",
                      "3,1,12,1205,98.50,,,,1970000,,可售")
    assert [(r.row, r.field, r.reason) for r in outcome.rejections] == [
        (row, field, f"{field} is the spreadsheet error value {error}, not a number: fix"
         " its formula in the sheet or clear the cell")
        for row, field, error in ((1, "gross_area", "#DIV/0!"), (2, "net_area", "#REF!"),
                                  (3, "list_price", "#N/A"), (4, "price_per_m2", "#VALUE!"))]
    assert [u.room for u in service(crm).units.list()] == ["1205"]


def test_a_floor_a_spreadsheet_wrote_as_a_float_is_a_whole_floor(crm: CRM,
                                                                  tmp_path: Path) -> None:
    """Found by a new user's probe: a 销控表 whose 楼层 column Excel held as numbers,
    exported to CSV as ``12.0``, had every row rejected ("a floor is a whole number");
    the core reads a mobile's ``13812345678.0`` as its digits, and a floor the same.
    A fraction, a word or a sheet's error value is still refused, saying which."""
    outcome = _import(crm, tmp_path, "3,1,12.0,1201,98.50,,,,1970000,,可售",
                      "3,1,１２,1202,98.50,,,,1970000,,可售",
                      "3,1,-1.00,B101,30,,,,300000,,可售",
                      "3,1,12.5,1203,98.50,,,,1970000,,可售",
                      "3,1,十二,1204,98.50,,,,1970000,,可售",
                      "3,1,#REF!,1205,98.50,,,,1970000,,可售",
                      "3,1,301.0,1206,98.50,,,,1970000,,可售")
    assert [(r.row, r.field, r.reason) for r in outcome.rejections] == [
        (4, "floor", "floor is not a whole number"), (5, "floor", "floor is not a whole number"),
        (6, "floor", "floor is the spreadsheet error value #REF!, not a number: fix its"
         " formula in the sheet or clear the cell"),
        (7, "floor", "a floor is between -10 and 300")]
    assert {u.room: u.floor for u in service(crm).units.list()} == {
        "1201": 12, "1202": 12, "B101": -1}


def test_an_unknown_project_follows_the_core_import(crm_factory: Any, tmp_path: Path) -> None:
    """Found by a new user's probe: a 销控表 naming a project not yet registered was
    rejected row by row as "unknown project" whatever ``auto_create_projects`` said,
    where the core's import creates it (the default) or says "no such project"."""
    path = tmp_path / "units.csv"
    path.write_text(HEADER + "3,1,12,1201,98.50,,,,1970000,,可售\n", encoding="utf-8")
    off = crm_factory(plugins=["sales"], settings={"auto_create_projects": False})
    outcome = service(off).units.import_file(path, project="XL9")
    assert [(r.row, r.field, r.reason) for r in outcome.rejections] == [
        (1, "project", "no such project 'XL9'")]
    assert off.projects.list() == []
    with pytest.raises(UnknownProject):
        service(off).units.add([{"building": "3", "floor": "12", "room": "1201",
                                 "gross_area": "98.5", "list_price": "1970000"}],
                               project="XL9")
    on = crm_factory(plugins=["sales"])
    outcome = service(on).units.import_file(path, project="XL9")
    assert (outcome.created, outcome.rejected) == (1, 0)
    assert [p.code for p in on.projects.list()] == ["XL9"]
    assert service(on).units.get("XL9/3-1201").floor == 12
