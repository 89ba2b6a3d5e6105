"""The club counts contracts by unit: an investor's second flat at the same project
is a second contract (and may reach a tier by contracts)."""

from __future__ import annotations

import pytest
from membership_helpers import club, owner

from recrm_core import CRM

pytestmark = pytest.mark.recrm_plugins("membership")


def test_a_second_unit_at_the_same_project_counts(crm: CRM) -> None:
    c = owner(crm, "13812345678", project="XL2", unit="1-1-101")
    assert club(crm).get(c.id).contracts == 1
    crm.customers.set_stage(c.id, "buyer", "XL2", unit="1-1-102", amount=3_000_000)
    assert club(crm).get(c.id).contracts == 2
    # The same contract again counts nothing.
    crm.customers.set_stage(c.id, "buyer", "XL2", unit="1-1-102", amount=3_000_000)
    assert club(crm).get(c.id).contracts == 2
