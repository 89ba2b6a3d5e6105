"""recrm-channels: agencies (中介/渠道) register customers (报备) for projects.

- agencies and their agents (each agent is also staff of role ``partner``);
- per-project rule versions (``[channels]`` gives version 0), each in force from its
  time; a registration is judged under the version in force when it was made;
- registrations stored whatever the outcome (``pending`` or ``rejected`` with the
  reason), one active per mobile and project (a partial unique index);
- 判客 as one pure function, :func:`recrm_channels.attribution.attribute`, run on
  every visit and stage move through the core's hooks;
- disputes (:class:`Disputes`): an upheld one is a ruling 判客 replays;
- ``recrm channel ...`` commands, ``/v1/channels/`` routes for agencies' keys, and the
  privacy hooks (export, erase);
- the report ``channels.commission`` (``recrm_reports``): ``recrm channel report``'s
  figures per agency, project and period (see :mod:`recrm_channels.reports`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recrm_core import lazy_exports

# The hook implementations pluggy finds: loading the plugin imports these and the
# settings, nothing more; every other public name is imported on first use.
from .hooks import (
    recrm_api_routes,
    recrm_customer_erase,
    recrm_customer_export,
    recrm_declare_tables,
    recrm_demo,
    recrm_interactions_logged,
    recrm_project_renamed,
    recrm_register_audit_actions,
    recrm_register_commands,
    recrm_register_settings,
    recrm_reports,
    recrm_segment_fields,
    recrm_stages_changed,
    recrm_timeline,
    recrm_withhold_referral_reward,
)
from .settings import NAME, ChannelsSettings, Rules, settings

#: the plugin's name (``recrm.toml``, settings section, table and field prefix)
name = NAME
__version__ = "0.1.0"

lazy_exports(__name__, {
    **dict.fromkeys(["Decision", "Event", "RuleBook", "RuleVersion", "attribute"],
                    "attribution"),
    "Dispute": "disputes",
    "Disputes": "disputes",
    **dict.fromkeys(["Agency", "Agent", "AgentRegistrationIn", "Explanation", "Registration",
                     "RegistrationIn", "RuleSet", "VisitIn"], "models"),
    "Channels": "service",
    "RegistrationRefused": "service",
    "service": "service",
})

if TYPE_CHECKING:  # the same names, for type checkers
    from .attribution import Decision, Event, RuleBook, RuleVersion, attribute
    from .disputes import Dispute, Disputes
    from .models import (
        Agency,
        Agent,
        AgentRegistrationIn,
        Explanation,
        Registration,
        RegistrationIn,
        RuleSet,
        VisitIn,
    )
    from .service import Channels, RegistrationRefused, service

__all__ = [
    "NAME",
    "Agency",
    "Agent",
    "AgentRegistrationIn",
    "Channels",
    "ChannelsSettings",
    "Decision",
    "Dispute",
    "Disputes",
    "Event",
    "Explanation",
    "Registration",
    "RegistrationIn",
    "RegistrationRefused",
    "RuleBook",
    "RuleSet",
    "RuleVersion",
    "Rules",
    "VisitIn",
    "attribute",
    "name",
    "recrm_api_routes",
    "recrm_customer_erase",
    "recrm_customer_export",
    "recrm_declare_tables",
    "recrm_demo",
    "recrm_interactions_logged",
    "recrm_project_renamed",
    "recrm_register_audit_actions",
    "recrm_register_commands",
    "recrm_register_settings",
    "recrm_reports",
    "recrm_segment_fields",
    "recrm_stages_changed",
    "recrm_timeline",
    "recrm_withhold_referral_reward",
    "service",
    "settings",
]
