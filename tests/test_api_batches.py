"""``POST /v1/customers/stages`` and ``POST /v1/customers/interactions``: many
customers' stage moves or interactions in one request and one unit of work, on SQLite
and PostgreSQL — in order, all or none, the batch hooks called once, bounded in size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from recrm_core import CRM, CustomerStageChange, Interaction, hookimpl
from recrm_core.actions import MAX_BATCH
from recrm_core.tables import CustomerProjectRow, InteractionRow
from recrm_core.testing import ApiClients
from recrm_core.testing import problem_of as problem


class BatchWatcher:
    """Records every batch hook call (a plugin watching imports of stage moves)."""

    def __init__(self) -> None:
        self.stage_batches: list[list[tuple[int, str | None, str]]] = []
        self.interaction_batches: list[list[tuple[int, str]]] = []

    @hookimpl
    def recrm_stages_changed(self, uow: Any, changes: Sequence[CustomerStageChange]) -> None:
        self.stage_batches.append([(c.customer.id, c.change.old_stage, c.change.new_stage)
                                   for c in changes])

    @hookimpl
    def recrm_interactions_logged(self, uow: Any,
                                  interactions: Sequence[Interaction]) -> None:
        self.interaction_batches.append([(i.customer_id, i.kind) for i in interactions])


def _stages(crm: CRM) -> list[tuple[int, str]]:
    with crm.unit_of_work(readonly=True) as uow:
        return [(r.customer_id, r.stage) for r in uow.session.scalars(
            select(CustomerProjectRow).order_by(CustomerProjectRow.customer_id))]


def _interactions(crm: CRM) -> int:
    with crm.unit_of_work(readonly=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(InteractionRow)) or 0


def _customers(client: Any, *mobiles: str) -> list[int]:
    return [client.post("/v1/customers", json={"mobile": m}).json()["customer"]["id"]
            for m in mobiles]


def test_stage_moves_apply_in_order_with_one_batch_hook_call(
        api_client: ApiClients, crm: CRM, register_plugin: Any) -> None:
    watcher = BatchWatcher()
    register_plugin(watcher, "watcher")
    client = api_client("admin")
    a, b = _customers(client, "13800000001", "13800000002")
    moved = client.post("/v1/customers/stages", json={"moves": [
        {"customer_id": a, "stage": "visitor", "project": "XL1"},
        {"customer_id": b, "stage": "visitor", "project": "XL1"},
        {"customer_id": a, "stage": "buyer", "project": "XL1", "unit": "3-1201",
         "amount": 2_000_000, "staff": "zhang.wei"},
    ]})
    assert moved.status_code == 200, moved.text
    assert [(c["id"], c["stage"]) for c in moved.json()] == [
        (a, "visitor"), (b, "visitor"), (a, "buyer")]
    assert _stages(crm) == [(a, "buyer"), (b, "visitor")]
    # one batch for the request, in the moves' order (a moved twice)
    assert watcher.stage_batches == [[(a, None, "visitor"), (b, None, "visitor"),
                                      (a, "visitor", "buyer")]]
    contract = [i for i in crm.interactions.list(a) if i.kind == "contract"]
    assert [(i.staff, i.data.get("unit")) for i in contract] == [("zhang.wei", "3-1201")]


def test_one_refused_move_applies_none(api_client: ApiClients, crm: CRM) -> None:
    client = api_client("admin")
    a, b = _customers(client, "13800000001", "13800000002")
    assert client.post(f"/v1/customers/{b}/stage",
                       json={"stage": "buyer", "project": "XL1"}).status_code == 200
    before = _stages(crm)
    body = problem(client.post("/v1/customers/stages", json={"moves": [
        {"customer_id": a, "stage": "visitor", "project": "XL1"},
        {"customer_id": b, "stage": "visitor", "project": "XL1"},  # backwards, no force
    ]}), 409)
    assert "force" in body["detail"]
    missing = problem(client.post("/v1/customers/stages", json={"moves": [
        {"customer_id": a, "stage": "visitor", "project": "XL1"},
        {"customer_id": 424242, "stage": "visitor", "project": "XL1"},
    ]}), 404)
    assert "424242" in missing["detail"]
    assert _stages(crm) == before
    # forced, the same batch goes through
    forced = client.post("/v1/customers/stages", json={"moves": [
        {"customer_id": a, "stage": "visitor", "project": "XL1"},
        {"customer_id": b, "stage": "visitor", "project": "XL1", "force": True}]})
    assert forced.status_code == 200, forced.text
    assert _stages(crm) == [(a, "visitor"), (b, "visitor")]


def test_batches_are_validated_at_the_edge_and_bounded(api_client: ApiClients,
                                                        crm: CRM) -> None:
    client = api_client("admin")
    (a,) = _customers(client, "13800000001")
    move = {"customer_id": a, "stage": "visitor", "project": "XL1"}
    assert problem(client.post("/v1/customers/stages", json={"moves": []}), 422)["field"] \
        .startswith("moves")
    body = problem(client.post("/v1/customers/stages",
                               json={"moves": [move, move, {**move, "stage": "vip"}]}), 422)
    assert body["field"] == "moves.2.stage"
    body = problem(client.post("/v1/customers/stages",
                               json={"moves": [{**move, "customer_id": 2**40}]}), 422)
    assert body["field"] == "moves.0.customer_id"
    problem(client.post("/v1/customers/stages", json={"moves": [move] * (MAX_BATCH + 1)}),
            422)
    entry = {"customer_id": a, "kind": "call"}
    assert problem(client.post("/v1/customers/interactions",
                               json={"interactions": [entry, {**entry, "kind": ""}]}),
                   422)["field"].startswith("interactions.1.kind")
    problem(client.post("/v1/customers/interactions",
                        json={"interactions": [entry] * (MAX_BATCH + 1)}), 422)
    assert _stages(crm) == [] and _interactions(crm) == 0


def test_interactions_of_many_customers_in_one_request(
        api_client: ApiClients, crm: CRM, register_plugin: Any) -> None:
    watcher = BatchWatcher()
    register_plugin(watcher, "watcher")
    client = api_client("admin")
    a, b, dup = _customers(client, "13800000001", "13800000002", "13800000003")
    assert client.post(f"/v1/customers/{a}/merge", json={"duplicate_id": dup}
                       ).status_code == 200
    logged = client.post("/v1/customers/interactions", json={"interactions": [
        {"customer_id": b, "kind": "call", "summary": "约周六看房"},
        {"customer_id": dup, "kind": "visit", "project": "XL1"},  # logs on its survivor
        {"customer_id": b, "kind": "wechat"},
    ]})
    assert logged.status_code == 201, logged.text
    assert [(i["customer_id"], i["kind"]) for i in logged.json()] == [
        (b, "call"), (a, "visit"), (b, "wechat")]
    assert watcher.interaction_batches == [[(b, "call"), (a, "visit"), (b, "wechat")]]
    # an unknown customer refuses the whole request
    problem(client.post("/v1/customers/interactions", json={"interactions": [
        {"customer_id": b, "kind": "call"}, {"customer_id": 424242, "kind": "call"}]}), 404)
    assert _interactions(crm) == 3


def test_a_reading_role_is_refused_and_a_retry_is_replayed(api_client: ApiClients,
                                                            crm: CRM) -> None:
    client = api_client("admin")
    (a,) = _customers(client, "13800000001")
    analyst = api_client("analyst")
    refused = analyst.post("/v1/customers/interactions",
                           json={"interactions": [{"customer_id": a, "kind": "call"}]})
    assert problem(refused, 403)["detail"].startswith("role analyst")
    problem(analyst.post("/v1/customers/stages", json={"moves": [
        {"customer_id": a, "stage": "visitor", "project": "XL1"}]}), 403)
    headers = {"Idempotency-Key": "sync-2026-12-06"}
    body = {"interactions": [{"customer_id": a, "kind": "call"},
                             {"customer_id": a, "kind": "visit"}]}
    first = client.post("/v1/customers/interactions", json=body, headers=headers)
    again = client.post("/v1/customers/interactions", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert _interactions(crm) == 2
