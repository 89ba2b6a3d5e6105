"""Who is calling: keys, roles and masking through the HTTP API, exactly as in the
CLI (channel ``api`` in the audit)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from recrm_core import CRM
from recrm_core.testing import ApiClients

MOBILE = "13812345678"
ID_CARD = "11010519491231002X"
EMAIL = "wang.wei@example.cn"
#: every spelling of the person's identifiers a response might carry
SECRETS = re.compile(r"13812345678|11010519491231002X|wang\.wei@example\.cn", re.I)


def _seed(api_client: ApiClients) -> dict[str, Any]:
    admin = api_client("admin")
    cid = admin.post("/v1/customers", json={
        "name": "王伟", "mobile": MOBILE, "id_card": ID_CARD, "email": EMAIL,
        "project": "XL2", "owner_staff": "sales1"}).json()["customer"]["id"]
    admin.post(f"/v1/customers/{cid}/interactions",
               json={"kind": "call", "summary": f"回电 {MOBILE}"})
    admin.post(f"/v1/customers/{cid}/consents", json={"channel": "sms", "granted": True})
    case_id = admin.post("/v1/cases", json={
        "customer_id": cid, "category": "complaint", "subject": f"投诉 {MOBILE}",
        "description": f"email {EMAIL}"}).json()["id"]
    return {"customer_id": cid, "case_id": case_id, "code": "XL2", "staff_id": "admin1",
            "action": "start", "job_id": 1, "task_id": 1, "incident_id": 1,
            "name": "funnel"}


#: a request for every operation: (method, path template, query, body)
CALLS: dict[str, tuple[dict[str, str] | None, Any]] = {
    "healthz": (None, None),
    "customers_add": (None, {"mobile": MOBILE, "id_card": ID_CARD}),
    "customers_find": ({"mobile": MOBILE}, None),
    "customers_reassign": (None, {"from_staff": "sales1", "to_staff": "sales2"}),
    "customers_view": (None, None),
    "customers_update": (None, {"name": "x"}),
    "customers_merge": (None, {"duplicate_id": 1}),
    "customers_set_stage": (None, {"stage": "owner", "project": "XL2"}),
    "customers_set_stages": (None, {"moves": [{"customer_id": 1, "stage": "owner",
                                               "project": "XL2"}]}),
    "interactions_log_many": (None, {"interactions": [{"customer_id": 1, "kind": "call"}]}),
    "customers_disclose": (None, {"reason": "ticket 7"}),
    "customers_export": (None, None),
    "customers_erase": (None, {"reason": "R-1"}),
    "interactions_log": (None, {"kind": "call"}),
    "interactions_list": (None, None),
    "consents_current": (None, None),
    "consents_record": (None, {"channel": "sms", "granted": False}),
    "cases_open": (None, {"customer_id": 1, "category": "repair", "subject": "x"}),
    "cases_list": (None, None),
    "cases_get": (None, None),
    "cases_act": (None, {"note": "x"}),
    "projects_list": (None, None),
    "projects_add": (None, {"code": "P9", "name": "x"}),
    "projects_get": (None, None),
    "staff_list": (None, None),
    "staff_get": (None, None),
    "segments_count": (None, {"definition": {"field": "mobile", "op": "eq", "value": MOBILE}}),
    "segments_customers": (None, {"definition": None}),
    "imports_create": (None, {"file": "name,mobile"}),  # 403 before the body is read
    "imports_list": (None, None),
    "imports_get": (None, None),
    "imports_errors": (None, None),
    "tasks_add": (None, {"customer_id": 1, "project": "XL2", "kind": "call",
                         "due_at": "2030-01-01T00:00:00Z"}),
    "tasks_list": (None, None),
    "tasks_sweep": (None, None),
    "tasks_report": (None, None),
    "tasks_get": (None, None),
    "tasks_done": (None, None),
    "tasks_cancel": (None, {"reason": "x"}),
    "pool_list": ({"project": "XL2"}, None),
    "pool_claim": (None, {"customer_id": 1, "project": "XL2"}),
    "pool_release": (None, {"from_staff": "sales1"}),
    "pool_sweep": (None, None),
    "pool_report": (None, None),
    "incidents_open": (None, {"title": f"漏水 {MOBILE}"}),
    "incidents_list": (None, None),
    "incidents_get": (None, None),
    "incidents_link": (None, {"cases": [1]}),
    "incidents_close": (None, None),
    "reports_list": (None, None),
    "reports_run": ({"by": "month"}, None),
    "reports_chart": (None, None),
}


def test_a_partner_key_walks_every_endpoint_and_sees_no_identifier(
        api_client: ApiClients) -> None:
    params = _seed(api_client)
    partner = api_client("partner", staff="agent1")
    spec = api_client.app.openapi()
    walked = set()
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            op = operation["operationId"]
            assert op in CALLS, f"add {op} to this walk"
            query, body = CALLS[op]
            path = template.format(**params)
            response = partner.request(method.upper(), path, params=query, json=body)
            assert response.status_code < 500, (op, response.text)
            assert not SECRETS.search(response.text), (op, response.text)
            if method != "get" and not op.startswith("segments_"):  # they change nothing
                assert response.status_code in (403, 422), (op, response.status_code)
            walked.add(op)
    assert walked == set(CALLS)
    # and what they may do, they do, masked
    found = partner.get("/v1/customers", params={"mobile": MOBILE}).json()
    assert len(found) == 1 and found[0]["masked"] is True
    assert found[0]["mobiles"] == ["138****5678"]


def test_keys_missing_wrong_revoked_or_of_staff_who_left_are_401(
        api_client: ApiClients, crm: CRM) -> None:
    key = api_client.key("sales", "s9")
    client = api_client(None)
    ok = client.get("/v1/projects", headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200
    for header in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"},
                   {"Authorization": f"Bearer {key[:-2]}xx"},
                   {"Authorization": "Bearer rk_zzzzzzzz_nope"}):
        denied = client.get("/v1/projects", headers=header)
        assert denied.status_code == 401, header
        assert denied.headers["www-authenticate"].startswith("Bearer")
        assert denied.headers["content-type"] == "application/problem+json"
    crm.apikeys.revoke(key[:11])
    assert client.get("/v1/projects", headers={"Authorization": f"Bearer {key}"}
                      ).status_code == 401
    other = api_client.key("service", "s10")
    crm.directory.leave("s10")
    assert client.get("/v1/projects", headers={"Authorization": f"Bearer {other}"}
                      ).status_code == 401
    # Only a hash is stored: the secret part is nowhere in the database.
    listed = crm.apikeys.list()
    assert all(key[12:] not in k.model_dump_json() for k in listed)


def test_roles_without_the_right_get_403(api_client: ApiClients) -> None:
    params = _seed(api_client)
    analyst = api_client("analyst")
    cid = params["customer_id"]
    refused = analyst.post(f"/v1/customers/{cid}/interactions", json={"kind": "call"})
    assert refused.status_code == 403 and "analyst" in refused.json()["detail"]
    assert analyst.get(f"/v1/customers/{cid}").status_code == 200
    # a consultant who does not own the customer sees them masked
    view = api_client("sales", staff="sales2").get(f"/v1/customers/{cid}").json()
    assert view["customer"]["masked"] is True
    assert not SECRETS.search(str([view["customer"], view["identities"]]))
    own = api_client("sales", staff="sales1").get(f"/v1/customers/{cid}").json()
    assert own["customer"]["mobiles"] == [f"+86{MOBILE}"]


def test_a_manager_discloses_through_the_api_and_the_audit_says_api(
        api_client: ApiClients, crm: CRM) -> None:
    crm.directory.add_department({"code": "sales-xl", "name": "销售部", "projects": ["XL2"]})
    crm.directory.add_staff({"id": "m1", "name": "经理", "role": "manager",
                             "department": "sales-xl"})
    params = _seed(api_client)
    manager = api_client("manager", staff="m1")
    cid = params["customer_id"]
    masked = manager.get(f"/v1/customers/{cid}").json()
    assert masked["customer"]["masked"] is True
    shown = manager.post(f"/v1/customers/{cid}/disclose", json={"reason": "客户来电 #88"})
    assert shown.status_code == 200
    assert shown.json()["customer"]["mobiles"] == [f"+86{MOBILE}"]
    entry = [e for e in crm.audit.entries() if e.action == "disclose"][-1]
    assert (entry.actor_staff, entry.actor_role, entry.channel, entry.reason) == (
        "m1", "manager", "api", "客户来电 #88")
    assert api_client("sales", staff="sales2").post(
        f"/v1/customers/{cid}/disclose", json={"reason": "x"}).status_code == 403


@pytest.mark.recrm_settings(api={"rate_limit_per_minute": 3})
def test_a_key_over_its_budget_gets_429_with_retry_after(api_client: ApiClients) -> None:
    client = api_client("admin")
    statuses = [client.get("/v1/projects").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get("/v1/projects")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    # another key has its own budget
    assert api_client("admin", staff="a2").get("/v1/projects").status_code == 200


@pytest.mark.recrm_settings(api={"max_body_bytes": 2048})
def test_a_body_over_the_limit_is_413(api_client: ApiClients) -> None:
    client = api_client("admin")
    big = {"mobile": MOBILE, "name": "王", "external_id": "x" * 4000}
    refused = client.post("/v1/customers", json=big)
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"

    def chunks() -> Any:  # no Content-Length: counted as it streams
        yield b'{"mobile": "13812345678", "name": "'
        for _ in range(100):
            yield b"x" * 50
        yield b'"}'

    streamed = client.post("/v1/customers", content=chunks(),
                           headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert client.post("/v1/customers", json={"mobile": MOBILE}).status_code == 201
