"""Found by probing as a new user: a bank reference typed with full-width letters
(``ＢＡＮＫ-2``) or pasted with a zero-width space recorded the same money a second
time, as another receipt, and a contract number so typed signed a second contract of
one number; both are cleaned as the core cleans codes, and a control character in
either is refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sales_testkit import NOW, customer, setup_units

from recrm_core import CRM, InvalidInput, Refused

pytestmark = pytest.mark.recrm_plugins("sales")


def test_a_reference_typed_another_way_is_the_same_receipt(crm: CRM, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001", "王伟")
    deal = sales.deals.subscribe("XL2/3-1201", wang, deposit="50000", now=NOW).id
    day = dt.date(2026, 3, 2)
    first = sales.payments.receive(deal, "5000", date=day, ref="BANK-2")
    for spelling in ("ＢＡＮＫ－２", "BANK-\u200b2", " BANK-2\u3000"):
        again = sales.payments.receive(deal, "5000", date=day, ref=spelling)
        assert (again.id, again.ref) == (first.id, "BANK-2")
    assert sales.deals.show(deal).received == Decimal("55000.00")  # the deposit and 5000
    with pytest.raises(InvalidInput, match="control character") as info:
        sales.payments.receive(deal, "5000", date=day, ref="BANK\x1b[2J")
    assert info.value.field == "ref"
    with pytest.raises(InvalidInput, match="longer than 64"):
        sales.payments.receive(deal, "5000", date=day, ref="X" * 65)


def test_a_contract_number_typed_another_way_is_the_same_number(crm: CRM,
                                                                 tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001", "王伟")
    li = customer(crm, "13800000002", "李娜")
    first = sales.deals.subscribe("XL2/3-1201", wang, deposit="50000", now=NOW).id
    second = sales.deals.subscribe("XL2/3-1202", li, deposit="50000", now=NOW).id
    signed = sales.deals.sign(first, contract_no="ＨＴ－１", total="1970000", payment="full",
                              now=NOW)
    assert signed.contract_no == "HT-1"
    with pytest.raises(Refused, match=f"contract HT-1 is deal {first}'s"):
        sales.deals.sign(second, contract_no="HT-\u200b1", total="3000000", payment="full",
                         now=NOW)
    with pytest.raises(InvalidInput, match="control character") as info:
        sales.deals.sign(second, contract_no="HT\x1b[2J", total="3000000", payment="full",
                         now=NOW)
    assert info.value.field == "contract_no"
