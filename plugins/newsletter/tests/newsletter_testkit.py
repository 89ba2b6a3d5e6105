"""Shared helpers of the newsletter tests (a plain module, unique name across test dirs):
a real SMTP server (aiosmtpd) on a free local port, and consented customers."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from recrm_core import CRM

SEGMENT = {"field": "stage", "op": "eq", "value": "prospect"}
HTML = "<p>{{ name }}，您好！星珑湾三期开盘。</p><p><a href=\"{{ unsubscribe_url }}\">退订</a></p>"
SMS = "{{ name }}，星珑湾三期今日开盘，详询销售中心。回T退订"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Inbox:
    """What the SMTP server accepted: one parsed message per DATA."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.rcpt: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(envelope.original_content or envelope.content)
        self.rcpt.append(list(envelope.rcpt_tos))
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(r, policy=email.policy.default)  # type: ignore[misc]
                for r in self.raw]


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def smtp_settings(port: int, **more: Any) -> dict[str, Any]:
    return {"email_transport": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port,
            "from_address": "news@xinglong.example", **more}


def add_customers(crm: CRM, n: int, *, consent: Callable[[int], bool] = lambda i: True,
                  channel: str = "email", purpose: str = "marketing") -> list[int]:
    """``n`` prospects with a mobile and an email; those ``consent(i)`` grants."""
    ids = []
    for i in range(n):
        c = crm.customers.add({"name": f"王伟{i}", "mobile": f"1381234{i:04d}",
                               "email": f"owner{i}@example.com"}).customer
        ids.append(c.id)
        if consent(i):
            crm.consent.grant(c.id, channel, purpose, source="form")
    return ids
