"""Found by probing the HTTP API as a new user: a customer id sent as a JSON number
(``{"customer": 20}``, as the core's routes take ``customer_id``) was 422 "Input
should be a valid string"; it is that customer, on every sales route that names one.
A boolean is still no customer."""

from __future__ import annotations

from pathlib import Path

import pytest
from sales_testkit import customer, setup_units

from recrm_core import CRM
from recrm_core.testing import ApiClients, problem_of

pytestmark = pytest.mark.recrm_plugins("sales")


def test_a_customer_id_as_a_json_number(crm: CRM, api_client: ApiClients,
                                        tmp_path: Path) -> None:
    setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001")
    li = customer(crm, "13800000002")
    manager = api_client("manager", staff="m1")
    held = manager.post("/v1/sales/units/XL2/3-1201/hold", json={"customer": wang})
    assert held.status_code == 201, held.text
    assert held.json()["customer_id"] == wang
    made = manager.post("/v1/sales/deals", json={
        "unit": "XL2/3-1201", "buyer": wang, "deposit": "50000",
        "parties": [{"customer": li, "role": "spouse", "share": "50"}]})
    assert made.status_code == 201, made.text
    assert sorted(p["customer_id"] for p in made.json()["parties"]) == sorted([wang, li])
    ticket = manager.post("/v1/sales/tickets", json={"project": "XL2", "customer": li,
                                                     "amount": "20000"})
    assert ticket.status_code == 201, ticket.text
    assert ticket.json()["customer_id"] == li
    body = problem_of(manager.post("/v1/sales/units/XL2/3-1202/hold",
                                   json={"customer": True}), 422)
    assert body["field"] == "customer"
