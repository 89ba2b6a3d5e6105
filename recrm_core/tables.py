"""The core's tables. ORM rows stay inside the services; callers get pydantic models."""

# No ``from __future__ import annotations``: SQLAlchemy would evaluate each of the
# ~200 ``Mapped[...]`` strings back into types at every start-up (~40 M instructions).

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, UTCDateTime, utcnow
from .partialindex import PartialIndex
from .values import MAX_MINUTES


class CustomerRow(Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("source_system", "external_id"),
        # A merged customer points at another one: a row pointing at itself would
        # vanish from every count and resolve to nothing.
        CheckConstraint("merged_into IS NULL OR merged_into <> id", name="not_self_merged"),
        # Partial: read only for a value (``email = …``, ``merged_into = …``), while
        # most rows have none, and an import would write an entry for each (core_0014).
        *(PartialIndex(f"ix_customers_{column}", column, where=f"{column} IS NOT NULL")
          for column in ("email", "merged_into")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    gender: Mapped[str | None] = mapped_column(String(6))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    persona: Mapped[str | None] = mapped_column(String(16))
    budget: Mapped[int | None] = mapped_column(BigInteger)
    email: Mapped[str | None] = mapped_column(String(254))
    source_system: Mapped[str | None] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(128))
    # The furthest stage over all of the customer's projects, kept in step by the
    # stage service so segments and lists need no aggregate.
    stage: Mapped[str] = mapped_column(String(12), default="prospect", index=True)
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when the person was erased (PIPL Art. 47): the row stays, without personal data,
    #: so the id resolves to "erased on ..." rather than to nothing or to someone else
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class IdentityRow(Base):
    """One identifying key of a customer; UNIQUE(kind, value) makes the database
    guarantee one customer per key. ``value`` is what is matched on, ``display``
    what is shown, so the ID card can later be matched on a keyed hash."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(128))
    display: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(64))
    #: the department that serves the project's owners (物业/客服), for routing cases
    service_department: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerProjectRow(Base):
    """A customer's relationship with one project (stage, owning consultant)."""

    __tablename__ = "customer_projects"
    __table_args__ = (
        UniqueConstraint("customer_id", "project_id"),
        Index("ix_customer_projects_owner_staff_project", "owner_staff", "project_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No index of its own: UNIQUE(customer_id, project_id) serves lookups by customer.
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    stage: Mapped[str] = mapped_column(String(12), default="prospect")
    owner_staff: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    stage_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when the current owner got the link (kept by the core's ``recrm_owners_changed``
    #: implementation); the public pool's idle clock starts here. None: before core_0011
    owner_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class InteractionRow(Base):
    """Append-only timeline entry."""

    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_customer_occurred", "customer_id", "occurred_at"),
        CheckConstraint(f"minutes IS NULL OR (minutes >= 0 AND minutes <= {MAX_MINUTES})",
                        name="minutes_in_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    channel: Mapped[str | None] = mapped_column(String(32))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), index=True)
    staff: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    summary: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: how long the contact took, when told (the staff report's contact minutes)
    minutes: Mapped[int | None] = mapped_column(Integer)


class ConsentRow(Base):
    """One grant or withdrawal; the newest record per (customer, channel, purpose) decides."""

    __tablename__ = "consents"
    __table_args__ = (
        Index("ix_consents_customer_channel_purpose", "customer_id", "channel", "purpose"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str | None] = mapped_column(String(64))
    actor_staff: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaseRow(Base):
    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_status_sla_due_at", "status", "sla_due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), index=True)
    category: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="open")
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(String(64))
    assignee: Mapped[str | None] = mapped_column(String(64))
    #: the index of its level in ``[[sla.levels]]`` (0: the first)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    sla_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: how the case came in (hotline, wechat, mailbox, ...)
    channel: Mapped[str] = mapped_column(String(16), default="other", server_default="other")
    #: since when the level's window runs: the case reached its level, changed status,
    #: or (at the top level) its owners were last notified
    level_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)


class CaseHistoryRow(Base):
    """Every status change, transfer and escalation of a case, with who did it."""

    __tablename__ = "case_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    from_value: Mapped[str | None] = mapped_column(String(128))
    to_value: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    actor_staff: Mapped[str | None] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class IncidentRow(Base):
    """One event behind many cases (a leaking building, a delayed handover), with its
    own status and owner."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), index=True)
    #: open or closed
    status: Mapped[str] = mapped_column(String(16), default="open")
    owner: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(64))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(Text)


class RoutingTurnRow(Base):
    """Whose turn it is in a department's round robin: the last staff routed a case."""

    __tablename__ = "routing_turns"

    department: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_staff: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DepartmentRow(Base):
    """A department of the directory (a sales office, a service desk, head office)."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DepartmentProjectRow(Base):
    """A project a department is responsible for: a manager's scope."""

    __tablename__ = "department_projects"

    department: Mapped[str] = mapped_column(
        ForeignKey("departments.code", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, index=True)


class StaffRow(Base):
    """A member of staff: what owners, assignees and actors refer to by ``id``."""

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(ForeignKey("departments.code"), index=True)
    manager: Mapped[str | None] = mapped_column(ForeignKey("staff.id"))
    #: work contacts, for notifications
    email: Mapped[str | None] = mapped_column(String(254))
    mobile: Mapped[str | None] = mapped_column(String(32))
    #: when they left; history keeps them, new assignments are refused
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditRow(Base):
    """The append-only processing record (PIPL Art. 56). Nothing in the API updates or
    deletes a row, but ``audit prune`` of entries past retention (and, with the privacy
    issue, the redaction of an erased person's free text). ``details`` hold no personal
    data in clear: identity values appear only as keyed hashes."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_customer_at", "customer_id", "at"),
        Index("ix_audit_log_actor_at", "actor_staff", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_staff: Mapped[str | None] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), index=True)
    # No foreign key: an entry outlives a merge, and the record of an erasure must
    # survive the erasure.
    customer_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(8))
    #: free text a person gave (a disclosure's reason): redacted when they are erased
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class KeyFingerprintRow(Base):
    """The fingerprint of the key file a database was first used with, so a command
    run with another installation's keys stops (exit 2) instead of writing hashes that
    match nothing. ``db rotate-key`` (the privacy issue) moves it with the new key."""

    __tablename__ = "key_fingerprints"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKeyRow(Base):
    """A key of the HTTP API: whoever presents it acts as ``staff_id`` in ``role``
    (channel ``api``). Only a hash of the secret is stored; ``prefix`` (``rk_`` and
    eight characters, printed by ``apikey list``) finds the row without scanning."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class IdempotencyRow(Base):
    """A POST's ``Idempotency-Key`` and the response it got, replayed to a retry for a
    day. ``status`` is None while the first request runs, so a concurrent retry waits
    for it instead of doing the work twice. The body holds customer data: an erasure
    deletes the rows about the person (``customer_id``) or naming them."""

    __tablename__ = "api_idempotency"

    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WebhookSubscriptionRow(Base):
    """A webhook: where events of the listed types are POSTed (``recrm webhook add``).
    ``secret`` is the signing secret encrypted under the key file's encryption key
    (``v1:<key id>:...``, like ID numbers); it is never listed."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    #: event types, or ``["*"]`` for every type
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEventRow(Base):
    """The outbox: one event, written in the transaction of the change it describes.
    ``body`` is the JSON document POSTed (the same bytes on every retry); it holds
    customer data, so an erasure deletes the events about (``customer_id``) or naming
    the person, and retention deletes it ``webhooks.retention_days`` after delivery."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(Integer, index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WebhookDeliveryRow(Base):
    """One event for one subscription: pending until a 2xx answer (delivered) or the
    last attempt (failed). ``locked_until`` is the lease of the ``webhook deliver``
    process sending it, so two processes never send one delivery at the same time."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_events.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when it was delivered or given up: retention counts from here
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)


class ImportJobRow(Base):
    """An import of an uploaded file by the HTTP API (``POST /v1/imports``): queued,
    running under a lease (``lease_owner`` until ``lease_until``, renewed while it
    runs, so a crashed server's job is taken over and resumed), then done or failed.
    ``upload_file`` and ``errors_file`` are names in the job directory; the upload is
    deleted when the job ends, the errors CSV ``api.job_retention_days`` later.
    ``filename`` and ``error`` may name a person: an erasure redacts them."""

    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_status_lease_until", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), index=True)
    #: the actor the import runs as (channel api)
    staff_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    #: the name the upload gave, shown back; never used as a path
    filename: Mapped[str | None] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(8))
    sheet: Mapped[str | None] = mapped_column(String(255))
    encoding: Mapped[str | None] = mapped_column(String(32))
    upload_file: Mapped[str | None] = mapped_column(String(64))
    upload_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    errors_file: Mapped[str | None] = mapped_column(String(64))
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_committed: Mapped[int] = mapped_column(Integer, default=0)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    merged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    suspected_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: when it ended: the errors CSV's retention counts from here
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)


class TaskRow(Base):
    """A follow-up task (``recrm tasks``): a planned contact with a customer at a
    project, owned by a member of staff, ``open`` until done (by the interaction that
    did it, when known) or cancelled. ``rule_key`` is set on the tasks the follow-up
    rules create, so a sweep run twice creates nothing twice (UNIQUE; NULLs for
    tasks added by hand). ``note`` and ``cancel_reason`` are free text: an erasure
    clears them."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_owner_staff_status_due_at", "owner_staff", "status", "due_at"),
        Index("ix_tasks_customer_project_status", "customer_id", "project_id", "status"),
        Index("ix_tasks_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    owner_staff: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="open")
    #: the rule that created it (``after_visit``, ``prospect_idle``); None: by hand
    rule: Mapped[str | None] = mapped_column(String(32))
    rule_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL"))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PoolEventRow(Base):
    """The public pool's history (公海): a customer's link to a project released to the
    pool (``staff`` the owner it was taken from, ``reason`` why) or claimed from it
    (``staff`` the new owner, ``pooled_at`` when it had entered the pool). No free
    text: reasons are codes, so an erasure keeps these rows for the pool's figures."""

    __tablename__ = "pool_events"
    __table_args__ = (
        Index("ix_pool_events_customer_project_at", "customer_id", "project_id", "at"),
        Index("ix_pool_events_project_at", "project_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    action: Mapped[str] = mapped_column(String(12))
    staff: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    pooled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    actor_staff: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
