"""A NUL in a sales request's free text or staff id is the caller's mistake, named
(422), not PostgreSQL's error (a 500) -- and nothing of the request is kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sales_testkit import customer, setup_units

from recrm_core import CRM
from recrm_core.testing import ApiClients, problem_of

pytestmark = pytest.mark.recrm_plugins("sales")


@pytest.mark.parametrize("text", ["退\x00房", "a\ud800b"])
def test_a_reason_holding_a_nul_is_refused_by_name(crm: CRM, api_client: ApiClients,
                                                   tmp_path: Path, text: str) -> None:
    setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001")
    manager = api_client("manager", staff="m1")
    made = manager.post("/v1/sales/deals", json={
        "unit": "XL2/3-1201", "buyer": str(wang), "deposit": "50000"})
    assert made.status_code == 201, made.text
    deal = made.json()["id"]
    for action, body in [("cancel", {"reason": text}),
                         ("change-unit", {"unit": "XL2/3-1202", "reason": text}),
                         ("change-buyer", {"buyer": "13800000002", "reason": text})]:
        # As JSON sends them: a lone surrogate written "\ud800"
        sent = manager.post(f"/v1/sales/deals/{deal}/{action}", content=json.dumps(body),
                            headers={"Content-Type": "application/json"})
        refused = problem_of(sent, 422)
        assert refused["field"] == "reason", refused
    assert manager.get(f"/v1/sales/deals/{deal}").json()["state"] == "subscribed"


def test_a_staff_id_holding_a_nul_is_refused(crm: CRM, api_client: ApiClients,
                                             tmp_path: Path) -> None:
    setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001")
    manager = api_client("manager", staff="m1")
    refused = manager.post("/v1/sales/units/XL2/3-1201/hold",
                           json={"customer": str(wang), "staff": "m\x001"})
    assert refused.status_code in (404, 422), refused.text
    problem_of(refused, refused.status_code)
    listed = manager.get("/v1/sales/units", params={"status": "available"}).json()
    assert len(listed) == 3
