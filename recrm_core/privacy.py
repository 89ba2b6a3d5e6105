"""Privacy requests (PIPL Art. 45, 47): a copy of everything about one person, and
their erasure — which every plugin takes part in and a scan of every column proves.

Export: one JSON document (the customer, identities, projects, interactions, cases with
their history, consents, follow-up tasks, the public pool's history, and each plugin's
section through ``recrm_customer_export``).

Erasure, in one transaction: the core removes the person's values from its tables
(below), every plugin erases through ``recrm_customer_erase``, the audit's free text
about them is redacted, and then every text column of every table is scanned for the
person's mobiles (the national digits in any spelling), ID number and email — and, in
the rows about them, their name. Any hit rolls the whole erasure back naming the table
and column. A dry run is the same work, rolled back: its plan is what would happen.

What the core keeps, and why:

- the customer row, without a single personal value, so the id answers "erased on ...";
- project links (stage, source, owner): the funnel's counts, no personal data;
- subscription, contract and handover steps with their unit and amount, without the
  person: the company's accounts and a signed contract's legal basis;
- cases, with subject, description and notes removed: the service level's figures;
- incidents whose every case is theirs, with title, description and resolution
  removed (an incident shared with other customers' cases stays as it is);
- follow-up tasks, without note or reason (open ones cancelled), and the public pool's
  history (codes and staff ids only): the consultants' and the pool's figures;
- the audit's receipts (who did what, when) and keyed hashes: no value in clear.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pydantic import Field
from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Connection,
    String,
    Table,
    Text,
    cast,
    delete,
    func,
    inspect,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from . import identity
from .access import check_writer, require_role
from .customers import load_customer, resolve_for_write
from .db import Base, chunks, utcnow
from .errors import InvalidInput, PluginError, Refused
from .models import Actor, Customer, ErasureStep, _Out
from .tables import (
    AuditRow,
    CaseHistoryRow,
    CaseRow,
    ConsentRow,
    CustomerProjectRow,
    CustomerRow,
    IdempotencyRow,
    IdentityRow,
    IncidentRow,
    InteractionRow,
    TaskRow,
    WebhookDeliveryRow,
    WebhookEventRow,
)

if TYPE_CHECKING:
    from .crm import CRM

#: interaction kinds that record a sale's steps: kept (unit, amount) without the person
KEPT_STEPS = ("subscription", "contract", "handover")
#: what the kept steps keep of their details
KEPT_STEP_DATA = ("stage", "unit", "amount")
#: what replaces text that was about the person
ERASED = "(erased)"
REDACTED = "(redacted)"
#: roles that may export or erase a person's data
PRIVACY_OFFICERS = ("admin",)


class ErasureReport(_Out):
    """What an erasure did (or, with ``dry_run``, would do)."""

    customer_id: int = Field(description="the person erased")
    merged_ids: list[int] = Field(default_factory=list,
                                  description="customers merged into them, erased with them")
    dry_run: bool = Field(description="True when nothing was changed")
    steps: list[dict[str, Any]] = Field(
        default_factory=list,
        description="per table: source (core or a plugin), table, deleted, anonymised, "
        "retained and the legal basis of what was retained")
    verified: bool = Field(description="the scan found none of the person's values")
    scanned_columns: int = Field(default=0, description="text columns the scan searched")


class SweepResult(_Out):
    """What a retention sweep did."""

    dry_run: bool = Field(description="True when nothing was changed")
    erased: list[ErasureReport] = Field(default_factory=list,
                                        description="the erasures (or their plans)")
    failed: dict[int, str] = Field(
        default_factory=dict, description="customers the scan would not let go, and why")


class ErasureFailed(Refused):
    """The scan found a value of the person after the erasure: it was rolled back."""


@dataclass(frozen=True)
class PersonValues:
    """A person's values as the erasure looks for them in text: the one rule the core's
    scan and redaction and the plugins' erase hooks share (``PersonValues.of(customer)
    .named_in(text)``)."""

    mobiles: tuple[str, ...]  # national digits
    id_cards: tuple[str, ...]
    emails: tuple[str, ...]  # lower-case
    names: tuple[str, ...] = ()

    @classmethod
    def of(cls, customer: Customer, names: bool = True) -> PersonValues:
        return cls(
            tuple(dict.fromkeys(identity.national_digits(m) for m in customer.mobiles)),
            (customer.id_card,) if customer.id_card else (),
            (customer.email.lower(),) if customer.email else (),
            (customer.name,) if names and customer.name and len(customer.name) >= 2 else ())

    def __bool__(self) -> bool:
        return bool(self.mobiles or self.id_cards or self.emails or self.names)

    def named_in(self, text: str | None, *, name: bool = False, only: str | None = None
                 ) -> bool:
        """Whether ``text`` holds one of the values: a mobile or ID number in any spelling
        (``139 1234 5678``, full-width digits) but not inside a longer number, the email
        in any case, and with ``name`` the name; ``only`` narrows to one kind."""
        if not text:
            return False
        plain = unicodedata.normalize("NFKC", text)
        checks: list[tuple[str, bool]] = [
            *(("mobile", bool(_spelled(m, country=True).search(plain))) for m in self.mobiles),
            *(("ID number", bool(_spelled(c).search(plain))) for c in self.id_cards),
            *(("email", e in plain.lower()) for e in self.emails),
        ]
        if name:
            checks += [("name", n in plain or json.dumps(n)[1:-1] in plain)
                       for n in self.names]
        return any(hit for what, hit in checks if only is None or what == only)


def redact_in(session: Session, column: InstrumentedAttribute[str | None],
              needles: PersonValues, where: ColumnElement[bool] | None = None) -> set[int]:
    """Replace with :data:`REDACTED`, in the rows ``where`` selects, each value of a
    plugin's free-text ``column`` (of a table keyed by ``id``) that names the person;
    the ids of the rows changed. For an erase hook: words naming the person in *other*
    records (a note on someone else's dispute), which the verification would find."""
    if not needles:
        return set()
    table = column.class_
    query = select(table.id, column).where(column.is_not(None))
    if where is not None:
        query = query.where(where)
    hits = {row_id for row_id, text in session.execute(query) if needles.named_in(text)}
    if hits:
        session.execute(update(table).where(table.id.in_(hits)).values({column.key: REDACTED})
                        .execution_options(synchronize_session=False))
    return hits


class PrivacyService:
    """``crm.privacy``: export and erasure of one person's data, and retention."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    # -- export -------------------------------------------------------------------------
    def export(self, customer_id: int, actor: Actor | None = None, *,
               deliver: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Everything held about the person, as one JSON-serialisable document. With
        ``deliver`` (writing it to a file), the export is audited once it was delivered:
        a copy that never left is no disclosure."""
        require_role(actor, PRIVACY_OFFICERS, "export a person's data")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            session = uow.session
            customer = load_customer(session, customer_id)
            self._refuse_partial(session, "export")
            ids = [customer.id, *merged_into(session, customer.id)]
            view = self.crm.customers.view(customer.id)
            interactions = self.crm.interactions.list_in(session, customer.id)
            plugins = self.crm.hooks.customer_export(uow, customer)
            # Copies of API responses kept a day for retries (docs/api.md).
            replays = [{"kept_at": at.isoformat(), "response": json.loads(body or "null")}
                       for at, body in session.execute(
                           select(IdempotencyRow.created_at, IdempotencyRow.body)
                           .where(IdempotencyRow.customer_id.in_(ids),
                                  IdempotencyRow.body.is_not(None))
                           .order_by(IdempotencyRow.created_at))]
            # Webhook events about them, until delivered and past retention.
            webhook_events = [json.loads(body) for body in session.scalars(
                select(WebhookEventRow.body).where(WebhookEventRow.customer_id.in_(ids))
                .order_by(WebhookEventRow.created_at, WebhookEventRow.id))]
            # Follow-up tasks and the public pool's history (releases, claims).
            tasks = self.crm.tasks.export_in(session, ids)
            pool_history = [e.model_dump(mode="json")
                            for e in self.crm.pool.history_in(session, ids)]
            session.rollback()
        document: dict[str, Any] = {
            "exported_at": utcnow().isoformat(),
            "customer": customer.model_dump(mode="json", exclude={"masked"}),
            "merged_ids": ids[1:],
            "identities": [i.model_dump(mode="json") for i in view.identities],
            "projects": [p.model_dump(mode="json") for p in customer.projects],
            "interactions": [i.model_dump(mode="json") for i in interactions],
            "cases": [self.crm.cases.get(c.id).model_dump(mode="json") for c in view.cases],
            "incidents": [self.crm.incidents.get(i).model_dump(mode="json", exclude={"cases"})
                          for i in sorted({c.incident_id for c in view.cases
                                           if c.incident_id is not None})],
            "consents": [c.model_dump(mode="json") for c in view.consents],
            "api_responses_kept": replays,
            "webhook_events": webhook_events,
            "tasks": tasks,
            "pool_history": pool_history,
            "plugins": {name: _jsonable(data) for name, data in sorted(plugins.items())},
        }
        if deliver is not None:
            deliver(document)
        self.crm.audit.append("export", customer_id=customer.id, actor=actor,
                              details={"kind": "person", "plugins": sorted(plugins)})
        return document

    # -- erasure ------------------------------------------------------------------------
    def erase(self, customer_id: int, reason: str | None = None, *, dry_run: bool = False,
              actor: Actor | None = None, now: dt.datetime | None = None) -> ErasureReport:
        """Erase the person (and the customers merged into them); ``dry_run`` does the
        same work and rolls it back. Raises ErasureFailed (rolled back) when the scan
        finds one of their values left anywhere."""
        require_role(actor, PRIVACY_OFFICERS, "erase a person's data")
        check_writer(actor)
        at = now or utcnow()
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            cid = resolve_for_write(session, customer_id)
            customer = load_customer(session, cid)
            self._refuse_partial(session, "erasure")
            merged = merged_into(session, cid)
            ids = [cid, *merged]
            needles = _needles(session, customer, ids)
            if needles.named_in(reason, name=True):
                raise InvalidInput("reason", "holds the person's own values; give a request "
                                   "reference instead (it is kept in the audit log)")
            from .pool import pool_erasure
            from .tasks import erase_tasks

            steps = [("core", step) for step in _erase_core(session, ids, at)]
            # their own tasks cleared first: the redaction is for other records' words
            steps.append(("core", erase_tasks(session, ids, at)))
            steps.extend(("core", step) for step in _redact_core_text(session, needles, ids))
            steps.append(("core", _erase_replays(session, needles, ids)))
            from .importjobs import erase_person as erase_from_import_jobs

            jobs_step, rewrite_job_files = erase_from_import_jobs(self.crm, session, needles, ids)
            steps.append(("core", jobs_step))
            steps.append(("core", _erase_webhook_events(session, needles, ids)))
            steps.append(("core", pool_erasure(session, ids)))
            for plugin, plugin_steps in self.crm.hooks.customer_erase(uow, customer, merged):
                steps.extend((plugin, ErasureStep.model_validate(s)) for s in plugin_steps)
            steps.append(("core", _redact_audit(session, ids)))
            steps.sort(key=lambda pair: pair[0] != "core")
            self.crm.audit.record(uow, "erase", customer_id=cid, reason=reason, details={
                "merged_ids": merged, "dry_run": dry_run,
                "steps": [{"source": src, **s.model_dump()} for src, s in steps]})
            session.flush()
            scanned = self._verify(session, needles, ids)
            report = ErasureReport(
                customer_id=cid, merged_ids=merged, dry_run=dry_run, verified=True,
                scanned_columns=scanned,
                steps=[{"source": src, **s.model_dump()} for src, s in steps])
            if dry_run:
                session.rollback()
            else:  # the scan passed: the import jobs' files lose the person too
                rewrite_job_files()
        return report

    def _refuse_partial(self, session: Session, request: str) -> None:
        """Refused when a plugin installed but not enabled here holds rows: its tables
        are outside what this CRM's hooks and scan cover, so the export would be missing
        them, or the erasure would leave them (and say it had not)."""
        from .schema import disabled_plugin_data

        found = disabled_plugin_data(self.crm, session.connection())
        if found:
            name, tables = next(iter(found.items()))
            raise Refused(
                f"plugin {name!r} is installed but not enabled and its tables "
                f"({', '.join(tables)}) hold data: enable it so that the {request} covers them")

    def _verify(self, session: Session, needles: PersonValues, ids: list[int]) -> int:
        """Scan every text column of every table of this CRM for the person's values;
        ErasureFailed naming the first table and column holding one."""
        from .schema import declare_tables

        declare_tables(self.crm)  # a light plugin's tables, though no hook of it ran
        conn = session.connection()
        present = set(inspect(conn).get_table_names())
        scanned = 0
        for table in Base.metadata.sorted_tables:
            if table.name not in present:
                continue
            theirs = _rows_about(table, ids)
            for column in _text_columns(table):
                scanned += 1
                for what, found in _found(conn, table, column, needles, theirs):
                    # Which row: a plugin's or a custom table's text may name them, and
                    # someone has to look at it before the erasure can go on.
                    row = ", ".join(str(v) for v in found)
                    raise ErasureFailed(
                        f"erasure of customer {ids[0]} rolled back: {table.name}.{column.name} "
                        f"(row {row}) still holds the person's {what}")
        return scanned

    # -- retention ----------------------------------------------------------------------
    def due_for_retention(self, now: dt.datetime | None = None) -> list[int]:
        """Prospects with no interaction for ``privacy.retention_months`` (none when the
        setting is off), oldest first."""
        months = self.crm.config.privacy.retention_months
        if months is None:
            return []
        cutoff = (now or utcnow()) - dt.timedelta(days=round(months * 30.44))
        last_touch = (
            select(func.max(InteractionRow.occurred_at))
            .where(InteractionRow.customer_id == CustomerRow.id)
            .scalar_subquery()
        )
        with self.crm.unit_of_work(readonly=True) as uow:
            return list(uow.session.scalars(
                select(CustomerRow.id).where(
                    CustomerRow.merged_into.is_(None), CustomerRow.erased_at.is_(None),
                    CustomerRow.stage == "prospect", CustomerRow.created_at < cutoff,
                    func.coalesce(last_touch, CustomerRow.created_at) < cutoff)
                .order_by(CustomerRow.id)))

    def sweep(self, *, dry_run: bool = False, actor: Actor | None = None,
              now: dt.datetime | None = None) -> SweepResult:
        """Erase every prospect past retention, each as its own audited erasure; one
        that cannot be erased (a trace the scan found) is reported and the sweep goes
        on with the others."""
        result = SweepResult(dry_run=dry_run)
        reason = f"retention: no interaction for {self.crm.config.privacy.retention_months} months"
        for cid in self.due_for_retention(now):
            try:
                result.erased.append(self.erase(cid, reason, dry_run=dry_run, actor=actor,
                                                now=now))
            except ErasureFailed as exc:
                result.failed[cid] = str(exc)
            except PluginError as exc:
                # A plugin's scan of what it keeps outside the tables (files) refuses
                # as the core's does; any other failure of a plugin stops the sweep.
                if not isinstance(exc.error, ErasureFailed):
                    raise
                result.failed[cid] = str(exc)
        return result


# -- the core's own erasure -------------------------------------------------------------------


def cast_table(row: type[Base]) -> Table:
    return row.__table__  # type: ignore[return-value]


def merged_into(session: Session, cid: int) -> list[int]:
    """The ids of the records merged into customer ``cid``, in id order: what a privacy
    request covers beside the person's own record (a plugin's export reads its rows
    kept under those ids too)."""
    return list(session.scalars(select(CustomerRow.id).where(CustomerRow.merged_into == cid)
                                .order_by(CustomerRow.id)))


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _erase_core(session: Session, ids: list[int], at: dt.datetime) -> list[ErasureStep]:
    steps: list[ErasureStep] = []
    removed = _count(session.execute(delete(IdentityRow).where(IdentityRow.customer_id.in_(ids))))
    steps.append(ErasureStep(table="identities", deleted=removed))
    kept = list(session.execute(select(InteractionRow.id, InteractionRow.data).where(
        InteractionRow.customer_id.in_(ids), InteractionRow.kind.in_(KEPT_STEPS))))
    for iid, data in kept:
        session.execute(update(InteractionRow).where(InteractionRow.id == iid).values(
            summary=None, channel=None,
            data={k: v for k, v in (data or {}).items() if k in KEPT_STEP_DATA}))
    gone = _count(session.execute(delete(InteractionRow).where(
        InteractionRow.customer_id.in_(ids), InteractionRow.kind.not_in(KEPT_STEPS))))
    steps.append(ErasureStep(
        table="interactions", deleted=gone, anonymised=len(kept),
        basis="subscription, contract and handover steps keep their unit and amount, "
        "without the person, for the accounts" if kept else None))
    case_ids = list(session.scalars(select(CaseRow.id).where(CaseRow.customer_id.in_(ids))))
    history = 0
    if case_ids:
        session.execute(update(CaseRow).where(CaseRow.id.in_(case_ids)).values(
            subject=ERASED, description=None))
        history = _count(session.execute(
            update(CaseHistoryRow).where(CaseHistoryRow.case_id.in_(case_ids))
            .values(note=None)))
    steps.append(ErasureStep(
        table="cases", anonymised=len(case_ids),
        basis="kept without subject, description or notes, for the service-level figures"
        if case_ids else None))
    steps.append(ErasureStep(table="case_history", anonymised=history,
                             basis="kept without notes: how each case was handled"
                             if history else None))
    # An incident whose every case is this person's is about them: its free text goes.
    # One shared with other customers' cases describes an event of theirs too: it stays.
    theirs = select(CaseRow.incident_id).where(CaseRow.id.in_(case_ids)).distinct()
    others = select(CaseRow.incident_id).where(CaseRow.customer_id.not_in(ids),
                                               CaseRow.incident_id.is_not(None))
    incidents = _count(session.execute(update(IncidentRow).where(
        IncidentRow.id.in_(theirs), IncidentRow.id.not_in(others)).values(
        title=ERASED, description=None, resolution=None))) if case_ids else 0
    steps.append(ErasureStep(table="incidents", anonymised=incidents,
                             basis="kept without title, description or resolution: the "
                             "incident's cases and dates" if incidents else None))
    links = session.scalar(select(func.count()).select_from(CustomerProjectRow).where(
        CustomerProjectRow.customer_id.in_(ids))) or 0
    steps.append(ErasureStep(table="customer_projects", retained=links,
                             basis="project, stage, source and owner: the funnel's counts, "
                             "no personal data" if links else None))
    steps.append(ErasureStep(table="consents", deleted=_count(session.execute(
        delete(ConsentRow).where(ConsentRow.customer_id.in_(ids))))))
    session.execute(update(CustomerRow).where(CustomerRow.id.in_(ids)).values(
        name=None, gender=None, birth_date=None, persona=None, budget=None, email=None,
        source_system=None, external_id=None, erased_at=at, updated_at=at))
    steps.append(ErasureStep(
        table="customers", anonymised=len(ids),
        basis="the row stays without personal data, so the id answers 'erased'"))
    return steps


def _erase_replays(session: Session, needles: PersonValues, ids: list[int]) -> ErasureStep:
    """The HTTP API's kept responses (``Idempotency-Key`` replays, a day at most) about
    the person or naming them: deleted, a retry then runs again."""
    table = cast_table(IdempotencyRow)
    gone = _count(session.execute(delete(IdempotencyRow).where(
        IdempotencyRow.customer_id.in_(ids))))
    doomed = {found for _, found in _found(session.connection(), table, table.c.body,
                                           needles, None)}
    for key_id, key in doomed:
        gone += _count(session.execute(delete(IdempotencyRow).where(
            IdempotencyRow.api_key_id == key_id, IdempotencyRow.key == key)))
    return ErasureStep(table="api_idempotency", deleted=gone)


def _erase_webhook_events(session: Session, needles: PersonValues, ids: list[int]
                          ) -> ErasureStep:
    """Webhook events (the outbox, kept ``webhooks.retention_days`` after delivery)
    about the person or naming them: deleted with their deliveries, so what is still
    pending is never sent."""
    table = cast_table(WebhookEventRow)
    doomed = set(session.scalars(select(WebhookEventRow.id)
                                 .where(WebhookEventRow.customer_id.in_(ids))))
    doomed |= {found[0] for _, found in _found(session.connection(), table, table.c.body,
                                               needles, None)}
    for chunk in chunks(sorted(doomed)):
        session.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.event_id.in_(chunk)))
        session.execute(delete(WebhookEventRow).where(WebhookEventRow.id.in_(chunk)))
    return ErasureStep(table="webhook_events", deleted=len(doomed))


