"""The webhook signature: ``X-Recrm-Signature: t=<unix time>,v1=<hex HMAC-SHA256>``.

``v1`` is the HMAC-SHA256, under the subscription's secret (its UTF-8 bytes), of the
timestamp, a dot and the request body exactly as sent: ``f"{t}.".encode() + body``.
Signing the timestamp with the body lets a receiver refuse an old request replayed
by whoever caught it (:data:`DEFAULT_TOLERANCE`).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Recrm-Signature"
#: seconds a receiver accepts between the signature's time and its own clock
DEFAULT_TOLERANCE = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex ``v1`` signature of ``body`` sent at ``timestamp``."""
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header's value for ``body``, signed now (or at ``timestamp``)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={sign(secret, t, body)}"


def verify_signature(secret: str, header: str | None, body: bytes, *,
                     tolerance: int = DEFAULT_TOLERANCE, now: float | None = None) -> bool:
    """Whether ``header`` (the ``X-Recrm-Signature`` value) signs ``body`` (the raw
    request body, before any JSON parsing) with ``secret``, at a time within
    ``tolerance`` seconds of ``now`` (default: this machine's clock). Any ``v1`` in
    the header may match; compared in constant time."""
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)
