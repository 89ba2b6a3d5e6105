"""The core's default message transport: print the message (to stderr).

Registered as a builtin plugin with ``trylast`` so any real transport (SMTP,
files, an SMS gateway) that answers for a channel wins.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from .hooks import hookimpl
from .models import DeliveryResult, Message
from .terminal import printable

if TYPE_CHECKING:
    from .crm import CRM

name = "console"


@hookimpl(trylast=True)
def recrm_deliver_message(crm: CRM, message: Message) -> DeliveryResult:
    stream = crm.console_stream or sys.stderr
    subject = f" [{message.subject}]" if message.subject else ""
    # A merge field (a customer's name) must not reach the terminal as escapes.
    print(printable(f"--- {message.channel} to {message.to}{subject}"), file=stream)
    print(printable(message.body, lines=True), file=stream)
    return DeliveryResult(transport="console", ok=True)
