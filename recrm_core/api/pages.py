"""The pages people open from a message: HTML in Chinese, served without an API key.

The core serves ``/u/<token>`` (unsubscribe, :mod:`recrm_core.unsubscribe`); plugins
serve theirs on ``routes.public`` (the survey plugin: ``/s/<token>``) with the tools
here, so every page looks and behaves alike:

- :class:`Pages`: Jinja2 templates of a package (autoescaped), which may extend the
  core's ``recrm/base.html`` (a phone-sized layout, no JavaScript);
- :func:`limit_by_address`: a dependency giving each client address
  ``[api] public_rate_limit_per_minute`` requests (a 429 page with Retry-After);
- :class:`PageError`: raise it for a page with a status (404, 410, 429...);
- :func:`form_fields`: the fields of a form POST (URL-encoded or multipart).

Every page is sent with ``Cache-Control: no-store`` and ``Referrer-Policy:
no-referrer`` (the token in its address answers as the person) and a
Content-Security-Policy that allows no script.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, PackageLoader, PrefixLoader, select_autoescape
from starlette.exceptions import HTTPException

from ..errors import NotFound
from ..unsubscribe import UnsubscribeLink
from .auth import RateLimiter, crm_of

#: headers of every page
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "img-src data:; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
}
#: the most fields a form may have (a survey has a few dozen)
MAX_FIELDS = 500
_CORE_LOADER = PackageLoader("recrm_core.api", "templates")


class Pages:
    """The templates of ``package`` (its ``templates/`` directory, as package data),
    beside the core's under ``recrm/`` (``{% extends "recrm/base.html" %}``)."""

    def __init__(self, package: str | None = None) -> None:
        core = PrefixLoader({"recrm": _CORE_LOADER})
        loader = core if package is None else ChoiceLoader(
            [PackageLoader(package, "templates"), core])
        self.env = Environment(loader=loader, autoescape=select_autoescape(default=True),
                               auto_reload=False, trim_blocks=True, lstrip_blocks=True)

    def render(self, template: str, status: int = 200,
               headers: Mapping[str, str] | None = None, **context: Any) -> HTMLResponse:
        """``template`` rendered with ``context`` as an HTML response."""
        body = self.env.get_template(template).render(**context)
        return HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


core_pages = Pages()


class PageError(Exception):
    """A page instead of the route's: a status, a title and a few lines of text."""

    def __init__(self, status: int, title: str, *lines: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.lines = lines
        self.headers = dict(headers or {})


def not_found() -> PageError:
    """The plain 404 page of a link that does not exist (a wrong or changed token)."""
    return PageError(404, "页面不存在", "链接无效，请检查是否完整复制了消息中的链接。")


def message_page(status: int, title: str, *lines: str, bad: bool = False,
                 headers: Mapping[str, str] | None = None) -> HTMLResponse:
    return core_pages.render("recrm/message.html", status, headers, title=title,
                             lines=lines, bad=bad)


def client_address(request: Request) -> str:
    """Whom to count a request against: the peer's address (``recrm serve`` trusts
    no proxy header), an IPv6 address by its /64 (one household or host has the
    whole /64)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def limit_by_address(request: Request) -> None:
    """Dependency: 429 (a page, with Retry-After) for an address over ``[api]
    public_rate_limit_per_minute`` requests a minute (counted per server process)."""
    limiter: RateLimiter = request.app.state.public_rate_limiter
    wait = limiter.take(("page", client_address(request)))
    if wait > 0:
        seconds = math.ceil(wait)
        raise PageError(429, "请求过于频繁", f"请 {seconds} 秒后再试。",
                        headers={"Retry-After": str(seconds)})


#: a route parameter that applies :func:`limit_by_address`
ByAddress = Annotated[None, Depends(limit_by_address)]


async def form_fields(request: Request) -> list[tuple[str, str]]:
    """The fields of a form POST, in order: ``application/x-www-form-urlencoded`` or
    ``multipart/form-data`` (RFC 8058 one-click senders use either), parsed by
    Starlette (python-multipart); files are left out. A body that is neither, or too
    many fields, is a 400 page."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    invalid = PageError(400, "请求无效", "提交的内容无法识别，请返回页面重新提交。")
    if media not in ("", "application/x-www-form-urlencoded", "multipart/form-data"):
        raise invalid
    if media == "":  # a one-click sender that names no type: read it as URL-encoded
        try:
            return parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True,
                             max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError):
            raise invalid from None
    try:
        form = await request.form(max_fields=MAX_FIELDS, max_files=MAX_FIELDS)
    except (HTTPException, ValueError, UnicodeDecodeError):
        raise invalid from None
    return [(name, value) for name, value in form.multi_items() if isinstance(value, str)]


