"""The club over HTTP (``recrm_api_routes``): ``/v1/membership/members/{id}``, its
``/balance`` and ``/ledger``, and ``POST .../redemptions``, through httpx against the
app on SQLite and PostgreSQL.

Each route is the service call of its ``recrm member`` command with the key's actor,
so the roles are the CLI's: partners are refused every member detail (403), analysts
read without free text and change nothing (403). A redemption retried with the same
``Idempotency-Key`` deducts once."""

from __future__ import annotations

from typing import Any

import pytest
from membership_helpers import club, customer, ledger

from recrm_core import CRM, HIDDEN
from recrm_core.testing import ApiClients, RecrmCliRunner
from recrm_core.testing import problem_of as problem

pytestmark = pytest.mark.recrm_plugins("membership")

MOBILE = "13812345678"
#: free text about the person in a ledger reason: no analyst or partner reads it back
REASON = "腰椎手术后送按摩椅"


def member_with_points(crm: CRM, points: int = 800) -> int:
    """王伟, enrolled, with ``points`` awarded for a gift whose reason is free text."""
    c = customer(crm, MOBILE, name="王伟", project="XL2", owner_staff="liu")
    svc = club(crm)
    svc.enroll(c.id)
    svc.earn(c.id, "gift", "chair", points=points, reason=REASON)
    return c.id


def url(cid: int, tail: str = "") -> str:
    return f"/v1/membership/members/{cid}{tail}"


def test_member_balance_and_ledger_are_what_the_service_returns(
        crm: CRM, api_client: ApiClients) -> None:
    cid = member_with_points(crm)
    client = api_client("sales", staff="liu")
    member = client.get(url(cid))
    assert member.status_code == 200, member.text
    body = member.json()
    assert (body["customer_id"], body["status"], body["tier"], body["balance"],
            body["lifetime_points"]) == (cid, "active", "普通", 800, 800)
    assert body["number"].startswith("WK")
    balance = client.get(url(cid, "/balance"))
    assert balance.status_code == 200, balance.text
    assert balance.json() == club(crm).balance(cid).model_dump(mode="json")
    assert (balance.json()["balance"], balance.json()["redeemed"],
            balance.json()["next_expiry_points"]) == (800, 0, 800)
    entries = client.get(url(cid, "/ledger"))
    assert entries.status_code == 200, entries.text
    [entry] = entries.json()
    assert (entry["kind"], entry["points"], entry["reason"], entry["event_key"]) == (
        "earn", 800, REASON, f"gift:{cid}:chair")
    assert entries.json() == [e.model_dump(mode="json") for e in club(crm).ledger(cid)]


def test_a_partner_is_refused_every_route_and_changes_nothing(
        crm: CRM, api_client: ApiClients) -> None:
    cid = member_with_points(crm)
    partner = api_client("partner", staff="li.agency")
    for tail in ("", "/balance", "/ledger"):
        body = problem(partner.get(url(cid, tail)), 403)
        assert "role partner may not see membership details" in body["detail"]
        assert MOBILE not in partner.get(url(cid, tail)).text
    # refused before the customer is looked up: no answer tells who exists
    problem(partner.get(url(424242)), 403)
    refused = problem(partner.post(url(cid, "/redemptions"), json={"points": 100}), 403)
    assert "role partner may not change the club" in refused["detail"]
    assert club(crm).balance(cid).balance == 800


def test_an_analyst_reads_without_free_text_and_may_not_redeem(
        crm: CRM, api_client: ApiClients) -> None:
    cid = member_with_points(crm)
    analyst = api_client("analyst", staff="an.bi")
    assert analyst.get(url(cid, "/balance")).json()["balance"] == 800
    [entry] = analyst.get(url(cid, "/ledger")).json()
    assert (entry["points"], entry["reason"], entry["event_key"]) == (800, HIDDEN, HIDDEN)
    assert REASON not in analyst.get(url(cid, "/ledger")).text
    body = problem(analyst.post(url(cid, "/redemptions"), json={"points": 100}), 403)
    assert "role analyst may not change the club" in body["detail"]
    assert club(crm).balance(cid).balance == 800


