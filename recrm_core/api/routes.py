"""Plugins' routes (``recrm_api_routes``): each plugin gets two routers, mounted
after its hook returns, and a clash of method and path — between two plugins or
with the core — stops the app from being built, naming both."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute

from ..errors import ConfigError
from .auth import authenticate
from .idempotency import IdempotentRoute
from .problems import PROBLEM_RESPONSES

if TYPE_CHECKING:
    from ..crm import CRM

#: plugin names that may not be a path segment under /v1 (the core's resources)
CORE_SEGMENTS = frozenset({"customers", "cases", "projects", "staff", "segments", "imports",
                           "webhooks", "reports"})
_SEGMENT = re.compile(r"[a-z][a-z0-9_-]{0,63}")


@dataclass
class ApiRoutes:
    """What ``recrm_api_routes`` hands each plugin.

    ``api``: routes served under ``/v1/<plugin>/`` with the plugin's OpenAPI tag; each
    needs an API key (declare ``actor: CurrentActor`` to get its actor). ``public``:
    routes served at the path they declare, needing no key (pages, provider
    callbacks); give them a short prefix of your own (``/s/{token}``). POST routes of
    both honour ``Idempotency-Key``. Operation ids are ``<plugin>_<function name>``.
    """

    plugin: str
    api: APIRouter = field(init=False)
    public: APIRouter = field(init=False)

    def __post_init__(self) -> None:
        self.api = APIRouter(route_class=IdempotentRoute)
        self.public = APIRouter(route_class=IdempotentRoute)


def operation_id(route: APIRoute) -> str:
    """The OpenAPI operation id of a core route (the app's
    ``generate_unique_id_function``)."""
    # The function's name: stable between releases, so generated clients keep their
    # method names (a plugin's routes get ``<plugin>_`` in front).
    return route.name


def _signatures(routes: list[APIRoute]) -> set[tuple[str, str]]:
    return {(method, route.path) for route in routes for method in route.methods or ()}


def mount_plugin_routes(app: FastAPI, crm: CRM, core: Iterable[APIRouter]) -> None:
    """Mount each plugin's routers on ``app``, refusing a method and path or an
    operation id that the core's routers (``core``, already included) or another
    plugin holds."""
    # The core's routes are read from its routers, not from ``app.routes``: FastAPI
    # (0.120+) lists an included router there as one opaque entry, not its routes.
    taken = [r for r in app.routes if isinstance(r, APIRoute)]
    taken += [r for router in core for r in router.routes if isinstance(r, APIRoute)]
    owners: dict[tuple[str, str], str] = {sig: "the core" for sig in _signatures(taken)}
    operations: dict[str, str] = {r.operation_id or operation_id(r): "the core"
                                  for r in taken}
    collected: list[ApiRoutes] = []

    def routes_for(name: str) -> ApiRoutes:
        collected.append(ApiRoutes(name))
        return collected[-1]

    crm.hooks.api_routes(crm, routes_for)
    for routes in collected:
        name = routes.plugin
        if routes.api.routes and (not _SEGMENT.fullmatch(name) or name in CORE_SEGMENTS):
            raise ConfigError(f"plugin {name!r} cannot serve API routes under /v1/{name}/")
        mine = [r for r in routes.api.routes if isinstance(r, APIRoute)]
        public = [r for r in routes.public.routes if isinstance(r, APIRoute)]
        for route in public:
            if route.path == "/" or route.path.startswith(("/v1/", "/docs", "/openapi",
                                                           "/healthz", "/redoc")):
                raise ConfigError(f"plugin {name!r}: public route {route.path} is in the "
                                  "core's space (/v1, /docs, /openapi.json, /healthz)")
        signatures = {(m, f"/v1/{name}{r.path}") for r in mine for m in r.methods or ()} \
            | _signatures(public)
        for sig in sorted(signatures):
            if sig in owners:
                raise ConfigError(f"API route {sig[0]} {sig[1]} is registered by both "
                                  f"{owners[sig]} and plugin {name!r}")
            owners[sig] = f"plugin {name!r}"
        for route in [*mine, *public]:
            route.operation_id = f"{name}_{route.name}"
            if route.operation_id in operations:
                raise ConfigError(f"API operation id {route.operation_id} is used by both "
                                  f"{operations[route.operation_id]} and plugin {name!r}")
            operations[route.operation_id] = f"plugin {name!r}"
        if mine:
            app.include_router(routes.api, prefix=f"/v1/{name}", tags=[name],
                               dependencies=[Depends(authenticate)],
                               responses=PROBLEM_RESPONSES)
        if public:
            app.include_router(routes.public, tags=[name])
