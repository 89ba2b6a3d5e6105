"""recrm-newsletter: campaigns and the owners' magazine (一份报) to consented audiences.

- saved segments (the core's JSON definitions, by name) and static lists (CSV/XLSX,
  by mobile or ID card);
- campaigns and publications with numbered issues, templated in Jinja2's sandbox,
  each message carrying its way out (unsubscribe link and RFC 8058 headers, 回T退订);
- an outbox with leases (:mod:`recrm_newsletter.outbox`): resumable, and never sent
  twice by two senders; consent, suppressions and the frequency cap checked at send
  time; quiet hours for SMS;
- transports behind the core's ``recrm_deliver_message``: SMTP, files, an HTTP SMS
  provider; the ``newsletter`` consent purpose; ``recrm newsletter ...``; the
  privacy hooks (export, erase);
- the report ``newsletter.sends`` (``recrm_reports``): ``campaign status``'s
  figures for every send started in the period (see :mod:`recrm_newsletter.reports`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recrm_core import lazy_exports

# The hook implementations pluggy finds: loading the plugin imports these and the
# settings, nothing more; every other public name is imported on first use.
from .hooks import (
    recrm_api_routes,
    recrm_consent_purposes,
    recrm_customer_erase,
    recrm_customer_export,
    recrm_customer_merged,
    recrm_declare_tables,
    recrm_deliver_message,
    recrm_demo,
    recrm_register_commands,
    recrm_register_settings,
    recrm_reports,
)
from .settings import NAME, NewsletterSettings, settings

#: the plugin's name (``recrm.toml``, settings section, table prefix, consent purpose)
name = NAME
__version__ = "0.1.0"

lazy_exports(__name__, {
    "sms_length": "content",
    "BounceResult": "models",
    "RunResult": "models",
    "Send": "models",
    "SendReport": "models",
    "Suppression": "models",
    "Sender": "outbox",
    "Newsletter": "service",
    "service": "service",
})

if TYPE_CHECKING:  # the same names, for type checkers
    from .content import sms_length
    from .models import BounceResult, RunResult, Send, SendReport, Suppression
    from .outbox import Sender
    from .service import Newsletter, service

__all__ = [
    "NAME",
    "BounceResult",
    "Newsletter",
    "NewsletterSettings",
    "RunResult",
    "Send",
    "SendReport",
    "Sender",
    "Suppression",
    "name",
    "recrm_api_routes",
    "recrm_consent_purposes",
    "recrm_customer_erase",
    "recrm_customer_export",
    "recrm_customer_merged",
    "recrm_declare_tables",
    "recrm_deliver_message",
    "recrm_demo",
    "recrm_register_commands",
    "recrm_register_settings",
    "recrm_reports",
    "service",
    "settings",
    "sms_length",
]
