"""The 销控表 import, probed as a new user (session 7): rooms numbered per entrance
(单元), and prices the file's figures multiply beyond what the database holds."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from recrm_sales import service
from recrm_sales.models import ImportOutcome
from sales_testkit import HEADER, PROJECT

from recrm_core import CRM

pytestmark = pytest.mark.recrm_plugins("sales")


def _import(crm: CRM, tmp_path: Path, *rows: str, name: str = "units.csv") -> ImportOutcome:
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    return service(crm).units.import_file(path, project=PROJECT)


def test_a_room_of_another_entrance_never_overwrites_a_unit(crm: CRM, tmp_path: Path) -> None:
    """Many 销控表 number rooms per entrance: building 3 has a 501 in 单元 1 and in
    单元 2. The unit is named by building and room only, so importing the second
    entrance's sheet later used to update 3-501 of entrance 1 in place (its entrance,
    area and price replaced, counted as an update, exit 0): one unit's data silently
    lost. The row is rejected instead, saying how to name such a room."""
    first = _import(crm, tmp_path, "3,1,5,501,89.00,,,,1000000,,可售")
    assert first.created == 1
    second = _import(crm, tmp_path, "3,2,5,501,120.00,,,,2000000,,可售",
                     "3,2,5,502,120.00,,,,2000000,,可售", name="entrance2.csv")
    assert (second.created, second.updated, second.rejected) == (1, 0, 1)
    [bad] = second.rejections
    assert (bad.row, bad.field) == (1, "entrance")
    assert "entrance 1" in bad.reason and "2-501" in bad.reason
    unit = service(crm).units.get(f"{PROJECT}/3-501")
    assert (unit.entrance, unit.gross_area, unit.list_price) == (
        "1", Decimal("89.00"), Decimal("1000000.00"))


def test_the_same_entrance_or_none_still_updates_in_place(crm: CRM, tmp_path: Path) -> None:
    _import(crm, tmp_path, "3,1,5,501,89.00,,,,1000000,,可售", "3,,5,502,89.00,,,,1000000,,可售")
    again = _import(crm, tmp_path, "3,1,5,501,90.00,,,,1100000,,可售",
                    "3,2,5,502,91.00,,,,1200000,,可售", name="again.csv")
    assert (again.created, again.updated, again.rejected) == (0, 2, 0), again.rejections
    assert service(crm).units.get(f"{PROJECT}/3-502").entrance == "2"
    spelled = _import(crm, tmp_path, "3,1单元,5,501,90.00,,,,1100000,,可售",
                      "3,一单元,5,501,90.00,,,,1100000,,可售", "3,02,5,502,90.00,,,,1100000,,可售",
                      name="spelled.csv")
    assert [(r.row, r.field) for r in spelled.rejections] == [(2, "room")]


def test_two_entrances_in_one_file_name_the_entrance(crm: CRM, tmp_path: Path) -> None:
    outcome = _import(crm, tmp_path, "3,1,5,501,89.00,,,,1000000,,可售",
                      "3,2,5,501,120.00,,,,2000000,,可售")
    [bad] = outcome.rejections
    assert (bad.row, bad.field) == (2, "entrance")
    assert "row 1" in bad.reason and "2-501" in bad.reason


def test_a_computed_price_too_large_rejects_its_row(crm: CRM, tmp_path: Path) -> None:
    """A price per ㎡ computed from the list price and a mistyped area (0.01 ㎡), or a
    list price from the price per ㎡ and a mistyped area, can exceed what the columns
    hold (below 10^12). On PostgreSQL the batch's insert failed as an internal error
    (exit 1, no row number) and took the batch's good rows with it; on SQLite the
    number was stored out of range. The row is rejected naming the field."""
    outcome = _import(crm, tmp_path, "2,1,1,101,89,,,,1000000,,",
                      "2,1,1,102,0.01,,,,99999999999,,",
                      "2,1,1,103,999999999,,,,,99999,",
                      "2,1,1,104,89,,,,1000000,,")
    assert [(r.row, r.field) for r in outcome.rejections] == [
        (2, "price_per_m2"), (3, "list_price")]
    assert all("10^12" in r.reason for r in outcome.rejections)
    assert [u.room for u in service(crm).units.list()] == ["101", "104"]
