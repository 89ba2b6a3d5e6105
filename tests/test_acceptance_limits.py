"""Values that overflow or cannot be stored are refused as input, never crash."""

from __future__ import annotations

import pytest

from recrm_core import CRM, InvalidInput, NotFound
from recrm_core.testing import RecrmCliRunner

HUGE = 2**40


def test_huge_ids_are_not_found(crm: CRM) -> None:
    with pytest.raises(NotFound, match=f"no customer {HUGE}"):
        crm.customers.get(HUGE)
    with pytest.raises(NotFound):
        crm.customers.set_stage(HUGE, "visitor", "XL2")
    with pytest.raises(NotFound, match=f"no case {HUGE}"):
        crm.cases.get(HUGE)
    with pytest.raises(NotFound):
        crm.cases.start(HUGE)
    assert crm.customers.get_many([HUGE, -1]) == []


def test_huge_ids_and_limits_on_the_cli(cli_runner: RecrmCliRunner) -> None:
    shown = cli_runner.invoke("customers", "show", str(HUGE))
    assert shown.exit_code == 1 and "no customer" in shown.stderr
    listed = cli_runner.invoke("cases", "list", "--limit", str(2**70), "--json")
    assert listed.exit_code == 0 and listed.json() == []


def test_undecodable_and_nul_text_refused(crm: CRM) -> None:
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    with pytest.raises(InvalidInput, match="project"):
        crm.customers.set_stage(cid, "visitor", "ab\udcff")
    with pytest.raises(InvalidInput, match="NUL"):
        crm.cases.open({"customer_id": cid, "category": "repair", "subject": "漏水",
                        "description": "厨房\x00漏水"})
    with pytest.raises(InvalidInput, match="NUL"):
        crm.interactions.log(cid, {"kind": "call", "summary": "a\x00b"})
    assert crm.cases.list(customer_id=cid) == []
