"""Files probed as a new user (session 7): Excel's text prefix on key cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from recrm_core import CRM


def test_a_leading_apostrophe_in_a_csv_key_cell_is_excel_text_prefix(
        crm: CRM, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("姓名,手机,身份证号\n王伟,'13912345678,'11010519491231002X\n",
                    encoding="utf-8")
    result = crm.importer.import_file(path)
    assert (result.created, result.rejected) == (1, 0), result
    [found] = crm.customers.find(mobile="13912345678")
    assert found.id_card == "11010519491231002X"


@pytest.mark.parametrize("raw", ["'13912345678", "'139 1234 5678", "\uff0713912345678"])
def test_the_text_prefix_is_dropped_from_a_mobile_wherever_it_comes_from(raw: str) -> None:
    from recrm_core.identity import normalise_mobile

    assert normalise_mobile(raw) == "+8613912345678"


def test_only_one_leading_apostrophe_is_a_text_prefix() -> None:
    from recrm_core.identity import IdentityError, normalise_id_card, normalise_mobile

    with pytest.raises(IdentityError):
        normalise_mobile("''13912345678")
    with pytest.raises(IdentityError):
        normalise_mobile("13912345678'")
    assert normalise_id_card("'11010519491231002x") == "11010519491231002X"
