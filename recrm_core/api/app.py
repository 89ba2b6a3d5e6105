"""``create_app(crm)``: the ASGI app of the HTTP API (docs/api.md)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from .auth import RateLimiter
from .problems import install, problem
from .routes import mount_plugin_routes

if TYPE_CHECKING:
    from ..crm import CRM

_TAGS = [
    {"name": "customers", "description": "Customers, identity resolution, the 360 view, "
     "stages, merges, interactions, consent."},
    {"name": "cases", "description": "Service cases and their lifecycle."},
    {"name": "directory", "description": "Projects and staff."},
    {"name": "segments", "description": "Counting and listing customers by a segment."},
    {"name": "health", "description": "Is the service up (no key needed)."},
]


def _operation_id(route: APIRoute) -> str:
    # The function's name: stable between releases, so generated clients keep their
    # method names (a plugin's routes get ``<plugin>_`` in front).
    return route.name


class BodyLimit:
    """413 for a request body larger than ``limit`` bytes, announced or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = problem(413, f"the request body is larger than {self.limit} bytes "
                            "([api] max_body_bytes)")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await too_large(scope, receive, send)
            return
        if declared is not None:
            # The server holds a body to its Content-Length (h11 refuses more).
            await self.app(scope, receive, send)
            return
        # Streamed without a length: read it here, up to the limit, and hand the app
        # what was read (the app's own parser would turn an error into a 400).
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # gone before the body came
                return
            seen += len(message.get("body", b""))
            if seen > self.limit:
                await too_large(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` giving ``body`` whole, then the connection's own messages (a
    disconnect, for a response that listens for one)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


def create_app(crm: CRM) -> FastAPI:
    """The HTTP API of ``crm``: the core's resources under ``/v1``, the plugins'
    routes (``recrm_api_routes``), ``/healthz``, ``/openapi.json`` and ``/docs``.
    Mount it in your own ASGI server or serve it with ``recrm serve``."""
    from . import cases, customers, directory, health, segments

    app = FastAPI(
        title="recrm", version=__version__, openapi_tags=_TAGS,
        description="The HTTP API of recrm: send `Authorization: Bearer KEY` "
        "(`recrm apikey create`). Errors are application/problem+json.",
        generate_unique_id_function=_operation_id, docs_url="/docs", redoc_url=None,
    )
    app.state.crm = crm
    app.state.rate_limiter = RateLimiter(crm.config.api.rate_limit_per_minute)
    install(app)
    for module in (health, customers, cases, directory, segments):
        app.include_router(module.router)
    mount_plugin_routes(app, crm)
    app.add_middleware(BodyLimit, limit=crm.config.api.max_body_bytes)
    _quiet_body_alias_warnings()
    return app


def _quiet_body_alias_warnings() -> None:
    """FastAPI names each body parameter by an alias that pydantic (2.12+) warns has
    no effect when the body's validator is built (at the first request, our models
    being built on first use): noise in every server log, nothing to act on."""
    import pydantic.warnings

    noise = getattr(pydantic.warnings, "UnsupportedFieldAttributeWarning", None)
    if noise is not None:
        warnings.filterwarnings("ignore", message="The 'alias' attribute with value",
                                category=noise)
