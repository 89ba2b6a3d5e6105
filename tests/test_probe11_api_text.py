"""Found by a new user's probe of the HTTP API: ``{"name": 5}`` (a number where text is
expected) was stored as the name "5". An API request's body now takes text only in a
text field (422 naming the field), while the same model from code or a workbook still
takes a number (``test_numbers_stay_text_where_a_spreadsheet_gives_them``); a budget
of ``1e308``, ``inf`` or ``nan`` is refused with the allowed range."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from recrm_core import CRM, CustomerIn
from recrm_core.testing import ApiClients
from recrm_core.testing import problem_of as problem

ALL_PLUGINS = ("membership", "survey", "channels", "newsletter", "sales")
#: text fields where a number means something: a customer given by id (else a mobile)
BY_ID_OR_TEXT = {"customer", "buyer"}


def _text_like(annotation: Any) -> bool:
    """``str``, ``str | None`` or ``list[str]``: a field a person types as text (not
    ``int | str``, a customer given by id or by mobile)."""
    if annotation is str:
        return True
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return all(_text_like(a) for a in args if a is not type(None))
    return typing.get_origin(annotation) is list and args == (str,)


def _api_routes(routes: Any) -> Any:
    """Every APIRoute, also those of included routers (FastAPI keeps those apart)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif getattr(route, "original_router", None) is not None:
            yield from _api_routes(route.original_router.routes)


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _models(a)]


@pytest.mark.recrm_plugins(*ALL_PLUGINS)
def test_every_request_body_refuses_a_number_for_a_text_field(api_client: ApiClients) -> None:
    """Every route's body (the core's and every first-party plugin's): a number in each
    of its text fields, nested models' too, is an error at that field."""
    checked: list[str] = []
    accepted: list[str] = []
    for route in _api_routes(api_client.app.routes):
        field = route.body_field
        if field is None:
            continue
        for model in _models(field.field_info.annotation):
            for name, info in model.model_fields.items():
                if not _text_like(info.annotation) or name in BY_ID_OR_TEXT:
                    continue
                key = info.alias or name
                value: Any = [5] if typing.get_origin(info.annotation) is list else 5
                _, errors = field.validate({key: value}, {}, loc=("body",))
                checked.append(f"{route.path} {name}")
                if not any(e["loc"][1:2] == (key,) for e in errors):
                    accepted.append(f"{sorted(route.methods)} {route.path}: {name}")
    assert len(checked) > 60, checked
    assert accepted == [], "\n".join(accepted)


@pytest.mark.parametrize(("field", "value"), [
    ("name", 5), ("name", 5.5), ("source", 12), ("external_id", 12345), ("owner_staff", 1001),
    ("mobile", 13812345678), ("email", 1), ("id_card", 110105199001011234),
])
def test_a_number_for_a_text_of_a_customer_is_422(api_client: ApiClients, crm: CRM,
                                                  field: str, value: Any) -> None:
    body = {"mobile": "13812345678"} | {field: value}
    got = problem(api_client("admin").post("/v1/customers", json=body), 422)
    assert got["field"] in (field, "mobiles")
    assert got["detail"].endswith("must be text, not a number"), got
    assert crm.customers.count() == 0


def test_a_number_in_a_batch_names_the_entry(api_client: ApiClients, crm: CRM) -> None:
    client = api_client("admin")
    cid = client.post("/v1/customers", json={"mobile": "13812345678"}).json()["customer"]["id"]
    got = problem(client.post("/v1/customers/interactions", json={"interactions": [
        {"customer_id": cid, "kind": "call"}, {"customer_id": cid, "kind": 7}]}), 422)
    assert got["field"] == "interactions.1.kind"
    assert "must be text, not a number" in got["detail"]


def test_text_still_goes_and_code_still_gives_numbers(api_client: ApiClients) -> None:
    made = api_client("admin").post("/v1/customers", json={"mobile": "13812345678",
                                                           "name": "5", "external_id": "12"})
    assert made.status_code == 201, made.text
    assert made.json()["customer"]["name"] == "5"
    # outside a request body (code, a workbook's cell) a number is still its text
    record = CustomerIn.model_validate({"mobile": 13812345678, "name": 7})
    assert record.name == "7"


@pytest.mark.parametrize("budget", [1e308, -5, -0.5, 2**70])
def test_a_budget_out_of_range_names_the_field_and_the_range(api_client: ApiClients,
                                                             budget: Any) -> None:
    got = problem(api_client("admin").post(
        "/v1/customers", json={"mobile": "13812345678", "budget": budget}), 422)
    assert got["field"] == "budget"
    assert got["detail"].endswith("give a whole amount in CNY from 0 to 9223372036854775807")


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_a_budget_that_is_no_finite_number_names_the_range(api_client: ApiClients,
                                                           raw: bytes) -> None:
    got = problem(api_client("admin").post(
        "/v1/customers", content=b'{"mobile": "13812345678", "budget": ' + raw + b"}",
        headers={"content-type": "application/json"}), 422)
    assert got["field"] == "budget"
    assert "is not a number: give a whole amount in CNY from 0 to" in got["detail"]
