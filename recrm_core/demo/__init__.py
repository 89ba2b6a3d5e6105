"""The demo company behind ``recrm demo``: a developer with two projects, a few
thousand customers moving through the sales funnel, their timeline, consents and
service cases, plus whatever every enabled plugin seeds through ``recrm_demo``.

Everything is written through the public services, so plugins see the same hooks
they would see in production. The data is planned first from one seeded
``random.Random`` and a seeded Faker (pure, no database), then written; so a seed
always gives the same customers, funnel and cases and therefore the same summary.

Time: the summary never shows a time, and the wall clock only places the history
(visits, contracts and handovers are dated in whole days before today, so the demo
always looks current). Cases are the exception that needs the real clock: an
"overdue" case must be overdue now, so open cases are back-dated from the real
current time: overdue ones by their SLA plus at least a day, on-time ones by at most
half of it, which keeps the counts the same whatever the time of day. The case
service records its own clock for taking up and resolving a case (no time can be
given), so resolved cases are opened shortly before now: most a few hours before
(within their SLA), one in eight past it, and their response and resolution times
read as a service centre's (the survey plugin's call-backs, closing cases its answers
opened weeks ago, stay long: they are closed now too).
The import likewise stamps every project link's ``first_seen_at`` with the time it
ran: the funnel and sources reports count the demo's prospects as arriving today.
"""

from __future__ import annotations

# the identity tests check every region code the demo's ID cards are made with
from .anchor import demo_anchor
from .company import _ID_REGIONS as _ID_REGIONS
from .company import DEMO_ROUTING as DEMO_ROUTING
from .company import PROJECTS, DemoProject
from .company import SOURCES as SOURCES
from .dashboard import DASHBOARD_FILE, DEMO_REPORTS, demo_path, demo_request, write_demo_dashboard
from .running import DEFAULT_CUSTOMERS, DEFAULT_SEED, DEMO_DB_FILE, plugin_rng, run_demo, seed_demo
from .summary import (
    CaseCount,
    CasesSummary,
    ConsentCount,
    ConsultantFollowups,
    DemoSection,
    DemoSummary,
    FollowupsSummary,
    PoolCount,
    ProjectSummary,
    summarise,
)

__all__ = [
    "DASHBOARD_FILE",
    "DEFAULT_CUSTOMERS",
    "DEFAULT_SEED",
    "DEMO_DB_FILE",
    "DEMO_REPORTS",
    "PROJECTS",
    "CaseCount",
    "CasesSummary",
    "ConsentCount",
    "ConsultantFollowups",
    "DemoProject",
    "DemoSection",
    "DemoSummary",
    "FollowupsSummary",
    "PoolCount",
    "ProjectSummary",
    "demo_anchor",
    "demo_path",
    "demo_request",
    "plugin_rng",
    "run_demo",
    "seed_demo",
    "summarise",
    "write_demo_dashboard",
]
