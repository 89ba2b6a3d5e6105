"""Who is calling: ``Authorization: Bearer KEY`` becomes the request's :class:`Actor`
(channel ``api``), and each key gets a request budget per minute.

The budget is counted in this process's memory: with ``recrm serve --workers N`` a
key may make up to N times the limit in all (docs/api.md says so)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from ..models import Actor
from .problems import ApiProblem

if TYPE_CHECKING:
    from ..crm import CRM


@dataclass(frozen=True)
class Caller:
    """The key a request came with and the actor it stands for."""

    key_id: int
    actor: Actor


class RateLimiter:
    """A token bucket per key (an API key's id, a client's address): ``per_minute``
    requests, refilled evenly."""

    #: buckets kept before the full ones (idle for a minute) are dropped
    PRUNE_AT = 10_000

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self._buckets: dict[Hashable, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: Hashable) -> float:
        """0 when the request may go on, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) >= self.PRUNE_AT and key_id not in self._buckets:
                # Keyed by client address the keys are unbounded: forget the buckets
                # that have refilled (a new one starts full, so nothing changes).
                idle = self.capacity / self.refill
                self._buckets = {k: b for k, b in self._buckets.items()
                                 if now - b[1] < idle}
            tokens, since = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - since) * self.refill)
            if tokens < 1.0:
                self._buckets[key_id] = (tokens, now)
                return (1.0 - tokens) / self.refill
            self._buckets[key_id] = (tokens - 1.0, now)
            return 0.0


def crm_of(request: Request) -> CRM:
    """The CRM the app serves (a dependency for plugin routes too)."""
    crm: CRM = request.app.state.crm
    return crm


_UNAUTHORISED = {"WWW-Authenticate": 'Bearer realm="recrm"'}


def authenticate(request: Request) -> Caller:
    """The request's caller (cached on the request); 401 without a valid key, 429
    over its budget."""
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    given = request.headers.getlist("authorization")
    if len(given) > 1:  # which one would be meant? neither
        raise ApiProblem(401, "send one Authorization header, not several",
                         headers=_UNAUTHORISED)
    header = given[0] if given else None
    if not header:
        raise ApiProblem(401, "this route needs an API key: send 'Authorization: Bearer KEY' "
                         "(recrm apikey create)", headers=_UNAUTHORISED)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(401, "send the key as 'Authorization: Bearer KEY'",
                         headers=_UNAUTHORISED)
    found = crm_of(request).apikeys.authenticate(token.strip())
    if found is None:
        raise ApiProblem(401, "the API key is unknown or revoked, or its staff member left",
                         headers=_UNAUTHORISED)
    key_id, actor = found
    wait = request.app.state.rate_limiter.take(key_id)
    if wait > 0:
        raise ApiProblem(429, "too many requests with this key; retry after the "
                         "Retry-After seconds", headers={"Retry-After": str(math.ceil(wait))})
    caller = Caller(key_id=key_id, actor=actor)
    request.state.caller = caller
    return caller


def current_actor(caller: Annotated[Caller, Depends(authenticate)]) -> Actor:
    """The calling key's actor: declare ``actor: CurrentActor`` in a route."""
    return caller.actor


#: a route parameter holding the caller's actor (needs a key)
CurrentActor = Annotated[Actor, Depends(current_actor)]