def _redact_audit(session: Session, ids: list[int]) -> ErasureStep:
    """The one change the audit allows: free text of the person's entries redacted
    (recorded by the erase entry that follows)."""
    redacted = _count(session.execute(
        update(AuditRow).where(AuditRow.customer_id.in_(ids), AuditRow.reason.is_not(None))
        .values(reason=REDACTED)))
    return ErasureStep(table="audit_log", anonymised=redacted,
                       basis="receipts kept (PIPL Art. 56), their free text redacted")


# -- the verification scan -------------------------------------------------------------------


def _needles(session: Session, customer: Customer, ids: list[int]) -> PersonValues:
    found = PersonValues.of(customer)
    # Merged-away records lost their identities to the survivor but keep their own
    # profile values until erased with it.
    merged = session.execute(select(CustomerRow.name, CustomerRow.email).where(
        CustomerRow.id.in_(ids[1:]))).all()
    return replace(
        found,
        emails=tuple(dict.fromkeys([*found.emails, *(e.lower() for _, e in merged if e)])),
        names=tuple(dict.fromkeys([*found.names, *(n for n, _ in merged if n and len(n) >= 2)])))


def _text_columns(table: Table) -> Iterator[Column[Any]]:
    for column in table.columns:
        if isinstance(column.type, String | Text | JSON):
            yield column


