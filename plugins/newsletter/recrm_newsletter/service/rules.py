"""What every part of the newsletter service shares: who may send, the channels and
states, the checks a definition's name and times go through, and the service's CRM
and settings."""

from __future__ import annotations

import datetime as dt

from recrm_core import CRM, InvalidInput, utcnow
from recrm_core.values import required_code, zoned

from ..settings import NAME, NewsletterSettings, settings

#: who may define and send (a message needs the recipient's address in full)
SENDERS = ("admin", "manager")
CHANNELS = ("email", "sms")
#: the magazine's consent purpose (campaigns use the core's ``marketing``)
PURPOSE = NAME
FINAL = ("sent", "cancelled")
#: the unsubscribe token of a test message: not a signed token, so the page answers
#: 404 and nobody's consent is withdrawn
TEST_TOKEN = "TEST-MESSAGE-NO-UNSUBSCRIBE"


def _name(value: object, what: str, limit: int = 64) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(what, f"{what} must not be empty")
    text = value.strip()
    if len(text) > limit or any(ord(c) < 32 for c in text):
        raise InvalidInput(what, f"{what} must be one line of at most {limit} characters")
    return text


def _code_name(value: object, what: str, limit: int) -> str:
    """A name cleaned as the core cleans codes (NFKC, format characters dropped, a
    control character refused), so ``ｓｐｒｉｎｇ`` or a pasted zero-width space in
    ``spr\u200bing`` names campaign ``spring``, not a second one that prints alike."""
    if not isinstance(value, str):
        raise InvalidInput(what, f"{what} must not be empty")
    try:
        return required_code(value, what, limit)
    except ValueError as exc:
        raise InvalidInput(what, str(exc)) from None


def _channel(value: str) -> str:
    if value not in CHANNELS:
        raise InvalidInput("channel", f"channel {value!r} is not one of email, sms")
    return value


def aware_utc(value: dt.datetime | None, field: str = "now") -> dt.datetime:
    """``value`` in UTC (now when None); a naive time is refused, and so is one that
    has no UTC time (year 9999 west of UTC, year 1 east of it)."""
    if value is None:
        return utcnow()
    if value.tzinfo is None:
        raise InvalidInput(field, "a time needs its time zone")
    try:
        zoned(value, field)
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None
    return value.astimezone(dt.UTC)



class _Service:
    """What every part of :class:`~recrm_newsletter.service.Newsletter` shares."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    @property
    def conf(self) -> NewsletterSettings:
        return settings(self.crm)
