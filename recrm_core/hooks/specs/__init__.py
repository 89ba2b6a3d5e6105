"""Every hook specification of recrm.

Each spec says when it fires, what it receives, what it may return and whether it
runs inside the operation's transaction. Implementations may accept fewer
arguments than a spec lists (pluggy's opt-in arguments); the core always calls
hooks with keywords, so new arguments never break an existing plugin.

"Inside the transaction" means the hook gets the operation's
:class:`~recrm_core.db.UnitOfWork` as ``uow``: write through ``uow.session`` and
your rows commit or roll back with the core's. If an implementation raises, the
whole operation rolls back and the caller gets a
:class:`~recrm_core.errors.PluginError` naming the plugin.

Each concept's specifications live in a module of this package (``startup``,
``customers``, ``service``, ``privacy``, ``messages``, ``integration``); all of them
are importable from ``recrm_core.hooks.specs``, the one namespace pluggy reads.
"""

from __future__ import annotations

from . import customers, integration, messages, privacy, service, startup
from .customers import (
    recrm_customer_created,
    recrm_customer_merged,
    recrm_customer_updated,
    recrm_customers_imported,
    recrm_owners_changed,
    recrm_project_renamed,
    recrm_segment_fields,
    recrm_stage_changed,
    recrm_stages_changed,
    recrm_withhold_referral_reward,
)
from .integration import (
    recrm_api_routes,
    recrm_demo,
    recrm_register_audit_actions,
    recrm_reports,
    recrm_webhook_events,
)
from .messages import (
    recrm_deliver_message,
    recrm_message_fields,
)
from .privacy import (
    recrm_consent_purposes,
    recrm_customer_erase,
    recrm_customer_export,
)
from .service import (
    recrm_case_opened,
    recrm_case_status_changed,
    recrm_interaction_logged,
    recrm_interactions_logged,
    recrm_task_created,
    recrm_task_done,
    recrm_timeline,
)
from .startup import (
    recrm_declare_tables,
    recrm_register_commands,
    recrm_register_settings,
    recrm_startup,
)

#: the modules, in the order the hook reference (docs/hooks.md) lists them
MODULES = (startup, customers, service, privacy, messages, integration)

__all__ = [
    "recrm_api_routes",
    "recrm_case_opened",
    "recrm_case_status_changed",
    "recrm_consent_purposes",
    "recrm_customer_created",
    "recrm_customer_erase",
    "recrm_customer_export",
    "recrm_customer_merged",
    "recrm_customer_updated",
    "recrm_customers_imported",
    "recrm_declare_tables",
    "recrm_deliver_message",
    "recrm_demo",
    "recrm_interaction_logged",
    "recrm_interactions_logged",
    "recrm_message_fields",
    "recrm_owners_changed",
    "recrm_project_renamed",
    "recrm_register_audit_actions",
    "recrm_register_commands",
    "recrm_register_settings",
    "recrm_reports",
    "recrm_segment_fields",
    "recrm_stage_changed",
    "recrm_stages_changed",
    "recrm_startup",
    "recrm_task_created",
    "recrm_task_done",
    "recrm_timeline",
    "recrm_webhook_events",
    "recrm_withhold_referral_reward",
]