def test_unknown_customers_and_non_members_are_404(crm: CRM, api_client: ApiClients) -> None:
    stranger = customer(crm, "13912345678").id
    client = api_client("admin")
    for tail in ("", "/balance", "/ledger"):
        assert "424242" in problem(client.get(url(424242, tail)), 404)["detail"]
        assert "is not a member" in problem(client.get(url(stranger, tail)), 404)["detail"]
    problem(client.post(url(424242, "/redemptions"), json={"points": 1}), 404)
    problem(client.post(url(stranger, "/redemptions"), json={"points": 1}), 404)
    assert problem(client.get(url(0)), 422)["field"] == "customer_id"
    problem(client.get(url(2**31)), 422)


def test_no_key_is_401(crm: CRM, api_client: ApiClients) -> None:
    cid = member_with_points(crm)
    anonymous = api_client(None)
    problem(anonymous.get(url(cid)), 401)
    problem(anonymous.post(url(cid, "/redemptions"), json={"points": 1}), 401)
    assert club(crm).balance(cid).balance == 800


def test_a_redemption_changes_the_balance(crm: CRM, api_client: ApiClients,
                                          cli_runner: RecrmCliRunner) -> None:
    cid = member_with_points(crm)
    client = api_client("service", staff="kf.wangli")
    redeemed = client.post(url(cid, "/redemptions"),
                           json={"points": 300, "ref": "ORDER-7", "reason": "物业费抵扣"})
    assert redeemed.status_code == 201, redeemed.text
    body = redeemed.json()
    assert (body["redeemed"], body["balance"], body["expired_first"]) == (True, 500, 0)
    assert (body["entry"]["kind"], body["entry"]["points"], body["entry"]["reason"],
            body["entry"]["actor_staff"]) == ("redeem", -300, "物业费抵扣", "kf.wangli")
    assert client.get(url(cid, "/balance")).json()["balance"] == 500
    assert client.get(url(cid)).json()["balance"] == 500
    # the CLI reads what the API wrote
    points = cli_runner.invoke("member", "points", str(cid), "--json")
    assert points.exit_code == 0, points.stderr
    assert (points.json()["balance"]["balance"], points.json()["balance"]["redeemed"]) == (
        500, 300)
    # the same order again deducts nothing: 200, the earlier entry
    again = client.post(url(cid, "/redemptions"), json={"points": 300, "ref": "ORDER-7"})
    assert again.status_code == 200, again.text
    assert (again.json()["redeemed"], again.json()["balance"]) == (False, 500)
    assert again.json()["entry"]["id"] == body["entry"]["id"]
    # more than the balance: 409, nothing written
    over = problem(client.post(url(cid, "/redemptions"), json={"points": 501}), 409)
    assert "has 500 points; cannot redeem 501" in over["detail"]
    assert [kind for _, kind, _, _ in ledger(crm)] == ["earn", "redeem"]


@pytest.mark.parametrize("payload, field", [
    ({"points": 0}, "points"),
    ({"points": -5}, "points"),
    ({"points": 100_000_001}, "points"),
    ({"points": "5"}, "points"),
    ({"points": True}, "points"),
    ({"points": 1.5}, "points"),
    ({}, "points"),
    ({"points": 5, "coupon": "x"}, "coupon"),
    ({"points": 5, "ref": "a\x00b"}, "ref"),
    ({"points": 5, "ref": "x" * 129}, "ref"),
    ({"points": 5, "reason": "y" * 201}, "reason"),
])
def test_a_bad_redemption_is_422_naming_the_field(
        crm: CRM, api_client: ApiClients, payload: dict[str, Any], field: str) -> None:
    cid = member_with_points(crm)
    body = problem(api_client("admin").post(url(cid, "/redemptions"), json=payload), 422)
    assert body["field"] == field
    assert club(crm).balance(cid).balance == 800


