"""``/v1/sales/...``: hold, subscribe, sign, schedule, receive, receivables and the
report over HTTP; refusals are 409 problems, roles are checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sales_testkit import customer, setup_units

from recrm_core import CRM
from recrm_core.testing import ApiClients, problem_of

pytestmark = pytest.mark.recrm_plugins("sales")


def test_the_flow_over_http(crm: CRM, api_client: ApiClients, tmp_path: Path) -> None:
    setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001")
    manager = api_client("manager", staff="m1")
    listed = manager.get("/v1/sales/units", params={"status": "available"})
    assert listed.status_code == 200 and len(listed.json()) == 3
    held = manager.post("/v1/sales/units/XL2/3-1201/hold", json={"customer": str(wang)})
    assert held.status_code == 201, held.text
    problem_of(manager.post("/v1/sales/units/XL2/3-1201/hold",
                            json={"customer": "13800000002"}), 409)
    made = manager.post("/v1/sales/deals", json={
        "unit": "XL2/3-1201", "buyer": str(wang), "deposit": "50000",
        "parties": [{"customer": "13800000002", "role": "spouse", "share": "50"}]})
    assert made.status_code == 201, made.text
    deal = made.json()
    assert deal["amount"] == "1970000.00" and len(deal["parties"]) == 2
    signed = manager.post(f"/v1/sales/deals/{deal['id']}/sign", json={
        "contract_no": "HT-1", "total": "1970000", "payment": "full"})
    assert signed.json()["state"] == "contracted"
    scheduled = manager.post(f"/v1/sales/deals/{deal['id']}/schedule", json={"plan": "full"})
    assert [x["kind"] for x in scheduled.json()["schedule"]] == ["deposit", "down_payment"]
    for _ in range(2):
        got = manager.post(f"/v1/sales/deals/{deal['id']}/receipts",
                           json={"amount": "50000", "date": "2026-03-02", "ref": "B1"})
        assert got.status_code == 201
    owed = manager.get("/v1/sales/receivables").json()
    assert [r["outstanding"] for r in owed] == ["1870000.00"]  # deposit and B1 received
    report = manager.get("/v1/sales/report", params={"project": "XL2"}).json()
    assert report["sold"] == 1 and report["for_sale"] == 3
    analyst = api_client("analyst", staff="an1")
    assert analyst.get("/v1/sales/report").status_code == 200
    problem_of(analyst.post(f"/v1/sales/deals/{deal['id']}/cancel",
                            json={"reason": "x"}), 403)
    sales_key = api_client("sales", staff="s1")
    problem_of(sales_key.post(f"/v1/sales/deals/{deal['id']}/cancel",
                              json={"reason": "x"}), 403)
    cancelled = manager.post(f"/v1/sales/deals/{deal['id']}/cancel", json={"reason": "退房"})
    assert cancelled.json()["state"] == "cancelled"


def test_tickets_and_changes_over_http(crm: CRM, api_client: ApiClients,
                                       tmp_path: Path) -> None:
    setup_units(crm, tmp_path)
    manager = api_client("manager", staff="m1")
    issued = manager.post("/v1/sales/tickets", json={"project": "XL2",
                                                     "customer": "13800000001",
                                                     "amount": "20000"})
    assert issued.status_code == 201 and issued.json()["number"] == 1
    called = manager.post("/v1/sales/tickets/call", json={"project": "XL2", "next": 5})
    assert [t["number"] for t in called.json()] == [1]
    made = manager.post("/v1/sales/deals", json={
        "unit": "XL2/3-1201", "buyer": "13800000001", "deposit": "50000", "ticket": 1}).json()
    assert manager.get("/v1/sales/tickets").json()[0]["state"] == "converted"
    moved = manager.post(f"/v1/sales/deals/{made['id']}/change-unit",
                         json={"unit": "XL2/3-1202", "reason": "换房"})
    assert moved.json()["unit"] == "XL2/3-1202"
    changed = manager.post(f"/v1/sales/deals/{made['id']}/change-buyer", json={
        "buyer": "13800000002", "reason": "更名",
        "parties": [{"customer": "13800000001", "role": "co_owner", "share": "50"}]})
    assert changed.status_code == 200, changed.text
    problem_of(manager.post(f"/v1/sales/deals/{made['id']}/handover", json={}), 409)


def test_a_plan_over_http_is_built_in_never_a_file_of_the_server(
        crm: CRM, api_client: ApiClients, tmp_path: Path) -> None:
    """A TOML plan is a file on the office's machine: over HTTP, a path would make the
    server read its own files (and say whether they exist)."""
    setup_units(crm, tmp_path)
    manager = api_client("manager", staff="m1")
    deal = manager.post("/v1/sales/deals", json={
        "unit": "XL2/3-1201", "buyer": "13800000001", "deposit": "50000"}).json()["id"]
    plan = tmp_path / "plan.toml"
    plan.write_text('[[payment]]\nkind = "deposit"\ndue = 2026-03-02\namount = "50000.00"\n'
                    '[[payment]]\nkind = "down_payment"\ndue = 2026-03-09\n'
                    'amount = "1920000.00"\n', encoding="utf-8")
    for named in (str(plan), "/etc/passwd", str(tmp_path / "missing.toml")):
        refused = problem_of(manager.post(f"/v1/sales/deals/{deal}/schedule",
                                          json={"plan": named}), 422)
        assert refused["field"] == "plan"
        assert "command line" in refused["detail"] and named not in refused["detail"]
    assert manager.get(f"/v1/sales/deals/{deal}").json()["schedule"] == []
    assert manager.post(f"/v1/sales/deals/{deal}/schedule",
                        json={"plan": "instalments:12"}).status_code == 200
