"""Found by probing the HTTP API as an integrator: a JSON body sent without a
Content-Type header -- what Python's ``requests.post(url, data=json.dumps(...))``
sends -- was answered 422 "body: Input should be a valid dictionary or object to
extract fields from", which says nothing of the missing header; now 415 saying what
to send, as for a body of another type. Nothing is written either way."""

from __future__ import annotations

import json

from recrm_core import CRM
from recrm_core.testing import ApiClients, problem_of


def test_a_json_body_without_a_content_type_is_415_naming_the_header(
        api_client: ApiClients, crm: CRM) -> None:
    client = api_client("admin")
    sent = client.post("/v1/customers", content=json.dumps(
        {"name": "王伟", "mobile": "13812345678"}).encode())
    body = problem_of(sent, 415)
    assert body["field"] == "body"
    assert "application/json" in body["detail"] and "Content-Type" in body["detail"]
    assert crm.customers.count() == 0


def test_no_body_at_all_is_still_a_missing_body(api_client: ApiClients) -> None:
    client = api_client("admin")
    body = problem_of(client.post("/v1/customers"), 422)
    assert body["field"] == "body"