def _rows_about(table: Table, ids: list[int]) -> ColumnElement[bool] | None:
    """The rows of ``table`` about the person: the customers rows themselves, or those
    whose customer column (a foreign key to customers, or a ``customer_id``) is theirs."""
    if table.name == CustomerRow.__tablename__:
        return table.c.id.in_(ids)
    refs = [c for c in table.columns
            if c.name == "customer_id" or any(fk.column.table.name == "customers"
                                              for fk in c.foreign_keys)]
    if not refs:
        return None
    return or_(*(ref.in_(ids) for ref in refs))


def _as_text(conn: Connection, column: Column[Any]) -> ColumnElement[str]:
    return cast(column, Text) if isinstance(column.type, JSON) else column


def _digits(conn: Connection, text: ColumnElement[str]) -> ColumnElement[str]:
    if conn.dialect.name == "postgresql":
        return func.regexp_replace(func.translate(text, "０１２３４５６７８９", "0123456789"),
                                   "[^0-9]", "", "g")
    return func.recrm_digits(text)


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _hits(conn: Connection, column: Column[Any], needles: PersonValues,
          theirs: ColumnElement[bool] | None) -> Iterator[tuple[str, ColumnElement[bool]]]:
    """``(what, condition)`` for each value of the person the column must not hold."""
    text = _as_text(conn, column)
    for mobile in needles.mobiles:
        yield "mobile", _digits(conn, text).like(_like(mobile), escape="\\")
    for card in needles.id_cards:
        # Its first 17 digits, whatever separates them (the check character may be X).
        yield "ID number", _digits(conn, text).like(_like(card[:17]), escape="\\")
    for email in needles.emails:
        yield "email", func.lower(text).like(_like(email), escape="\\")
    if theirs is None:
        return
    for name in needles.names:
        # JSON keeps non-ASCII escaped (\\u738b): look for both spellings.
        for spelling in {name, json.dumps(name)[1:-1]}:
            yield "name", theirs & text.like(_like(spelling), escape="\\")


