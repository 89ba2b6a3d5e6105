"""A date cell stored as a number (45296, what Excel keeps for 2024-01-04) is rejected
with a reason that says so, not the generic "not like 2024-01-02"; it is not converted
(in a CSV file a bare number is as likely a typing mistake)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recrm_core import CRM, RejectedRow
from recrm_core.values import parse_date

SERIAL = "looks like an Excel date serial: format the column as a date"


@pytest.mark.parametrize("raw", ["45296", "45296.5", 45296, "４５２９６"])
def test_a_date_serial_is_named_as_one(raw: object) -> None:
    with pytest.raises(ValueError, match=SERIAL):
        parse_date(raw)


@pytest.mark.parametrize("raw", ["2024", "452961", "45296x"])
def test_other_numbers_keep_the_generic_reason(raw: str) -> None:
    with pytest.raises(ValueError, match="is not like 2024-01-02"):
        parse_date(raw)


def test_the_customer_import_rejects_a_serial_birth_date_with_that_reason(
        crm: CRM, tmp_path: Path) -> None:
    csv = tmp_path / "customers.csv"
    csv.write_text("姓名,手机,出生日期\n王伟,13812345678,45296\n", encoding="utf-8")
    rejected: list[RejectedRow] = []
    result = crm.importer.import_file(csv, on_reject=rejected.append)
    assert (result.rows, result.rejected) == (1, 1)
    assert rejected[0].field == "birth_date"
    assert rejected[0].reason.startswith(f"45296 {SERIAL}"), rejected[0].reason