# -- /u/<token>: unsubscribe -----------------------------------------------------------------

router = APIRouter(tags=["pages"], include_in_schema=False)

_CHANNELS = {"email": "邮件", "sms": "短信", "phone": "电话", "wechat": "微信"}
#: RFC 8058: the body a one-click unsubscription POSTs
ONE_CLICK = ("List-Unsubscribe", "One-Click")


def _link(request: Request, token: str) -> UnsubscribeLink:
    from ..unsubscribe import read_unsubscribe_token

    try:
        return read_unsubscribe_token(crm_of(request), token)
    except NotFound:
        raise not_found() from None


def _purpose(request: Request, link: UnsubscribeLink) -> str:
    """What the link's purpose means: the core's and the plugins' labels."""
    return crm_of(request).consent.purposes().get(link.purpose, link.purpose)


def _done(link: UnsubscribeLink, state: str, *, already: bool, purpose: str) -> HTMLResponse:
    if state == "erased":
        return message_page(200, "无需退订",
                            "您的个人信息已按要求删除，我们不会再向您发送任何信息。")
    what = f"{_CHANNELS[link.channel]}{purpose}"
    if already:
        return message_page(200, "您已退订", f"您此前已退订{what}，无需再次操作。")
    return message_page(200, "已退订", f"您已成功退订{what}，今后不会再收到此类消息。",
                        "如有需要，可随时联系我们重新订阅。")


@router.get("/u/{token}", response_class=HTMLResponse, name="unsubscribe_page")
def unsubscribe_page(request: Request, token: str, _limit: ByAddress) -> HTMLResponse:
    """The confirmation page of an unsubscribe link (GET changes nothing: mail
    scanners open links)."""
    from ..unsubscribe import unsubscribe_state

    link = _link(request, token)
    try:
        state = unsubscribe_state(crm_of(request), link)
    except NotFound:
        raise not_found() from None
    if state != "subscribed":
        return _done(link, state, already=True, purpose=_purpose(request, link))
    return core_pages.render(
        "recrm/unsubscribe.html", title="退订确认", token=token,
        action=str(request.url.path), channel=_CHANNELS[link.channel],
        purpose=_purpose(request, link))


@router.post("/u/{token}", response_class=HTMLResponse, name="unsubscribe_confirm")
async def unsubscribe_confirm(request: Request, token: str, _limit: ByAddress) -> HTMLResponse:
    """Unsubscribe: the page's button (its form carries the token) or an RFC 8058
    one-click POST (``List-Unsubscribe=One-Click``), answered 200 without a further
    step. A POST with neither is a 400 page and changes nothing."""
    from starlette.concurrency import run_in_threadpool

    from ..unsubscribe import unsubscribe

    link = _link(request, token)
    fields = await form_fields(request)
    if ONE_CLICK not in fields and ("token", token) not in fields:
        raise PageError(400, "请求无效", "请通过退订页面上的按钮确认退订。")
    try:
        before, _record = await run_in_threadpool(unsubscribe, crm_of(request), link)
    except NotFound:
        raise not_found() from None
    return _done(link, before, already=before == "unsubscribed",
                 purpose=_purpose(request, link))


def install(app: FastAPI) -> None:
    """Serve the core's pages, render :class:`PageError` as a page, and count the
    pages' requests per client address."""
    crm = app.state.crm
    app.state.public_rate_limiter = RateLimiter(crm.config.api.public_rate_limit_per_minute)

    @app.exception_handler(PageError)
    async def _page(_request: Request, exc: Exception) -> HTMLResponse:
        assert isinstance(exc, PageError)
        return message_page(exc.status, exc.title, *exc.lines, bad=exc.status >= 400,
                            headers=exc.headers)

    app.include_router(router)


__all__ = [
    "PAGE_HEADERS",
    "ByAddress",
    "PageError",
    "Pages",
    "client_address",
    "form_fields",
    "install",
    "limit_by_address",
    "message_page",
    "not_found",
]
