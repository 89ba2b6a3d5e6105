"""Saved segments, static lists, campaigns, the magazine's issues and suppressions.

Sending lives in :mod:`recrm_newsletter.outbox`; this package holds the definitions
and the state machine (draft → scheduled → sending → sent, or paused, cancelled).

One module a concept: ``rules`` (who may send, channels, states), ``segments``,
``lists``, ``fields`` (plugins' merge fields), ``sends`` (campaigns, issues, their
states and figures), ``suppressions``. :class:`Newsletter` is made of them; building
one customer's message (merge fields, the unsubscribe link, a preview, a test
message) is its own body, here. Every public name is importable from here
(``from recrm_newsletter.service import X``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recrm_core import (
    CRM,
    Actor,
    Customer,
    DeliveryResult,
    Message,
    require_role,
    unsubscribe_url,
    utcnow,
)

from ..content import POLITE_NAME, render, sms_text
from ..models import Send
from ..tables import SendRow
from .fields import Blank as Blank
from .rules import CHANNELS as CHANNELS
from .rules import FINAL as FINAL
from .rules import PURPOSE as PURPOSE
from .rules import SENDERS as SENDERS
from .rules import TEST_TOKEN as TEST_TOKEN
from .rules import aware_utc as aware_utc
from .sends import _Sends
from .suppressions import _Suppressions, address_hash
from .suppressions import normalise_address as normalise_address
from .suppressions import recipient_address as recipient_address


class Newsletter(_Sends, _Suppressions):
    """``recrm_newsletter.service(crm)``: everything the CLI and the API do."""

    def test_link(self) -> str:
        """The unsubscribe link of a test message: it withdraws nobody's consent."""
        return f"{self.crm.config.public_base_url}/u/{TEST_TOKEN}"

    def fields_for(self, customer: Customer, row: SendRow | Send,
                   extra: Mapping[str, Any] | None = None,
                   test: bool = False) -> dict[str, Any]:
        """The merge fields of one customer's message (``extra``: the plugins').
        ``test``: a test message, whose link is :meth:`test_link` (no token is signed)."""
        project = customer.projects[0].project if customer.projects else ""
        link = self.test_link() if test else unsubscribe_url(
            self.crm, customer.id, row.channel, row.purpose)
        return {
            **(extra or {}),
            "name": customer.name or POLITE_NAME, "project": project,
            "customer_id": customer.id, "issue": row.issue_number or 0,
            "unsubscribe_url": link,
        }

    def message_for(self, customer: Customer, row: SendRow | Send, to: str,
                    message_id: str | None, subject: str | None, html: str | None,
                    text: str | None, extra: Mapping[str, Any] | None = None,
                    test: bool = False) -> Message:
        """One customer's message: rendered, with its way out and its stable id
        (``test``: a test message, for nobody, with a link that withdraws nothing)."""
        conf = self.conf
        fields = self.fields_for(customer, row, extra, test)
        owner = None if test else customer.id
        headers: dict[str, str] = {}
        if row.channel == "email":
            link = fields["unsubscribe_url"]
            headers["List-Unsubscribe"] = f"<{link}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            if message_id:
                headers["Message-ID"] = message_id
            body_html = render(html, fields, html=True) if html else None
            body = render(text, fields) if text else _text_of(body_html or "", link)
            return Message(channel="email", to=to, subject=render(subject or "", fields),
                           body=body, html=body_html, customer_id=owner,
                           headers=headers)
        if message_id:
            headers["Idempotency-Key"] = message_id
        return Message(channel="sms", to=to, body=sms_text(render(text or "", fields),
                                                           conf.sms_signature),
                       customer_id=owner, headers=headers)

    def preview(self, name: str, customer_id: int, actor: Actor | None = None) -> Message:
        """The message one customer would get (nothing is sent or recorded)."""
        require_role(actor, SENDERS, "preview messages")
        with self.crm.unit_of_work(readonly=True) as uow:
            row = self._row(uow.session, name)
            uow.session.expunge(row)
        customer = self.crm.customers.get(customer_id)
        to = recipient_address(customer, row.channel) or "(no address)"
        extra = self.plugin_fields([customer]).get(customer.id)
        return self.message_for(customer, row, to, None, row.subject, row.html, row.text,
                                extra)

    def test_send(self, name: str, address: str, customer_id: int | None = None,
                  actor: Actor | None = None) -> DeliveryResult:
        """Send the message to one address (merge fields of ``customer_id``, or the
        polite fallbacks); recorded nowhere. Its unsubscribe link (body and
        ``List-Unsubscribe``) is :meth:`test_link`: no token is signed for anyone, so
        whoever clicks it withdraws nobody's consent."""
        require_role(actor, SENDERS, "send test messages")
        with self.crm.unit_of_work(readonly=True) as uow:
            row = self._row(uow.session, name)
            uow.session.expunge(row)
        to = normalise_address(self.crm, row.channel, address)
        if customer_id is not None:
            customer = self.crm.customers.get(customer_id)
        else:
            now = utcnow()
            # a stand-in for the merge fields only: no token is signed (test=True)
            customer = Customer(id=1, created_at=now, updated_at=now)
        extra = self.plugin_fields([customer]).get(customer.id) if customer_id else None
        message = self.message_for(customer, row, to, None, row.subject, row.html, row.text,
                                   extra or {k: Blank() for k in self._field_plugins()},
                                   test=True)
        if row.channel == "email":
            message = message.model_copy(update={"subject": f"[测试] {message.subject}"})
        return self.crm.send_message(message)



def _text_of(html: str, link: str) -> str:
    """A plain-text alternative for an HTML-only email: its text, and the link."""
    import re
    from html import unescape

    text = unescape(re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>|</p>", "\n", html)))
    text = "\n".join(line.strip() for line in text.splitlines() if line.strip())
    return text if link in text else f"{text}\n\n退订: {link}"


def service(crm: CRM) -> Newsletter:
    return Newsletter(crm)


__all__ = ["Newsletter", "address_hash", "service"]
