"""A list file's headers are read as the customer import reads them: padded (``手　机``,
``身份证 号``), under title rows, with unknown columns still ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from newsletter_testkit import add_customers
from recrm_newsletter import service

from recrm_core import CRM, InvalidInput

pytestmark = pytest.mark.recrm_plugins("newsletter")


@pytest.mark.parametrize("mobile", ["手　机", "手 机 号", "手\u00a0机"])
def test_a_padded_mobile_header_finds_the_customers(crm: CRM, tmp_path: Path,
                                                     mobile: str) -> None:
    add_customers(crm, 2)
    path = tmp_path / "vip.csv"
    path.write_text(f"VIP 名单\n姓　名,{mobile},备 注\n"
                    "王伟0,13812340000,\n王伟1,13812340001,老客户\n", encoding="utf-8")
    counts = service(crm).import_list("vip", path)
    assert (counts["rows"], counts["added"], counts["ignored_columns"]) == (2, 2, ["备 注"])


def test_a_unit_on_the_mobile_header_is_no_mobile_column(crm: CRM, tmp_path: Path) -> None:
    """The customer import's units hold here too: only the budget may say 元, so
    ``手机(元)`` is an unknown (ignored) column, and a file without a mobile column is
    refused rather than read."""
    add_customers(crm, 1)
    path = tmp_path / "vip.csv"
    path.write_text("姓名,手机(元)\n王伟0,13812340000\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"no mobile or ID-card column .*\(手机\(元\)\)"):
        service(crm).import_list("vip", path)