#: the core's free-text columns (and the JSON details), with what replaces a value that
#: names the person in another record: the friend's note goes, not the friend's record
_REDACTABLE: tuple[tuple[Table, str, Any], ...] = (
    (cast_table(InteractionRow), "summary", REDACTED),
    (cast_table(InteractionRow), "data", {}),
    (cast_table(CaseRow), "subject", REDACTED),
    (cast_table(CaseRow), "description", REDACTED),
    (cast_table(CaseHistoryRow), "note", REDACTED),
    (cast_table(IncidentRow), "title", REDACTED),
    (cast_table(IncidentRow), "description", REDACTED),
    (cast_table(IncidentRow), "resolution", REDACTED),
    (cast_table(TaskRow), "note", REDACTED),
    (cast_table(TaskRow), "cancel_reason", REDACTED),
    (cast_table(ConsentRow), "source", None),
    (cast_table(CustomerProjectRow), "source", None),
    (cast_table(AuditRow), "reason", REDACTED),
)


def _redact_core_text(session: Session, needles: PersonValues, ids: list[int]
                      ) -> list[ErasureStep]:
    """Free text in the core's tables that names the person — a friend's interaction
    ("介绍朋友 139 1234 5678"), a note on another case, their own name in a source — is
    replaced, so the erasure can go through; the scan then proves nothing is left."""
    conn = session.connection()
    counts: dict[str, int] = {}
    for table, name, replacement in _REDACTABLE:
        column = table.c[name]
        rows = {found for _, found in _found(conn, table, column, needles,
                                             _rows_about(table, ids))}
        for found in rows:
            pk = dict(zip((c.name for c in table.primary_key.columns), found, strict=True))
            conn.execute(update(table).filter_by(**pk).values({name: replacement}))
        if rows:
            counts[table.name] = counts.get(table.name, 0) + len(rows)
    return [ErasureStep(table=t, anonymised=n,
                        basis="other records kept, their words naming the person redacted")
            for t, n in counts.items()]


