"""``create_app(crm)``: the ASGI app of the HTTP API (docs/api.md)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from .auth import RateLimiter
from .problems import ApiProblem, CatchAll, RejectNul, install, problem
from .routes import mount_plugin_routes, operation_id

if TYPE_CHECKING:
    from ..crm import CRM

_TAGS = [
    {"name": "customers", "description": "Customers, identity resolution, the 360 view, "
     "stages, merges, interactions, consent."},
    {"name": "cases", "description": "Service cases and their lifecycle."},
    {"name": "incidents", "description": "Incidents: one event behind many cases."},
    {"name": "tasks", "description": "Follow-up tasks and the public pool (公海)."},
    {"name": "directory", "description": "Projects and staff."},
    {"name": "segments", "description": "Counting and listing customers by a segment."},
    {"name": "imports", "description": "Importing a CSV file or workbook in the background."},
    {"name": "reports", "description": "Management reports: run one, or draw its chart."},
    {"name": "health", "description": "Is the service up (no key needed)."},
]


class BodyLimit:
    """413 for a request body larger than ``limit`` bytes, announced or streamed.

    ``uploads`` maps the paths of upload routes (``POST /v1/imports``) to their own
    limit: their bodies are not held here but counted as the route streams them to
    disk, and the route answers 413 the moment the count goes over."""

    def __init__(self, app: ASGIApp, limit: int,
                 uploads: Mapping[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.uploads = dict(uploads or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("method") == "POST" and scope.get("path") in self.uploads:
            await self._upload(scope, receive, send, *self.uploads[scope["path"]])
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

    async def _upload(self, scope: Scope, receive: Receive, send: Send, limit: int,
                      setting: str) -> None:
        detail = f"the request body is larger than {limit} bytes ({setting})"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await problem(413, detail)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise ApiProblem(413, detail)
            return message

        await self.app(scope, counted, send)


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
    from . import (
        cases,
        customers,
        directory,
        health,
        imports,
        incidents,
        reports,
        segments,
        tasks,
    )

    app = FastAPI(
        title="recrm", version=__version__, openapi_tags=_TAGS,
        description="The HTTP API of recrm: send `Authorization: Bearer KEY` "
        "(`recrm apikey create`). Errors are application/problem+json.",
        generate_unique_id_function=operation_id, docs_url="/docs", redoc_url=None,
    )
    app.state.crm = crm
    app.state.rate_limiter = RateLimiter(crm.config.api.rate_limit_per_minute)
    install(app)
    from . import pages  # /u/<token> and the HTML error pages (docs/api.md, "Pages")

    pages.install(app)
    routers = [module.router for module in (health, customers, cases, incidents, tasks,
                                            directory, segments, imports, reports)]
    for router in routers:
        app.include_router(router)
    mount_plugin_routes(app, crm, [pages.router, *routers])
    imports.install_worker(app, crm)  # runs import jobs while the app is served
    app.add_middleware(BodyLimit, limit=crm.config.api.max_body_bytes, uploads={
        imports.PREFIX: (crm.config.api.max_upload_bytes, "[api] max_upload_bytes")})
    app.add_middleware(RejectNul)
    app.add_middleware(CatchAll)  # added last: the outermost of ours
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
