"""Shared helpers of the sales tests (a plain module, unique name across test dirs)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from recrm_sales import Sales, service

from recrm_core import CRM

PROJECT = "XL2"
NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
HEADER = "楼栋,单元,楼层,房号,建筑面积,套内面积,户型,朝向,总价,单价,状态\n"
ROWS = (
    "3,1,12,1201,98.50,80.20,3室2厅2卫,南,\"1,970,000\",,可售\n"
    "3,1,12,1202,120.00,99.00,4室2厅2卫,南北,,25000,可售\n"
    "3,2,12,1203,88.00,70.00,2室2厅1卫,东,1760000.00,,可售\n"
    "5,1,1,101,140.00,118.00,4室2厅3卫,南,3500000,,销控\n"
)


def setup_units(crm: CRM, tmp_path: Path) -> Sales:
    """Project XL2 with buildings 3 (three units for sale) and 5 (one withheld)."""
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    sales = service(crm)
    path = tmp_path / "units.csv"
    path.write_text(HEADER + ROWS, encoding="utf-8")
    outcome = sales.units.import_file(path, project=PROJECT)
    assert outcome.rejected == 0, outcome.rejections
    return sales


def customer(crm: CRM, mobile: str, name: str | None = None) -> int:
    return crm.customers.add({"mobile": mobile, "name": name}).customer.id


def stage_at(crm: CRM, cid: int, project: str = PROJECT) -> str | None:
    return next((p.stage for p in crm.customers.get(cid).projects if p.project == project),
                None)
