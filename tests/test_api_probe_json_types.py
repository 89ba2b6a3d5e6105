"""Found by probing the HTTP API as a new user: a JSON list, object or boolean where a
text or code is expected was read as its Python text, so ``{"name": ["a"]}`` stored
the name "['a']" and ``{"project": ["XL2"]}`` created the project "['XL2']"; now
422 naming the field. Numbers stay accepted (a spreadsheet's staff or external id)."""

from __future__ import annotations

from typing import Any

import pytest

from recrm_core import CRM, CustomerIn
from recrm_core.testing import ApiClients
from recrm_core.testing import problem_of as problem


@pytest.mark.parametrize(("field", "value", "shown"), [
    ("name", ["a"], "a list"), ("name", {"x": 1}, "an object"), ("name", True, "true or false"),
    ("project", ["XL2"], "a list"), ("source", {"a": 1}, "an object"),
    ("owner_staff", False, "true or false"), ("external_id", [1], "a list"),
])
def test_a_list_object_or_boolean_for_a_text_is_422(api_client: ApiClients, crm: CRM,
                                                    field: str, value: Any, shown: str) -> None:
    client = api_client("admin")
    body = problem(client.post("/v1/customers", json={"mobile": "13812345678", field: value}),
                   422)
    assert body["field"] == field
    assert body["detail"] == f"{field}: must be text, not {shown}"
    assert crm.customers.count() == 0
    assert [p.code for p in crm.projects.list()] == []


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/cases", {"category": ["complaint"], "subject": "漏水"}, "category"),
    ("/v1/cases", {"category": "complaint", "subject": {"a": 1}}, "subject"),
    ("/v1/cases", {"category": "complaint", "subject": "漏水", "description": ["x"]},
     "description"),
    ("/v1/cases", {"category": "complaint", "subject": "漏水", "priority": ["high"]},
     "priority"),
    ("/v1/customers/{cid}/interactions", {"kind": ["call"]}, "kind"),
    ("/v1/customers/{cid}/interactions", {"kind": "call", "channel": {"a": 1}}, "channel"),
    ("/v1/projects", {"code": ["ZZ"], "name": "x"}, "code"),
    ("/v1/projects", {"code": "ZZ", "name": ["x"]}, "name"),
])
def test_every_text_of_the_core_refuses_a_list_or_object(
        api_client: ApiClients, crm: CRM, path: str, body: dict[str, Any], field: str) -> None:
    client = api_client("admin")
    cid = client.post("/v1/customers", json={"mobile": "13812345678"}).json()["customer"]["id"]
    if path == "/v1/cases":
        body = {"customer_id": cid} | body
    got = problem(client.post(path.format(cid=cid), json=body), 422)
    assert got["field"] == field
    assert "must be text, not" in got["detail"]
    if path == "/v1/cases":
        assert crm.cases.list() == []
    assert [p.code for p in crm.projects.list()] == []


def test_numbers_stay_text_where_a_spreadsheet_gives_them() -> None:
    record = CustomerIn.model_validate({"mobile": "13812345678", "external_id": 12345,
                                        "owner_staff": 1001, "name": 7})
    assert (record.external_id, record.owner_staff, record.name) == ("12345", "1001", "7")
