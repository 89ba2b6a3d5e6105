"""Webhooks: events of the CRM POSTed, signed, to the integrator's URLs.

A change and the event describing it commit together (an outbox in the change's own
transaction); ``recrm webhook deliver`` sends them at least once, each with a stable
id to deduplicate on, signed in the header ``X-Recrm-Signature`` (docs/api.md#webhooks).

This package's top level holds only what a receiver needs (:func:`verify_signature`)
and is cheap to import; the service is ``crm.webhooks``.
"""

from __future__ import annotations

from .signing import (
    DEFAULT_TOLERANCE,
    SIGNATURE_HEADER,
    sign,
    signature_header,
    verify_signature,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "sign",
    "signature_header",
    "verify_signature",
]
