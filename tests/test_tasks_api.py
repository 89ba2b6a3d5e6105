"""``/v1/tasks`` and ``/v1/pool`` of the HTTP API, on both backends."""

from __future__ import annotations

import datetime as dt

import pytest

from recrm_core import CRM
from recrm_core.testing import ApiClients, problem_of

DUE = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()


@pytest.fixture
def cid(crm: CRM) -> int:
    return crm.customers.add({"name": "王伟", "mobile": "13812345678", "project": "XL2",
                              "owner_staff": "s1"}).customer.id


def test_tasks(api_client: ApiClients, cid: int) -> None:
    sales = api_client("sales", staff="s1")
    made = sales.post("/v1/tasks", json={"customer_id": cid, "project": "XL2",
                                         "kind": "call", "due_at": DUE, "note": "问预算"})
    assert made.status_code == 201, made.text
    task = made.json()
    assert (task["owner_staff"], task["created_by"], task["status"]) == ("s1", "s1", "open")
    assert [t["id"] for t in sales.get("/v1/tasks").json()] == [task["id"]]
    assert sales.get(f"/v1/tasks/{task['id']}").json()["note"] == "问预算"
    other = api_client("sales", staff="s2")
    assert other.get("/v1/tasks").json() == []
    problem_of(other.get(f"/v1/tasks/{task['id']}"), 403)
    problem_of(other.post(f"/v1/tasks/{task['id']}/done"), 403)
    problem_of(other.post("/v1/tasks", json={"customer_id": cid, "project": "XL2",
                                             "kind": "call", "due_at": DUE, "staff": "s1"}), 403)
    problem_of(sales.post("/v1/tasks", json={"customer_id": cid, "project": "XL2",
                                             "kind": "call", "due_at": "2026-01-01T10:00"}), 422)
    analyst = api_client("analyst")
    assert analyst.get("/v1/tasks").json()[0]["note"] == "(hidden)"
    problem_of(api_client("partner", staff="p1").get("/v1/tasks"), 403)
    done = sales.post(f"/v1/tasks/{task['id']}/done", json={})
    assert done.status_code == 200 and done.json()["status"] == "done"
    problem_of(sales.post(f"/v1/tasks/{task['id']}/done"), 409)
    problem_of(sales.post(f"/v1/tasks/{task['id']}/cancel", json={"reason": "x"}), 409)
    problem_of(sales.get("/v1/tasks/999999"), 404)
    admin = api_client("admin")
    assert admin.post("/v1/tasks/sweep").json() == {"after_visit": 0, "prospect_idle": 0}
    problem_of(sales.post("/v1/tasks/sweep"), 403)
    report = admin.get("/v1/tasks/report", params={"from": "2020-01-01"}).json()
    assert [(r["staff"], r["created"]) for r in report] == [("s1", 1)]
    problem_of(admin.get("/v1/tasks/report", params={"from": "2020-01-02",
                                                     "to": "2020-01-01"}), 422)
    second = admin.post("/v1/tasks", json={"customer_id": cid, "project": "XL2",
                                           "kind": "sms", "due_at": DUE, "staff": "s1"}).json()
    cancelled = admin.post(f"/v1/tasks/{second['id']}/cancel", json={"reason": "不需要"})
    assert cancelled.json()["cancel_reason"] == "不需要"
    assert len(admin.get("/v1/tasks", params={"status": "all"}).json()) == 2
    view = sales.get(f"/v1/customers/{cid}").json()
    assert view["tasks"] == []


def test_pool(api_client: ApiClients, crm: CRM, cid: int) -> None:
    admin = api_client("admin")
    sales = api_client("sales", staff="s2")
    problem_of(sales.post("/v1/pool/claims", json={"customer_id": cid, "project": "XL2"}), 409)
    assert admin.post("/v1/pool/sweep", params={"dry_run": True}).json() == {
        "dry_run": True, "released": []}
    problem_of(sales.post("/v1/pool/releases", json={"from_staff": "s1"}), 403)
    assert admin.post("/v1/pool/releases", json={"from_staff": "s1"}).json() == {"released": 1}
    pooled = sales.get("/v1/pool", params={"project": "XL2"}).json()
    assert [p["customer_id"] for p in pooled] == [cid]
    problem_of(sales.post("/v1/pool/claims", json={"customer_id": cid, "project": "XL2",
                                                   "staff": "s3"}), 403)
    won = sales.post("/v1/pool/claims", json={"customer_id": cid, "project": "XL2"})
    assert won.status_code == 201 and won.json()["staff"] == "s2"
    lost = problem_of(api_client("sales", staff="s3").post(
        "/v1/pool/claims", json={"customer_id": cid, "project": "XL2"}), 409)
    assert "s2 has it" in lost["detail"]
    report = admin.get("/v1/pool/report").json()
    assert (report[0]["released"], report[0]["claimed"]) == (1, 1)
    problem_of(api_client("partner", staff="p1").get("/v1/pool", params={"project": "XL2"}),
               403)
