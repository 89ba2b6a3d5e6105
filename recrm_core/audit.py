"""The audit log: an append-only record of who processed whose personal data, how.

PIPL (Art. 51, 56) asks for processing records kept three years or more. One row per
audited action: when, the actor (staff id and role; ``sdk`` for the integrator's own
calls), the action, the customer, the channel (cli, api, sdk), a reason a person
gave, and details that hold no personal data in clear (an identity value appears only
as its keyed hash, :meth:`AuditService.hash`). Nothing here edits or deletes an entry
but :meth:`AuditService.prune`, which refuses anything younger than the retention.
Plugins append with :meth:`AuditService.record` under actions they register through
``recrm_register_audit_actions``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, delete, insert, select

from .db import utcnow
from .errors import InvalidInput, Refused
from .models import Actor, AuditEntry
from .tables import AuditRow

if TYPE_CHECKING:
    from .crm import CRM
    from .db import UnitOfWork

#: the core's actions, and what each records
CORE_ACTIONS: dict[str, str] = {
    "disclose": "a customer's full details shown on request, with the reason",
    "export": "a list of customers written to a file, with the row count",
    "erase": "a customer's personal data erased",
    "merge": "two customer records merged",
    "reassign": "customers moved from one consultant to another",
    "pool": "customers released to the public pool or claimed from it",
    "consent": "a consent granted or withdrawn",
    "import": "customers imported from a file, with the counts",
    "bulk_send": "messages sent to many customers",
    "prune": "audit entries past retention deleted",
    "apikey": "an API key created or revoked (its prefix, staff and role)",
    "webhook": "a webhook added or removed (its id, host and event types)",
}
_ACTION = re.compile(r"[a-z][a-z0-9_.]{0,63}")
_INSERT = insert(cast(Table, AuditRow.__table__))
#: kinds of identity values the details may carry, as keyed hashes only
HASHED_KINDS = ("mobile", "id_card", "email", "wechat", "name")


class AuditService:
    """``crm.audit``: append, read and prune the audit log."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self._actions: dict[str, str] | None = None
        self._plugins = 0

    def actions(self) -> dict[str, str]:
        """Every action name known: the core's and those plugins registered."""
        # Rebuilt when plugins come or go (a test's register_plugin): the registry
        # belongs to the set of plugins, not to the CRM alone.
        plugins = len(self.crm.pm.get_plugins())
        if self._actions is None or self._plugins != plugins:
            self._plugins = plugins
            actions = dict(CORE_ACTIONS)

            def register(name: str, description: str) -> None:
                if not isinstance(name, str) or not _ACTION.fullmatch(name):
                    raise ValueError(f"audit action {name!r} is not a lower-case name")
                if name in actions:
                    raise ValueError(f"audit action {name!r} is registered twice")
                actions[name] = str(description)

            self.crm.hooks.register_audit_actions(register)
            self._actions = actions
        return self._actions

    def hash(self, kind: str, value: str) -> str:
        """The keyed hash of an identity value, as details carry it (``h1:...``); needs
        the key file."""
        return self.crm.keys.keyed_hash(kind, value)

    def record(self, uow: UnitOfWork, action: str, *, customer_id: int | None = None,
               details: Mapping[str, Any] | None = None, reason: str | None = None) -> None:
        """Append an entry inside the running operation (it commits with it). The actor
        is the operation's; ``details`` must hold no personal data in clear."""
        self.record_many(uow, action, [(customer_id, details)], reason=reason)

    def record_many(self, uow: UnitOfWork, action: str,
                    entries: Iterable[tuple[int | None, Mapping[str, Any] | None]], *,
                    reason: str | None = None) -> None:
        """:meth:`record` for many entries of one action, each ``(customer_id,
        details)``, in order: one statement for all of them (a bulk load of consents
        audits thousands)."""
        if action not in self.actions():
            raise InvalidInput("action", f"unknown audit action {action!r}; register it "
                               "with recrm_register_audit_actions")
        actor = uow.actor
        common = {
            "at": utcnow(),
            "actor_staff": actor.staff_id if actor else None,
            "actor_role": actor.role if actor else "sdk",
            "action": action,
            "channel": actor.channel if actor else "sdk",
            "reason": reason,
        }
        rows = [common | {"customer_id": customer_id, "details": dict(details or {})}
                for customer_id, details in entries]
        if rows:
            # A Core insert: one more row in every audited operation, at a fraction of
            # an ORM object's flush.
            # (uow.connection: pending ORM changes flushed first, no Session made)
            uow.connection.execute(_INSERT, rows[0] if len(rows) == 1 else rows)

    def append(self, action: str, *, customer_id: int | None = None,
               details: Mapping[str, Any] | None = None, reason: str | None = None,
               actor: Actor | None = None) -> None:
        """:meth:`record` in an operation of its own."""
        with self.crm.unit_of_work(actor) as uow:
            self.record(uow, action, customer_id=customer_id, details=details, reason=reason)

    def entries(
        self,
        *,
        customer_id: int | None = None,
        actor_staff: str | None = None,
        action: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Entries matching every filter given, oldest first (``until`` exclusive)."""
        query = select(AuditRow).order_by(AuditRow.id)
        if customer_id is not None:
            query = query.where(AuditRow.customer_id == customer_id)
        if actor_staff is not None:
            query = query.where(AuditRow.actor_staff == actor_staff)
        if action is not None:
            query = query.where(AuditRow.action == action)
        if since is not None:
            query = query.where(AuditRow.at >= since)
        if until is not None:
            query = query.where(AuditRow.at < until)
        if limit is not None:
            query = query.limit(limit)
        with self.crm.unit_of_work(readonly=True) as uow:
            return [_entry(row) for row in uow.session.scalars(query)]

    def oldest_prunable(self, today: dt.date | None = None) -> dt.date:
        """The latest ``before`` date :meth:`prune` accepts: entries are kept
        ``audit_retention_years`` years at least."""
        today = today or dt.datetime.now(self.crm.config.zone).date()
        years = self.crm.config.audit_retention_years
        try:
            return today.replace(year=today.year - years)
        except ValueError:  # 29 February
            return today.replace(year=today.year - years, day=28)

    def prune(self, before: dt.date, actor: Actor | None = None) -> int:
        """Delete the entries older than ``before`` (a date in the business time zone);
        refused when that would delete an entry younger than the retention. The
        pruning is itself recorded."""
        limit = self.oldest_prunable()
        if before > limit:
            raise Refused(
                f"audit entries are kept {self.crm.config.audit_retention_years} years: "
                f"--before must be {limit.isoformat()} or earlier")
        start = dt.datetime.combine(before, dt.time(), self.crm.config.zone)
        with self.crm.unit_of_work(actor) as uow:
            result = uow.session.execute(delete(AuditRow).where(AuditRow.at < start))
            count = int(getattr(result, "rowcount", 0) or 0)
            self.record(uow, "prune", details={"before": before.isoformat(), "deleted": count})
        return count


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(id=row.id, at=row.at, actor_staff=row.actor_staff,
                      actor_role=row.actor_role, action=row.action,
                      customer_id=row.customer_id, channel=row.channel, reason=row.reason,
                      details=dict(row.details or {}))

