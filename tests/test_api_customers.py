"""The HTTP API's customer resources, through httpx against the app, on SQLite and
PostgreSQL: identity resolution, the 360 view, updates, merges, stages, reassignment,
interactions, consents, cases, projects and staff, with problem documents for errors."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from recrm_core import CRM, hookimpl
from recrm_core.testing import ApiClients
from recrm_core.testing import problem_of as problem


def test_add_creates_then_merges_with_the_outcome_in_the_body(api_client: ApiClients) -> None:
    client = api_client("admin")
    first = client.post("/v1/customers", json={"name": "王伟", "mobile": "138 1234 5678",
                                                "project": "XL2"})
    assert first.status_code == 201
    assert first.json()["created"] is True
    cid = first.json()["customer"]["id"]
    again = client.post("/v1/customers", json={"mobile": "+86 13812345678",
                                                "email": "WANG@example.cn"})
    assert again.status_code == 200
    body = again.json()
    assert body["created"] is False and body["changed"] is True
    assert body["customer"]["id"] == cid
    assert body["customer"]["email"] == "wang@example.cn"


def test_an_identity_conflict_is_409_naming_the_keys_and_customers(
        api_client: ApiClients) -> None:
    client = api_client("admin")
    a = client.post("/v1/customers", json={"mobile": "13812345678"}).json()["customer"]["id"]
    b = client.post("/v1/customers", json={"mobile": "13987654321"}).json()["customer"]["id"]
    clash = client.post("/v1/customers", json={"mobiles": ["13812345678", "13987654321"]})
    body = problem(clash, 409)
    assert "mobile" in body["detail"] and "different customers" in body["detail"]
    assert body["customer_ids"] == sorted([a, b])
    assert body["field"].startswith("mobile")


def test_invalid_input_is_422_with_the_field(api_client: ApiClients) -> None:
    client = api_client("admin")
    body = problem(client.post("/v1/customers", json={"mobile": "12345"}), 422)
    assert body["field"] == "mobiles"
    body = problem(client.post("/v1/customers", json={"mobile": "13812345678", "age": 3}), 422)
    assert body["field"] == "age"
    body = problem(client.post("/v1/customers", content=b"{not json",
                               headers={"content-type": "application/json"}), 422)
    assert body["field"] == "body"
    body = problem(client.get("/v1/customers/0"), 422)
    assert body["field"] == "customer_id"
    body = problem(client.get("/v1/customers/99999999999"), 422)


def test_find_view_update_and_unknown_ids(api_client: ApiClients) -> None:
    client = api_client("admin")
    cid = client.post("/v1/customers", json={"name": "李娜", "mobile": "13900001111",
                                             "id_card": "11010519491231002X"}
                      ).json()["customer"]["id"]
    found = client.get("/v1/customers", params={"mobile": "139 0000 1111"}).json()
    assert [c["id"] for c in found] == [cid]
    assert [c["id"] for c in client.get(
        "/v1/customers", params={"id_card": "11010519491231002x"}).json()] == [cid]
    assert client.get("/v1/customers", params={"mobile": "13700000000"}).json() == []
    problem(client.get("/v1/customers"), 422)
    view = client.get(f"/v1/customers/{cid}").json()
    assert view["customer"]["name"] == "李娜" and view["birthplace"]
    updated = client.patch(f"/v1/customers/{cid}", json={"budget": "200万",
                                                         "add_mobiles": ["13600002222"]})
    assert updated.status_code == 200, updated.text
    assert updated.json()["budget"] == 2_000_000
    assert "+8613600002222" in updated.json()["mobiles"]
    body = problem(client.get("/v1/customers/424242"), 404)
    assert "424242" in body["detail"]
    problem(client.patch("/v1/customers/424242", json={"name": "x"}), 404)


def test_merge_stage_reassign_interactions_consents(api_client: ApiClients) -> None:
    client = api_client("admin")
    keep = client.post("/v1/customers", json={"mobile": "13800000001", "project": "XL2",
                                              "owner_staff": "s1"}).json()["customer"]["id"]
    dup = client.post("/v1/customers", json={"mobile": "13800000002"}).json()["customer"]["id"]
    merged = client.post(f"/v1/customers/{keep}/merge", json={"duplicate_id": dup})
    assert merged.status_code == 200 and "+8613800000002" in merged.json()["mobiles"]
    problem(client.post(f"/v1/customers/{keep}/merge", json={"duplicate_id": dup}), 409)
    # a merged-away id reads as its survivor
    assert client.get(f"/v1/customers/{dup}").json()["customer"]["id"] == keep

    moved = client.post(f"/v1/customers/{keep}/stage",
                        json={"stage": "buyer", "project": "XL2", "unit": "3-1201",
                              "amount": 2_000_000})
    assert moved.status_code == 200 and moved.json()["stage"] == "buyer"
    back = problem(client.post(f"/v1/customers/{keep}/stage",
                               json={"stage": "visitor", "project": "XL2"}), 409)
    assert "force" in back["detail"]

    reassigned = client.post("/v1/customers/reassign",
                             json={"from_staff": "s1", "to_staff": "s2"})
    assert reassigned.json() == {"moved": 1}

    logged = client.post(f"/v1/customers/{keep}/interactions",
                         json={"kind": "call", "summary": "约周六看房"})
    assert logged.status_code == 201 and logged.json()["customer_id"] == keep
    kinds = [i["kind"] for i in client.get(f"/v1/customers/{keep}/interactions").json()]
    assert "call" in kinds and "contract" in kinds

    granted = client.post(f"/v1/customers/{keep}/consents",
                          json={"channel": "sms", "granted": True, "source": "app"})
    assert granted.status_code == 201
    current = client.get(f"/v1/customers/{keep}/consents").json()
    assert [(c["channel"], c["purpose"], c["granted"]) for c in current] == [
        ("sms", "marketing", True)]
    problem(client.post(f"/v1/customers/{keep}/consents",
                        json={"channel": "fax", "granted": True}), 422)


def test_case_lifecycle_and_refused_transition(api_client: ApiClients) -> None:
    client = api_client("admin")
    cid = client.post("/v1/customers", json={"mobile": "13800000003"}).json()["customer"]["id"]
    opened = client.post("/v1/cases", json={"customer_id": cid, "category": "repair",
                                            "subject": "厨房漏水", "priority": "high"})
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    assert client.post(f"/v1/cases/{case_id}/start").json()["status"] == "in_progress"
    transferred = client.post(f"/v1/cases/{case_id}/transfer",
                              json={"department": "property", "note": "物业处理"})
    assert transferred.json()["department"] == "property"
    problem(client.post(f"/v1/cases/{case_id}/start", json={"department": "x"}), 422)
    assert client.post(f"/v1/cases/{case_id}/resolve", json={"note": "修好了"}
                       ).json()["status"] == "resolved"
    body = problem(client.post(f"/v1/cases/{case_id}/escalate"), 409)
    assert "resolved" in body["detail"]
    problem(client.post(f"/v1/cases/{case_id}/fly"), 422)
    assert client.post(f"/v1/cases/{case_id}/close").json()["status"] == "closed"
    history = [h["action"] for h in client.get(f"/v1/cases/{case_id}").json()["history"]]
    assert history[-1] == "close" and "transfer" in history
    assert [c["id"] for c in client.get("/v1/cases", params={"customer_id": cid}).json()] \
        == [case_id]
    problem(client.get("/v1/cases/777"), 404)


def test_projects_and_staff(api_client: ApiClients, crm: CRM) -> None:
    client = api_client("admin", staff="boss")
    made = client.post("/v1/projects", json={"code": "XL3", "name": "星珑三期",
                                             "city": "杭州"})
    assert made.status_code == 201
    problem(client.post("/v1/projects", json={"code": "XL3", "name": "again"}), 409)
    assert [p["code"] for p in client.get("/v1/projects").json()] == ["XL3"]
    assert client.get("/v1/projects/XL3").json()["name"] == "星珑三期"
    problem(client.get("/v1/projects/NOPE"), 404)
    assert "boss" in [s["id"] for s in client.get("/v1/staff").json()]
    assert client.get("/v1/staff/boss").json()["role"] == "admin"
    problem(client.get("/v1/staff/ghost"), 404)
    problem(api_client("partner").get("/v1/staff"), 403)


@pytest.mark.recrm_settings(require_known_staff=True)
def test_unknown_staff_is_refused_when_required(api_client: ApiClients) -> None:
    client = api_client("admin")
    cid = client.post("/v1/customers", json={"mobile": "13800000004"}).json()["customer"]["id"]
    body = problem(client.post(f"/v1/customers/{cid}/interactions",
                               json={"kind": "call", "staff": "ghost"}), 404)
    assert "ghost" in body["detail"]


def test_health_is_public_and_reports_the_schema(api_client: ApiClients) -> None:
    anonymous = api_client(None)
    health = anonymous.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert anonymous.get("/openapi.json").status_code == 200
    assert anonymous.get("/docs").status_code == 200
    problem(anonymous.get("/v1/projects"), 401)


def test_operation_ids_are_stable(api_client: ApiClients) -> None:
    """Generated clients name their methods after these: renaming one breaks them."""
    spec = api_client.app.openapi()
    ids = sorted(op["operationId"] for path in spec["paths"].values() for op in path.values())
    assert ids == sorted([
        "healthz", "customers_add", "customers_find", "customers_reassign", "customers_view",
        "customers_update", "customers_merge", "customers_set_stage", "customers_set_stages",
        "customers_disclose", "customers_export", "customers_erase", "interactions_log_many",
        "interactions_log", "interactions_list", "consents_current", "consents_record",
        "cases_open", "cases_list", "cases_get", "cases_act", "projects_list", "projects_add",
        "projects_get", "staff_list", "staff_get", "segments_count", "segments_customers",
        "imports_create", "imports_list", "imports_get", "imports_errors",
        "incidents_open", "incidents_list", "incidents_get", "incidents_link",
        "incidents_close",
        "tasks_add", "tasks_list", "tasks_sweep", "tasks_report", "tasks_get", "tasks_done",
        "tasks_cancel", "pool_list", "pool_claim", "pool_release", "pool_sweep", "pool_report",
        "reports_list", "reports_run", "reports_chart"])
    add = spec["paths"]["/v1/customers"]["post"]
    # the SDK's own models, not copies
    assert add["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CustomerIn")
    assert add["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AddResult")


def test_times_without_a_zone_and_dates_out_of_range_are_422(api_client: ApiClients) -> None:
    client = api_client("admin")
    cid = client.post("/v1/customers", json={"mobile": "13800000009"}).json()["customer"]["id"]
    body = problem(client.post(f"/v1/customers/{cid}/stage", json={
        "stage": "buyer", "project": "XL2", "occurred_at": "2025-01-01T00:00:00"}), 422)
    assert body["field"] == "occurred_at" and "time zone" in body["detail"]
    for value in ("0001-01-01T00:00:00", "9999-12-31T23:59:59-12:00"):
        body = problem(client.post("/v1/segments/count", json={"definition": {
            "field": "created_at", "op": "gt", "value": value}}), 422)
        assert "outside the dates" in body["detail"]


def test_bodies_the_parser_cannot_read_are_problems(api_client: ApiClients) -> None:
    client = api_client("admin")
    deep = b'{"definition": ' + b'{"not": ' * 5000 + b"{}" + b"}" * 5001
    body = problem(client.post("/v1/segments/count", content=deep,
                               headers={"content-type": "application/json"}), 422)
    assert body["field"] == "body"
    problem(client.post("/v1/customers", content=b'{"name": "\xff\xfe"}',
                        headers={"content-type": "application/json"}), 422)
    body = problem(client.post("/v1/customers", content=b"mobile=13800000010",
                               headers={"content-type": "application/x-www-form-urlencoded"}),
                   415)
    assert "application/json" in body["detail"]
    key = api_client.key("admin", "a9")
    twice = api_client(None).get("/v1/projects", headers=[("Authorization", f"Bearer {key}"),
                                                          ("Authorization", f"Bearer {key}")])
    problem(twice, 401)
    one = problem(client.get("/v1/customers", params={"mobile": "1", "wechat": "x"}), 422)
    assert "wechat" in one["detail"] and "wechat_unionid" not in one["detail"]


class Failing:
    """A plugin route failing the way code and databases fail."""

    @hookimpl
    def recrm_api_routes(self, crm: CRM, routes: Any) -> None:
        @routes.api.get("/boom")
        def boom() -> None:
            raise RuntimeError("secret detail 13812345678")

        @routes.api.post("/note")
        def note(body: dict[str, str]) -> None:
            # a plugin writing a value it did not validate (values.check_storable)
            with crm.unit_of_work() as uow:
                uow.session.execute(text("SELECT :v"), {"v": body["text"]})

        @routes.api.get("/db-down")
        def db_down() -> None:
            raise OperationalError("SELECT * FROM customers", {"m": "13812345678"},
                                   Exception("connection refused"))


def test_an_unexpected_error_is_a_500_problem_and_the_connection_lives(
        crm: CRM, register_plugin: Any, api_client: ApiClients) -> None:
    register_plugin(Failing(), "failing")
    client = api_client("admin")  # raising server exceptions: none reaches the client
    body = problem(client.get("/v1/failing/boom"), 500)
    assert body["detail"].startswith("internal error (RuntimeError)")
    down = client.get("/v1/failing/db-down")
    body = problem(down, 503)
    assert down.headers["retry-after"] and "13812345678" not in down.text
    # JSON may spell a lone surrogate ("\ud800"), which no database encodes: a bad
    # value (422), not an internal error
    lone = client.post("/v1/failing/note", content=b'{"text": "a\\ud800b"}',
                       headers={"content-type": "application/json"})
    assert problem(lone, 422)["detail"] == (
        "a value is not valid text (a lone surrogate such as \\ud800); nothing was changed")
    assert client.get("/v1/projects").status_code == 200


def test_a_persons_export_and_erasure_over_the_api(api_client: ApiClients, crm: CRM) -> None:
    """PIPL requests from a system that does not embed Python: the export and the
    erasure the CLI offers, admin only (there were no routes for either)."""
    admin = api_client("admin", staff="dpo")
    cid = admin.post("/v1/customers", json={"name": "杨佳", "mobile": "13408376573",
                                            "project": "XL2"}).json()["customer"]["id"]
    admin.post(f"/v1/customers/{cid}/interactions", json={"kind": "call", "project": "XL2",
                                                         "summary": "杨佳 13408376573"})
    got = admin.get(f"/v1/customers/{cid}/export")
    assert got.status_code == 200, got.text
    document = got.json()
    assert document["customer"]["name"] == "杨佳" and "plugins" in document
    assert [i["kind"] for i in document["interactions"]] == ["call"]
    problem(api_client("sales", staff="zhang").get(f"/v1/customers/{cid}/export"), 403)
    problem(api_client("sales", staff="zhang").post(f"/v1/customers/{cid}/erase", json={}), 403)
    problem(admin.get("/v1/customers/424242/export"), 404)
    problem(admin.post(f"/v1/customers/{cid}/erase", json={"dry_run": "yes"}), 422)
    problem(admin.post(f"/v1/customers/{cid}/erase", json={"dryrun": True}), 422)

    plan = admin.post(f"/v1/customers/{cid}/erase", json={"dry_run": True, "reason": "R-1"})
    assert plan.status_code == 200, plan.text
    assert plan.json()["dry_run"] is True and plan.json()["verified"] is True
    assert admin.get(f"/v1/customers/{cid}/export").json()["customer"]["name"] == "杨佳"
    done = admin.post(f"/v1/customers/{cid}/erase", json={"reason": "R-1"})
    assert done.status_code == 200 and done.json()["dry_run"] is False, done.text
    assert "was erased on" in problem(admin.get(f"/v1/customers/{cid}/export"), 404)["detail"]
    with crm.engine.connect() as conn:
        actions = [row[0] for row in conn.execute(text(
            "SELECT action FROM audit_log WHERE customer_id = :c ORDER BY id"), {"c": cid})]
    assert {"export", "erase"} <= set(actions)