def _found(conn: Connection, table: Table, column: Column[Any], needles: PersonValues,
           theirs: ColumnElement[bool] | None) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """``(what, primary key)`` of the rows whose ``column`` holds a value of the person:
    SQL narrows to candidates, :meth:`PersonValues.named_in` confirms (a mobile's digits
    inside a longer number are someone else's)."""
    key: list[ColumnElement[Any]] = list(table.primary_key.columns) or [literal(1)]
    text = _as_text(conn, column)
    for what, condition in _hits(conn, column, needles, theirs):
        for row in conn.execute(select(*key, text).select_from(table).where(condition)):
            if needles.named_in(str(row[-1]), name=what == "name", only=what):
                yield what, tuple(row[:-1])


def _spelled(value: str, *, country: bool = False) -> re.Pattern[str]:
    """``value`` with up to two separators between its characters (``139 1234 5678``,
    ``139-1234-5678``, ``110101 19900307 109X``), not inside a longer number; with
    ``country`` (a mobile) also after ``+86`` or ``0086``: the E.164 form a message's
    address takes (``+8613912345678``) is the person's number, not a longer one."""
    gap = r"[\s\-.()（）/]{0,2}"
    before = r"(?:(?<![0-9])|(?<=\+86)|(?<=(?<![0-9])0086))" if country else r"(?<![0-9])"
    return re.compile(before + gap.join(re.escape(ch) for ch in value) + r"(?![0-9])",
                      re.IGNORECASE)


def _jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data, ensure_ascii=False, default=str))
