"""Unsubscribe links: ``/u/<token>`` withdraws one customer's consent for one channel
and purpose (docs/api.md, "Pages").

A token is the customer id, the channel and the purpose, signed with the key file's
signing key (HMAC-SHA256, cut to 128 bits), in URL-safe base64 without padding::

    <base64 of "42:email:marketing">.<base64 of the MAC>

Nothing is stored per link: any message can carry one (the newsletter plugin puts it
in every message, with ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` for RFC
8058 one-click), and a link stays valid as long as the signing key (which ``recrm db
rotate-key`` keeps). A token changed by one character is refused (a 404 page).
A link of a customer merged since then withdraws the survivor's consent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sqlalchemy import literal, select
from sqlalchemy.orm import Session

from .consent import consent_withdrawn_clause
from .customers import resolve_id
from .db import valid_id
from .errors import InvalidInput, NotFound
from .tables import CustomerRow

if TYPE_CHECKING:
    from .crm import CRM
    from .models import Consent

#: what the consent record of an unsubscription names as its source
SOURCE = "unsubscribe_link"
_LABEL = b"recrm unsubscribe 1\x1f"
_MAC_BYTES = 16
#: the longest token taken apart (a real one is about 50 characters)
_MAX_TOKEN = 200
_PAYLOAD = re.compile(r"([1-9][0-9]{0,18}):([a-z]{1,16}):([a-z][a-z0-9_]{0,31})")

State = Literal["subscribed", "unsubscribed", "erased"]


@dataclass(frozen=True)
class UnsubscribeLink:
    """What a valid token says: whose consent, for which channel and purpose."""

    customer_id: int
    channel: str
    purpose: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _LABEL + payload, hashlib.sha256).digest()[:_MAC_BYTES]


def make_unsubscribe_token(crm: CRM, customer_id: int, channel: str,
                           purpose: str = "marketing") -> str:
    """The token of an unsubscribe link for ``customer_id``'s consent to ``purpose``
    on ``channel`` (``channel`` and ``purpose`` as :class:`Consent` takes them)."""
    if isinstance(customer_id, bool) or not isinstance(customer_id, int) \
            or not valid_id(customer_id):
        raise InvalidInput("customer_id", f"{customer_id!r} is not a customer id")
    crm.consent.check(channel, purpose)  # the core's purposes and the plugins'
    payload = f"{customer_id}:{channel}:{purpose}".encode("ascii")
    return f"{_b64(payload)}.{_b64(_mac(crm.keys.signing, payload))}"


def unsubscribe_url(crm: CRM, customer_id: int, channel: str,
                    purpose: str = "marketing") -> str:
    """The whole link: ``public_base_url`` + ``/u/`` + the token. Put it in a message's
    body and, for email, in ``List-Unsubscribe: <URL>`` with ``List-Unsubscribe-Post:
    List-Unsubscribe=One-Click`` (RFC 8058): a POST to it unsubscribes in one click."""
    token = make_unsubscribe_token(crm, customer_id, channel, purpose)
    return f"{crm.config.public_base_url}/u/{token}"


def read_unsubscribe_token(crm: CRM, token: str) -> UnsubscribeLink:
    """What ``token`` says; :class:`NotFound` when it is not one this key signed
    (malformed, changed, or signed with another key)."""
    unknown = NotFound("no such unsubscribe link")
    if not isinstance(token, str) or len(token) > _MAX_TOKEN or not token.isascii():
        raise unknown
    encoded, dot, signature = token.partition(".")
    if not dot or not encoded or not signature:
        raise unknown
    try:
        payload, mac = _unb64(encoded), _unb64(signature)
    except (binascii.Error, ValueError):
        raise unknown from None
    if _b64(payload) != encoded or _b64(mac) != signature:
        raise unknown  # not as we write it: one link, one spelling
    if not hmac.compare_digest(mac, _mac(crm.keys.signing, payload)):
        raise unknown
    # Signed by us, so well formed; checked all the same (a key shared by mistake).
    found = _PAYLOAD.fullmatch(payload.decode("ascii", "replace"))
    if found is None:
        raise unknown
    try:
        crm.consent.check(found[2], found[3])  # a purpose whose plugin is gone: unknown
    except InvalidInput:
        raise unknown from None
    return UnsubscribeLink(int(found[1]), found[2], found[3])


def unsubscribe_state(crm: CRM, link: UnsubscribeLink) -> State:
    """``erased`` (the person was erased: nothing is sent to them any more),
    ``unsubscribed`` (the deciding consent record withdraws) or ``subscribed``.
    :class:`NotFound` when there is no such customer."""
    with crm.unit_of_work(readonly=True) as uow:
        return _state_in(uow.session, link)


def _state_in(session: Session, link: UnsubscribeLink, *, lock: bool = False) -> State:
    """:func:`unsubscribe_state` in a running unit of work; with ``lock``, the customer
    row (the survivor's) is locked first, so that what is read is what the last use of
    the link left."""
    erased_at = session.scalar(select(CustomerRow.erased_at)
                               .where(CustomerRow.id == link.customer_id))
    if erased_at is not None:
        return "erased"
    cid = resolve_id(session, link.customer_id)  # NotFound, or the survivor
    erased = select(CustomerRow.erased_at).where(CustomerRow.id == cid)
    if session.scalar(erased.with_for_update() if lock else erased):
        return "erased"
    withdrawn = session.scalar(select(consent_withdrawn_clause(
        literal(cid), link.channel, link.purpose)))
    return "unsubscribed" if withdrawn else "subscribed"


def unsubscribe(crm: CRM, link: UnsubscribeLink) -> tuple[State, Consent | None]:
    """Withdraw the link's consent (the person's own act: no staff actor; the consent
    record names ``unsubscribe_link`` as its source and the audit log records it).
    Idempotent: a link used again records nothing more -- also when used twice at once
    (a double tap, a mail client's one-click POST beside the person's own): the look and
    the withdrawal are one transaction holding the customer's row. Returns the state
    before and the new consent record, if one was made."""
    with crm.unit_of_work() as uow:
        # NotFound when there is no such customer; an erasure cannot come between the
        # look and the withdrawal, the row being held.
        before = _state_in(uow.session, link, lock=True)
        if before != "subscribed":
            return before, None
        record = crm.consent.record_in(uow, link.customer_id, link.channel, link.purpose,
                                       False, SOURCE)
    return before, record


__all__ = [
    "SOURCE",
    "UnsubscribeLink",
    "make_unsubscribe_token",
    "read_unsubscribe_token",
    "unsubscribe",
    "unsubscribe_state",
    "unsubscribe_url",
]
