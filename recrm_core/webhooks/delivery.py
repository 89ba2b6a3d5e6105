"""Sending one webhook request: an HTTP POST with the standard library (no new
dependency), no redirects followed (a 3xx is a failed attempt, like any non-2xx), the
answer's body read up to 64 KiB and dropped (never stored: it is the receiver's)."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from .. import __version__

USER_AGENT = f"recrm-webhooks/{__version__}"
_READ_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """The outcome of one attempt: ``status`` the HTTP status (None without an
    answer), ``error`` a short reason when it is not a 2xx."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx becomes an HTTPError: a failed attempt


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST ``body`` to ``url``; never raises for what the network or the receiver
    does."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
        **headers})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(_READ_LIMIT)
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return Answer(exc.code, f"HTTP {exc.code}")
    except urllib.error.URLError as exc:
        return Answer(None, _reason(exc.reason))
    except TimeoutError:
        return Answer(None, "timed out")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Answer(None, _reason(exc))
    if 200 <= status < 300:
        return Answer(status, None)
    return Answer(status, f"HTTP {status}")


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror[:150]
    text = str(reason) or type(reason).__name__
    return text.splitlines()[0][:150]
