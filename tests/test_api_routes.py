"""``recrm_api_routes``: a plugin's routes under /v1/<plugin>/ (key needed) and at a
public path (none needed), idempotent POSTs, clashes named; and the API's kept
responses taking part in an erasure."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from recrm_core import CRM, ConfigError, NotFound, hookimpl
from recrm_core.api import CurrentActor
from recrm_core.tables import IdempotencyRow
from recrm_core.testing import ApiClients


class Greeting(BaseModel):
    customer_id: int
    text: str


class Greeter:
    """A plugin with one API route, one POST, and one public page."""

    def __init__(self) -> None:
        self.posts = 0

    @hookimpl
    def recrm_api_routes(self, crm: CRM, routes: Any) -> None:
        from fastapi.responses import HTMLResponse

        @routes.api.get("/greeting/{customer_id}", response_model=Greeting)
        def greeting(customer_id: int, actor: CurrentActor) -> Greeting:
            customer = crm.customers.get(customer_id, actor=actor)
            return Greeting(customer_id=customer.id, text=f"你好 {customer.name}")

        @routes.api.post("/greetings", response_model=Greeting, status_code=201)
        def send(body: Greeting, actor: CurrentActor) -> Greeting:
            self.posts += 1
            if body.customer_id > 1000:
                raise NotFound(f"no customer {body.customer_id}")
            return body

        @routes.public.get("/g/{token}", response_class=HTMLResponse)
        def page(token: str) -> str:
            return f"<p>token {token}</p>"


def test_hook_recrm_api_routes(crm: CRM, register_plugin: Any,
                               api_client: ApiClients) -> None:
    plugin = Greeter()
    name = register_plugin(plugin, "greeter")
    client = api_client("admin")
    cid = client.post("/v1/customers", json={"name": "王伟", "mobile": "13812345678"}
                      ).json()["customer"]["id"]
    got = client.get(f"/v1/{name}/greeting/{cid}")
    assert got.status_code == 200 and got.json() == {"customer_id": cid, "text": "你好 王伟"}
    # the plugin's routes need a key, and masking applies to what they read
    assert api_client(None).get(f"/v1/greeter/greeting/{cid}").status_code == 401
    masked = api_client("sales", staff="stranger").get(f"/v1/greeter/greeting/{cid}")
    assert masked.json()["text"] == "你好 王*"
    # SDK errors become problem documents
    missing = client.post("/v1/greeter/greetings", json={"customer_id": 5000, "text": "x"})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    # POSTs honour Idempotency-Key
    before = plugin.posts
    for _ in range(2):
        sent = client.post("/v1/greeter/greetings", json={"customer_id": cid, "text": "hi"},
                           headers={"Idempotency-Key": "g-1"})
        assert sent.status_code == 201
    assert plugin.posts == before + 1
    # the public page needs no key and lives where the plugin put it
    page = api_client(None).get("/g/abc")
    assert page.status_code == 200 and page.text == "<p>token abc</p>"
    spec = api_client.app.openapi()
    operation = spec["paths"]["/v1/greeter/greeting/{customer_id}"]["get"]
    assert operation["operationId"] == "greeter_greeting"
    assert operation["tags"] == ["greeter"]
    assert spec["paths"]["/g/{token}"]["get"]["operationId"] == "greeter_page"


class Clasher:
    @hookimpl
    def recrm_api_routes(self, crm: CRM, routes: Any) -> None:
        @routes.public.get("/g/{token}")
        def page(token: str) -> str:
            return token


class CoreSquatter:
    @hookimpl
    def recrm_api_routes(self, crm: CRM, routes: Any) -> None:
        @routes.public.get("/v1/customers")
        def mine() -> str:
            return "mine"


def test_a_clash_between_plugins_names_both(crm: CRM, register_plugin: Any,
                                           api_client: ApiClients) -> None:
    register_plugin(Greeter(), "greeter")
    register_plugin(Clasher(), "clasher")
    with pytest.raises(ConfigError) as caught:
        api_client.app  # noqa: B018
    message = str(caught.value)
    assert "GET /g/{token}" in message and "'greeter'" in message and "'clasher'" in message


def test_a_plugin_may_not_take_the_cores_paths(crm: CRM, register_plugin: Any,
                                              api_client: ApiClients) -> None:
    register_plugin(CoreSquatter(), "squatter")
    with pytest.raises(ConfigError, match="squatter"):
        api_client.app  # noqa: B018


class PageSquatter:
    @hookimpl
    def recrm_api_routes(self, crm: CRM, routes: Any) -> None:
        @routes.public.get("/u/{token}")
        def page(token: str) -> str:
            return token


class OperationSquatter:
    @hookimpl
    def recrm_api_routes(self, crm: CRM, routes: Any) -> None:
        @routes.api.post("/notes")
        def log() -> str:  # operation id "interactions_log": the core's
            return "mine"


def test_a_clash_with_a_route_of_the_cores_routers_names_the_core(
        crm: CRM, register_plugin: Any, api_client: ApiClients) -> None:
    # /u/{token} is the core's unsubscribe page, served by a router the app includes
    register_plugin(PageSquatter(), "pager")
    with pytest.raises(ConfigError) as caught:
        api_client.app  # noqa: B018
    message = str(caught.value)
    assert "GET /u/{token}" in message and "the core" in message and "'pager'" in message


def test_a_clash_with_a_core_operation_id_names_the_core(
        crm: CRM, register_plugin: Any, api_client: ApiClients) -> None:
    register_plugin(OperationSquatter(), "interactions")
    with pytest.raises(ConfigError) as caught:
        api_client.app  # noqa: B018
    message = str(caught.value)
    assert "interactions_log" in message and "the core" in message


def test_an_erasure_deletes_the_kept_responses_about_the_person(
        api_client: ApiClients, crm: CRM) -> None:
    client = api_client("admin")
    added = client.post("/v1/customers", json={"name": "赵敏", "mobile": "13812345678"},
                        headers={"Idempotency-Key": "add-1"})
    cid = added.json()["customer"]["id"]
    other = client.post("/v1/customers", json={"name": "周芷若", "mobile": "13900000000"},
                        headers={"Idempotency-Key": "add-2"}).json()["customer"]["id"]
    # a friend's record naming them: kept by the API, found by the erasure's scan
    client.post(f"/v1/customers/{other}/interactions",
                json={"kind": "referral", "summary": "介绍朋友 138 1234 5678"},
                headers={"Idempotency-Key": "log-1"})
    report = crm.privacy.erase(cid, reason="PIPL request #7")
    step = next(s for s in report.steps if s["table"] == "api_idempotency")
    assert step["deleted"] == 2
    with crm.unit_of_work(readonly=True) as uow:
        assert set(uow.session.scalars(select(IdempotencyRow.key))) == {"add-2"}
    # a retry after the erasure runs anew instead of replaying the person's data
    again = client.post("/v1/customers", json={"name": "赵敏", "mobile": "13812345678"},
                        headers={"Idempotency-Key": "add-1"})
    assert "idempotent-replayed" not in again.headers
