"""The tutorial's API route, ``GET /v1/hotlead/leads`` (README, step 11), through
httpx against the app on SQLite and PostgreSQL, with the ``api_client`` fixture."""

from __future__ import annotations

import pytest
import recrm_hotlead
from recrm_hotlead import hot_leads

from recrm_core import CRM
from recrm_core.testing import ApiClients

pytestmark = pytest.mark.recrm_plugins("hotlead")

MOBILE = "13812345678"


def hot(crm: CRM, name: str = "李娜", mobile: str = MOBILE, owner: str = "zhang") -> int:
    c = crm.customers.add({"name": name, "mobile": mobile, "project": "XL2",
                           "owner_staff": owner}).customer
    for _ in range(3):
        crm.interactions.log(c.id, {"kind": "visit", "project": "XL2", "staff": owner})
    return c.id


def test_leads_are_listed_as_hot_leads_returns_them(crm: CRM, api_client: ApiClients) -> None:
    client = api_client("admin")
    assert client.get("/v1/hotlead/leads").json() == []
    cid = hot(crm)
    got = client.get("/v1/hotlead/leads")
    assert got.status_code == 200, got.text
    [lead] = got.json()
    assert (lead["customer_id"], lead["name"], lead["mobiles"], lead["visits"],
            lead["project"]) == (cid, "李娜", ["+8613812345678"], 3, "XL2")
    assert got.json() == [lead.model_dump(mode="json") for lead in hot_leads(crm)]


def test_visits_logged_through_the_api_make_a_hot_lead(api_client: ApiClients) -> None:
    client = api_client("sales", staff="zhang")
    cid = client.post("/v1/customers", json={"name": "王伟", "mobile": "13912345678",
                                             "project": "XL2", "owner_staff": "zhang"}
                      ).json()["customer"]["id"]
    for visit in range(3):
        assert client.get("/v1/hotlead/leads").json() == [], visit
        logged = client.post(f"/v1/customers/{cid}/interactions",
                             json={"kind": "visit", "project": "XL2"})
        assert logged.status_code == 201, logged.text
    [lead] = client.get("/v1/hotlead/leads").json()
    assert (lead["customer_id"], lead["visits"]) == (cid, 3)


def test_the_key_decides_what_is_masked(crm: CRM, api_client: ApiClients) -> None:
    hot(crm)
    partner = api_client("partner", staff="agent1").get("/v1/hotlead/leads")
    assert partner.status_code == 200, partner.text
    [row] = partner.json()
    assert (row["name"], row["mobiles"]) == ("李*", ["138****5678"])
    assert MOBILE not in partner.text
    # the consultant who owns the customer sees them in full; another one does not
    [own] = api_client("sales", staff="zhang").get("/v1/hotlead/leads").json()
    assert own["mobiles"] == ["+8613812345678"]
    [other] = api_client("sales", staff="wang").get("/v1/hotlead/leads").json()
    assert MOBILE not in other["mobiles"][0]


def test_no_key_is_401(crm: CRM, api_client: ApiClients) -> None:
    hot(crm)
    response = api_client(None).get("/v1/hotlead/leads")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert MOBILE not in response.text


def test_the_route_is_in_the_openapi_document(api_client: ApiClients) -> None:
    operation = api_client.app.openapi()["paths"]["/v1/hotlead/leads"]["get"]
    assert operation["operationId"] == "hotlead_leads"
    assert operation["tags"] == ["hotlead"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"][
        "items"]["$ref"].endswith("/HotLead")
    assert "401" in operation["responses"]


def test_the_hook_is_declared_and_fastapi_stays_out_of_the_package() -> None:
    # The route's module imports FastAPI; the package (what every command imports) must
    # not, so it reaches the route only through the hook.
    import subprocess
    import sys

    assert "recrm_api_routes" in dir(recrm_hotlead)
    probe = "import sys, recrm_hotlead; print('fastapi' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "False"