def test_a_member_who_left_cannot_redeem(crm: CRM, api_client: ApiClients) -> None:
    cid = member_with_points(crm)
    club(crm).leave(cid)
    client = api_client("admin")
    assert client.get(url(cid)).json()["status"] == "left"
    body = problem(client.post(url(cid, "/redemptions"), json={"points": 1}), 409)
    assert "has left the club" in body["detail"]


def test_an_idempotency_key_retry_redeems_once(crm: CRM, api_client: ApiClients) -> None:
    cid = member_with_points(crm)
    client = api_client("sales", staff="liu")
    # no ref: only the Idempotency-Key stands between a retry and a second deduction
    payload = {"points": 200, "reason": "停车费"}
    key = {"Idempotency-Key": "redeem-7f3a"}
    first = client.post(url(cid, "/redemptions"), json=payload, headers=key)
    assert first.status_code == 201, first.text
    assert first.json()["balance"] == 600
    retry = client.post(url(cid, "/redemptions"), json=payload, headers=key)
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert client.get(url(cid, "/balance")).json()["balance"] == 600
    assert [(kind, points) for _, kind, points, _ in ledger(crm)] == [
        ("earn", 800), ("redeem", -200)]
    # the same key with another body is a mistake, not a retry
    other = problem(client.post(url(cid, "/redemptions"), json={"points": 100}, headers=key),
                    422)
    assert other["field"] == "Idempotency-Key"
    # a new key is a new redemption
    again = client.post(url(cid, "/redemptions"), json=payload,
                        headers={"Idempotency-Key": "redeem-7f3b"})
    assert again.status_code == 201 and again.json()["balance"] == 400


def test_a_refused_redemption_is_not_replayed(crm: CRM, api_client: ApiClients) -> None:
    # Only a success is kept: once the member has the points, the retry goes through.
    cid = member_with_points(crm, points=100)
    client = api_client("admin")
    key = {"Idempotency-Key": "order-9"}
    problem(client.post(url(cid, "/redemptions"), json={"points": 150}, headers=key), 409)
    club(crm).earn(cid, "gift", "more", points=100)
    done = client.post(url(cid, "/redemptions"), json={"points": 150}, headers=key)
    assert done.status_code == 201, done.text
    assert done.json()["balance"] == 50


def test_operation_ids_tags_and_models_in_the_openapi_document(
        api_client: ApiClients) -> None:
    spec = api_client.app.openapi()
    paths = spec["paths"]
    operations = {(method, path): op for path, item in paths.items()
                  for method, op in item.items() if path.startswith("/v1/membership/")}
    assert {(m, p): op["operationId"] for (m, p), op in operations.items()} == {
        ("get", "/v1/membership/members/{customer_id}"): "membership_member",
        ("get", "/v1/membership/members/{customer_id}/balance"): "membership_balance",
        ("get", "/v1/membership/members/{customer_id}/ledger"): "membership_ledger",
        ("post", "/v1/membership/members/{customer_id}/redemptions"):
            "membership_redeem",
    }
    assert all(op["tags"] == ["membership"] for op in operations.values())
    redeem = operations[("post", "/v1/membership/members/{customer_id}/redemptions")]
    schema = redeem["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/RedemptionIn")
    assert redeem["responses"]["201"]["content"]["application/json"]["schema"][
        "$ref"].endswith("/Redemption")
    assert {"403", "404", "409", "422"} <= set(redeem["responses"])
    balance = operations[("get", "/v1/membership/members/{customer_id}/balance")]
    assert balance["responses"]["200"]["content"]["application/json"]["schema"][
        "$ref"].endswith("/Balance")
    required = spec["components"]["schemas"]["RedemptionIn"]["required"]
    assert required == ["points"]
