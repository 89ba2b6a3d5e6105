"""``Idempotency-Key`` on POST, and cursor pagination of segment listings: retries
and concurrent writers end in one correct state."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select

from recrm_core import CRM
from recrm_core.tables import IdempotencyRow, InteractionRow
from recrm_core.testing import ApiClients, StartLine, run_together


def _interactions(crm: CRM) -> int:
    with crm.unit_of_work(readonly=True) as uow:
        return uow.session.scalar(select(func.count()).select_from(InteractionRow)) or 0


def test_a_retry_replays_the_first_response_and_does_the_work_once(
        api_client: ApiClients, crm: CRM) -> None:
    client = api_client("admin")
    cid = client.post("/v1/customers", json={"mobile": "13800000001"}).json()["customer"]["id"]
    call = {"kind": "call", "summary": "第一次回访"}
    headers = {"Idempotency-Key": "visit-2026-12-06-001"}
    first = client.post(f"/v1/customers/{cid}/interactions", json=call, headers=headers)
    again = client.post(f"/v1/customers/{cid}/interactions", json=call, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert _interactions(crm) == 1
    # the same key with another body is a mistake, not a new request
    other = client.post(f"/v1/customers/{cid}/interactions",
                        json={"kind": "call", "summary": "另一次"}, headers=headers)
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    # keys belong to the API key: another caller's same key is another request
    second = api_client("admin", staff="a2").post(
        f"/v1/customers/{cid}/interactions", json=call, headers=headers)
    assert second.status_code == 201 and "idempotent-replayed" not in second.headers
    assert _interactions(crm) == 2
    # without the header, every POST is new
    client.post(f"/v1/customers/{cid}/interactions", json=call)
    assert _interactions(crm) == 3


def test_a_failed_request_is_not_kept_so_its_retry_runs(api_client: ApiClients,
                                                         crm: CRM) -> None:
    client = api_client("admin")
    headers = {"Idempotency-Key": "k1"}
    missing = client.post("/v1/customers/99/interactions", json={"kind": "call"},
                          headers=headers)
    assert missing.status_code == 404
    client.post("/v1/customers", json={"mobile": "13800000002"})
    cid = client.post("/v1/customers", json={"mobile": "13800000003"}).json()["customer"]["id"]
    assert client.post(f"/v1/customers/{cid}/interactions", json={"kind": "call"},
                       headers={"Idempotency-Key": "k2"}).status_code == 201
    bad = client.post("/v1/customers", json={"mobile": "1"}, headers={"Idempotency-Key": "k3"})
    assert bad.status_code == 422
    fixed = client.post("/v1/customers", json={"mobile": "13800000004"},
                        headers={"Idempotency-Key": "k3x"})
    assert fixed.status_code == 201
    with crm.unit_of_work(readonly=True) as uow:
        kept = set(uow.session.scalars(select(IdempotencyRow.key)))
    assert kept == {"k2", "k3x"}
    for weird in (b"", "é".encode(), b"x" * 256, b"a\tb"):
        refused = client.post("/v1/customers", json={"mobile": "13800000005"},
                              headers={"Idempotency-Key": weird})
        assert refused.status_code == 422, weird


def _post_with_key(app_args: tuple[str, str, str, int], start: StartLine) -> tuple[int, str | None]:
    url, key_file, api_key, cid = app_args
    crm = CRM(database_url=url, settings={"key_file": key_file})
    try:
        import warnings

        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

        from recrm_core.api import create_app

        client = TestClient(create_app(crm), headers={"Authorization": f"Bearer {api_key}",
                                                      "Idempotency-Key": "same-visit"})
        start.wait()
        response = client.post(f"/v1/customers/{cid}/interactions", json={"kind": "visit"})
        return response.status_code, response.headers.get("idempotent-replayed")
    finally:
        crm.close()


def test_processes_racing_on_one_key_do_the_work_once(api_client: ApiClients,
                                                      crm: CRM) -> None:
    client = api_client("admin")
    cid = client.post("/v1/customers", json={"mobile": "13800000006"}).json()["customer"]["id"]
    key = api_client.key("admin", "racer")
    results = run_together(_post_with_key, [
        ((crm.config.database_url, str(crm.key_file), key, cid),) for _ in range(4)])
    statuses = sorted(status for status, _ in results)
    # one did the work; the others were told it was running (409) or got its replay
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    assert sum(1 for status, replayed in results if status == 201 and not replayed) == 1
    assert _interactions(crm) == 1


def test_cursor_pages_are_stable_under_concurrent_inserts(api_client: ApiClients) -> None:
    client = api_client("admin")
    for n in range(25):
        client.post("/v1/customers", json={"mobile": f"1390000{n:04d}", "project": "XL2"})
    definition = {"definition": {"field": "project", "op": "eq", "value": "XL2"}}
    seen: list[int] = []
    cursor: str | None = None
    stop = threading.Event()
    writer = api_client("admin", staff="writer")

    def insert_meanwhile() -> None:
        n = 100
        while not stop.is_set() and n < 130:
            writer.post("/v1/customers", json={"mobile": f"1370000{n:04d}", "project": "XL2"})
            n += 1

    thread = threading.Thread(target=insert_meanwhile)
    thread.start()
    try:
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 7}
            if cursor:
                params["cursor"] = cursor
            page = client.post("/v1/segments/customers", params=params, json=definition).json()
            seen.extend(c["id"] for c in page["items"])
            cursor = page["next_cursor"]
            pages += 1
            if cursor is None:
                break
    finally:
        stop.set()
        thread.join()
    assert len(seen) == len(set(seen)), "a customer came twice"
    assert seen == sorted(seen)
    assert set(range(1, 26)) <= set(seen), "a customer was skipped"
    total = client.post("/v1/segments/count", json=definition).json()["count"]
    assert total >= len(seen)
    assert client.post("/v1/segments/customers", params={"cursor": "bm9wZQ"},
                       json=definition).status_code == 422
    assert client.post("/v1/segments/customers", params={"limit": 0},
                       json=definition).status_code == 422
