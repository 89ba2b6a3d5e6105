"""``Idempotency-Key`` on POST: the first response is kept a day and replayed to a
retry with the same key and body; the same key with another body is 422.

The row is claimed before the work starts (status empty), so two retries racing
each other — on two server processes too — do the work once: the database's primary
key decides, the loser is told the first is still running (409, Retry-After)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import delete, select, update
from starlette.concurrency import run_in_threadpool

from ..db import utcnow
from ..tables import IdempotencyRow
from ..upserting import insert_or_ignore
from .auth import authenticate, crm_of
from .problems import ApiProblem

if TYPE_CHECKING:
    from ..crm import CRM

HEADER = "Idempotency-Key"
KEPT = dt.timedelta(hours=24)
_MAX_KEY = 255


def _claim(crm: CRM, key_id: int, key: str, digest: str) -> IdempotencyRow | None:
    """None: this request owns the key now; else the row of the request that did."""
    now = utcnow()
    with crm.unit_of_work() as uow:
        session = uow.session
        session.execute(delete(IdempotencyRow).where(IdempotencyRow.created_at < now - KEPT))
        if insert_or_ignore(session, IdempotencyRow,
                            {"api_key_id": key_id, "key": key, "request_hash": digest,
                             "created_at": now},
                            on=[IdempotencyRow.api_key_id, IdempotencyRow.key]):
            return None
        row = session.scalars(select(IdempotencyRow).where(
            IdempotencyRow.api_key_id == key_id, IdempotencyRow.key == key)).one()
        session.expunge(row)
        return row


def _finish(crm: CRM, key_id: int, key: str, response: Response | None,
            customer_id: int | None) -> None:
    """Keep a success for replay; forget anything else, so a retry runs again."""
    where = (IdempotencyRow.api_key_id == key_id, IdempotencyRow.key == key)
    with crm.unit_of_work() as uow:
        if response is not None and 200 <= response.status_code < 300:
            uow.session.execute(update(IdempotencyRow).where(*where).values(
                status=response.status_code, body=bytes(response.body).decode("utf-8"),
                customer_id=customer_id))
        else:
            uow.session.execute(delete(IdempotencyRow).where(*where))


def _customer_of(request: Request, body: bytes) -> int | None:
    """The customer a response is about, so that their erasure deletes it."""
    given = str(request.path_params.get("customer_id", ""))
    if given.isdigit() and given.isascii():  # path values arrive as text
        return int(given)
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict):
        inner = data.get("customer")
        if isinstance(inner, dict) and isinstance(inner.get("id"), int):
            return int(inner["id"])
        if isinstance(data.get("customer_id"), int):
            return int(data["customer_id"])
        if request.url.path.startswith("/v1/customers") and isinstance(data.get("id"), int):
            return int(data["id"])
    return None


class IdempotentRoute(APIRoute):
    """The route class of every API router (the core's and the plugins'): POSTs
    honour ``Idempotency-Key``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if "POST" not in (self.methods or ()):
            return handler

        async def idempotent(request: Request) -> Response:
            key = request.headers.get(HEADER)
            if key is None:
                return await handler(request)
            if not 0 < len(key) <= _MAX_KEY or not key.isascii() or not key.isprintable():
                raise ApiProblem(422, f"{HEADER} must be 1 to {_MAX_KEY} printable ASCII "
                                 "characters", field=HEADER)
            caller = await run_in_threadpool(authenticate, request)
            body = await request.body()
            digest = hashlib.sha256(b"\0".join([
                request.method.encode(), request.url.path.encode(),
                request.url.query.encode(), body])).hexdigest()
            crm = crm_of(request)
            earlier = await run_in_threadpool(_claim, crm, caller.key_id, key, digest)
            if earlier is not None:
                if earlier.request_hash != digest:
                    raise ApiProblem(422, f"this {HEADER} was used with another request; "
                                     "use a new key for a new request", field=HEADER)
                if earlier.status is None:
                    raise ApiProblem(409, f"a request with this {HEADER} is still running; "
                                     "retry shortly", headers={"Retry-After": "1"})
                return Response((earlier.body or "").encode("utf-8"), earlier.status,
                                media_type="application/json",
                                headers={"Idempotent-Replayed": "true"})
            try:
                response = await handler(request)
            except BaseException:
                await run_in_threadpool(_finish, crm, caller.key_id, key, None, None)
                raise
            await run_in_threadpool(_finish, crm, caller.key_id, key, response,
                                    _customer_of(request, bytes(response.body)))
            return response

        return idempotent
