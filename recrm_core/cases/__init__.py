"""Service cases with SLAs: open, transfer, escalate and move through the statuses,
with a history row for every change and who made it.

Statuses: ``open → in_progress → resolved → closed``; ``resolved/closed → reopened →
in_progress/resolved`` (a case may also be resolved straight from ``open``). The SLA
due time is the clock start plus the policy's hours for the case's category and
priority (``crm.config.sla``), counted on the category's clock: calendar hours, or
working hours on China's working days (workingtime.py). A case opened without an
assignee is routed by the ``[[routing]]`` rules (caserouting.py); escalation moves it up
the ``[[sla.levels]]`` (escalation.py); incidents group cases (incidents.py).
Decisions the issue left open:

* **Reopening restarts the SLA clock**: the customer's problem is back, so the case
  gets a full allowance from the moment it is reopened (otherwise every reopened
  case would be overdue at once and the overdue list would stop meaning "late").
* **Escalation raises the priority one step** (``low → normal → high → urgent``; an
  urgent case only gains a level), hands the case to the new level's department and
  recomputes the due time for the new priority
  from the clock start (``opened_at``, or the last reopening). The due time never
  moves later, even where a category override would give the higher priority more
  hours: escalating must not relax a deadline.
* **A transfer to another department without an assignee unassigns the case**: the
  previous assignee belongs to the previous department, and the new one picks it up.
  A transfer that changes only the assignee keeps the department.
"""

from .rows import _lock as _lock
from .rows import _refuse as _refuse
from .rows import _stored_model as _stored_model
from .rules import ACTIVE as ACTIVE
from .rules import INTAKE_CHANNELS as INTAKE_CHANNELS
from .rules import PRIORITIES as PRIORITIES
from .rules import STATUSES as STATUSES
from .rules import TRANSITIONS as TRANSITIONS
from .rules import _place as _place
from .rules import _raised as _raised
from .rules import allowed_actions as allowed_actions
from .rules import overdue_clause as overdue_clause
from .rules import validate_case as validate_case
from .service import CaseService as CaseService
