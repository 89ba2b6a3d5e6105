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
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import hookspec

if TYPE_CHECKING:
    import click
    from pydantic import BaseModel

    from ..api.routes import ApiRoutes
    from ..crm import CRM
    from ..db import UnitOfWork
    from ..demo import DemoSection
    from ..models import (
        Case,
        Customer,
        CustomerStageChange,
        DeliveryResult,
        ErasureStep,
        ImportedCustomer,
        Interaction,
        Message,
        OwnerChange,
        StageChange,
        Task,
        TimelineEntry,
    )
    from ..reports import ReportSpec
    from ..segments import SegmentField

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


# -- configuration and start-up ---------------------------------------------------


@hookspec
def recrm_register_settings(register: Callable[[str, type[BaseModel]], None]) -> None:
    """Declare the pydantic model for the plugin's section of ``recrm.toml``.

    Fires once while a :class:`~recrm_core.CRM` is built, before
    :func:`recrm_startup`; outside any transaction.

    :param register: call ``register(section, Model)``; the core validates the
        ``[section]`` table of the configuration (or ``CRM(settings={section: ...})``)
        against ``Model`` and reports a clear error on bad values. The validated
        instance is then available as ``crm.settings_for(section)``.

    Return value is ignored.
    """


@hookspec
def recrm_startup(crm: CRM) -> None:
    """The CRM is built: plugins are loaded and settings validated.

    Fires once per :class:`~recrm_core.CRM` instance, after settings, outside any
    transaction. Use it to check settings or warm caches. Raising aborts building
    the CRM with a :class:`~recrm_core.errors.PluginError`.

    :param crm: the CRM being built.
    """


@hookspec
def recrm_register_commands(cli: click.Group) -> None:
    """Add sub-commands or sub-groups to the ``recrm`` command line.

    Fires for every enabled plugin when the CLI looks up a command that is not
    the core's (and for ``recrm --help`` when a plugin names no groups in its
    ``recrm.commands`` entry points), before a database is opened; outside any
    transaction. Inside a command, get the CRM with
    :func:`recrm_core.cli.get_crm` (or the ``@pass_crm`` decorator) so the
    ``--db``/``--config`` options apply.

    :param cli: the group collecting the plugins' commands, which ``recrm`` runs as
        its own; call ``cli.add_command(...)`` (the core's groups are not in it).
    """


# -- customers ------------------------------------------------------------------------


@hookspec
def recrm_customer_created(uow: UnitOfWork, customer: Customer) -> None:
    """A customer was created by ``crm.customers.add`` (not by an import; see
    :func:`recrm_customers_imported`).

    Fires inside the transaction, after the customer, its identities and project
    link are written.

    :param uow: the operation's unit of work.
    :param customer: the new customer as the API returns it.
    """


@hookspec
def recrm_customer_updated(uow: UnitOfWork, customer: Customer, changes: dict[str, Any]) -> None:
    """A customer's profile changed (``update``, or ``add`` merging new values).

    Fires inside the transaction, only when something actually changed; a match
    that changes nothing fires nothing.

    :param uow: the operation's unit of work.
    :param customer: the customer after the change.
    :param changes: field name -> ``(old, new)``; added mobiles appear as
        ``"mobiles": (old_list, new_list)``, added WeChat unionids as
        ``"wechat_unionids": (old_list, new_list)``.
    """


@hookspec
def recrm_customer_merged(uow: UnitOfWork, survivor: Customer, duplicate_id: int) -> None:
    """Two customers were merged: ``duplicate_id`` now resolves to ``survivor``.

    Fires inside the transaction after the core moved identities, project links,
    interactions, cases and consents. Every plugin that keeps rows per customer
    must move (or combine) its own rows from ``duplicate_id`` to ``survivor.id``
    here.

    :param uow: the operation's unit of work.
    :param survivor: the surviving customer after the merge.
    :param duplicate_id: the id of the merged-away customer (kept, with
        ``merged_into`` set).
    """


@hookspec
def recrm_project_renamed(uow: UnitOfWork, old_code: str, new_code: str) -> None:
    """A project's code changed from ``old_code`` to ``new_code`` (``recrm projects
    rename``).

    Fires inside the transaction, after the core changed the code. The core's own
    rows hold the project's id and need nothing; a plugin that keeps project codes
    in its tables must change ``old_code`` to ``new_code`` in them here, or those
    rows lose their project.

    :param uow: the operation's unit of work.
    :param old_code: the code the project had.
    :param new_code: the code it has now (no other project had it).
    """


@hookspec
def recrm_stage_changed(uow: UnitOfWork, customer: Customer, change: StageChange) -> None:
    """A customer's stage at one project changed (forward, or backward when forced),
    or a step was recorded for another unit.

    Fires inside the transaction. A change to ``subscriber``, ``buyer`` or ``owner``
    is also recorded as an interaction (``subscription``, ``contract``,
    ``handover``) whose id is ``change.interaction_id``; that interaction fires
    :func:`recrm_interaction_logged` as well.

    More than one unit at a project: a step for a unit at a stage at or behind the
    customer's current stage there (an investor who is ``buyer`` for 3-1201 signs
    for 3-1202) records that step's interaction for that unit and fires this hook
    with ``old_stage == new_stage`` (the stage never moves backwards), ``step`` the
    step taken (``buyer``) and ``unit`` the unit. The same step for the same unit
    again fires nothing. Count contracts by ``(project, unit)``, not by project.

    :param uow: the operation's unit of work.
    :param customer: the customer after the change (``customer.stage`` is the
        furthest stage over all projects).
    :param change: project code, old and new stage, the step recorded (``step``),
        unit, amount (CNY), whether the change was forced, and when it happened
        (``occurred_at``).
    """


@hookspec
def recrm_stages_changed(uow: UnitOfWork, changes: Sequence[CustomerStageChange]) -> None:
    """The batch form of :func:`recrm_stage_changed`: every stage change of one
    operation at once, so a plugin can answer them with one set-based statement
    (one query for the customers a rule concerns) instead of one per change.

    Fires inside the transaction, once per operation that changed stages, after all
    of its changes (and after each change's :func:`recrm_stage_changed`): once for a
    ``set_stage`` (a batch of one), once for ``crm.customers.set_stages`` with all of
    its moves, once for everything done inside ``crm.hooks.batched(uow)``. Never
    with an empty batch. The same changes, in the same order, as
    :func:`recrm_stage_changed` receives one by one; implement one of the two, not
    both (a plugin implementing both is refused when it is registered).

    A stage change that a batch implementation makes itself (through
    ``set_stage_in``) is not added to the batch being delivered: it fires this hook
    again as a batch of its own.

    When one operation both logs interactions and changes stages, the whole
    :func:`recrm_interactions_logged` batch is delivered before this one. A plugin
    that needs the two in the order they happened orders them by interaction id: a
    step's own interaction is ``change.interaction_id``, and ids grow in the order
    interactions are appended.

    :param uow: the operation's unit of work.
    :param changes: a read-only sequence, in the order the changes were made, of
        ``customer`` (the customer right after that change; a customer changed
        twice appears twice) and ``change`` (as :func:`recrm_stage_changed`'s).
    """


@hookspec
def recrm_owners_changed(uow: UnitOfWork, changes: Sequence[OwnerChange]) -> None:
    """Customers' owning consultants changed at some projects.

    Fires inside the transaction of the operation that changed them, once per
    operation with all of its changes, never once per row: ``customers.add`` (a new
    link with an owner, or an empty owner filled), ``set_stage`` (a first link owned
    by the acting staff), ``reassign`` (every link it moved), ``merge`` (links moved
    to the survivor or an owner filled from the duplicate) and each import batch.
    Only real changes are listed (``old_owner != new_owner``). Use it to keep what
    depends on ownership in step, e.g. an agency's protection or a follow-up task's
    owner.

    :param uow: the operation's unit of work.
    :param changes: a read-only sequence (``len``, indexing, iteration; equal to a
        list of the same changes) of the changes, each with customer id, project code,
        old and new owner and the reason (``first_link``, ``filled``, ``reassign``,
        ``merge``, ``released``, ``claimed``). An import batch's is built on first
        access, so that implementations that do not read it cost nothing.

    .. versionchanged:: 0.2
       ``changes`` is a read-only sequence, not necessarily a ``list``.
    """


@hookspec
def recrm_customers_imported(
    uow: UnitOfWork,
    records: Sequence[ImportedCustomer],
    load: Callable[[Iterable[int]], dict[int, Customer]],
) -> None:
    """One batch of an import was applied.

    Fires once per batch (never per row, to keep imports fast), inside the batch's
    transaction, before it commits. Raising rolls the batch back and stops the
    import; a re-run is idempotent and continues.

    The records are light on purpose: building a full model for every matched
    customer of every batch would cost every import a quarter of its speed for
    plugins that only need ids. Ask ``load`` for the models you need.

    :param uow: the batch's unit of work.
    :param records: a read-only sequence (``len``, indexing, iteration; equal to a
        list of the same records; ``list(records)`` for a list of your own), built on
        first access so that implementations that do not read it cost nothing, of
        each customer the batch created or matched, once, in file order
        (created ones first): ``customer_id``, ``created``, ``changed`` (the fields
        the batch set or filled — profile fields, ``"mobiles"``, ``"id_card"``,
        ``"wechat_unionids"``, ``"projects"``; empty for a matched customer left as
        it was) and ``rows``
        (the file rows behind it). A customer created by the batch is reported as
        created only, even when later rows of the batch matched it.
    :param load: ``load(ids)`` returns ``{id: Customer}`` read inside the batch's
        transaction (so it includes what the batch wrote), in three queries per 500
        ids; only while the hook runs (afterwards it raises ``RuntimeError``).

    .. versionchanged:: 0.2
       Replaces the ``created``/``merged`` lists of full models with ``records``, a
       lazy read-only sequence of light records (not a ``list``).
    """


# -- attribution ----------------------------------------------------------------------


@hookspec
def recrm_withhold_referral_reward(
    uow: UnitOfWork,
    customer: Customer,
    project: str,
    referrer_id: int,
    referred_at: dt.datetime,
    occurred_at: dt.datetime,
) -> str | None:
    """Asked before an owner's referral (老带新) is rewarded: should it be withheld?

    Fires when a referred customer first signs at the project they were referred
    for and the referral would earn its referrer a reward (the membership plugin
    asks; not when no reward is at stake: a referrer who left the club, a
    ``referral_reward`` of 0). Called inside the transaction of the stage change
    that signs, before the reward is written.

    Every implementation is asked, each on its own (no ``firstresult``): if any
    returns a reason, the reward is withheld and the asking plugin records each
    reason, with the name of the plugin that gave it, on its side (membership: in
    the referral's note, shown by ``recrm member show`` / ``referrals`` and in the
    customer's data export); the referral still counts as converted. ``None`` from
    everyone (or no implementation at all) lets the reward through, as before.

    Meant for a channels plugin whose agencies also register customers: when the
    customer is at the same time an agency's confirmed registration at
    ``project``, its ``referral_vs_agency`` setting (``agency``, ``referral``,
    ``both``) decides who is rewarded. With ``agency`` it returns the reason
    (``"registered by agency 链家 on 2024-03-01 (referral_vs_agency = agency)"``);
    with ``referral`` or ``both`` it returns ``None``, and with ``referral`` it
    records on its own side, through ``uow.session``, why the agency is not paid.
    Write only your own rows here: another plugin may still withhold the reward,
    and everything rolls back together if the stage change fails. Raising (or
    returning anything but text or ``None``) rolls the stage change back with a
    :class:`~recrm_core.errors.PluginError` naming the plugin.

    :param uow: the unit of work of the stage change.
    :param customer: the referred customer after the change.
    :param project: the project code the customer signed at and was referred for.
    :param referrer_id: the customer id of the member who referred them.
    :param referred_at: when the referral was recorded.
    :param occurred_at: when the customer signed (a back-dated contract's date).
    :return: a short reason (one line, at most 200 characters) to withhold the
        reward, or ``None`` to allow it.
    """


# -- timeline and cases ---------------------------------------------------------------


@hookspec
def recrm_interaction_logged(uow: UnitOfWork, interaction: Interaction) -> None:
    """An interaction was appended to a customer's timeline.

    Fires inside the transaction, for interactions logged through
    ``crm.interactions.log`` and for those the core records itself (stage changes).

    :param uow: the operation's unit of work.
    :param interaction: the new interaction.
    """


@hookspec
def recrm_interactions_logged(uow: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    """The batch form of :func:`recrm_interaction_logged`: every interaction one
    operation appended, at once (a batch of visits answered with one query instead
    of one per visit).

    Fires inside the transaction, once per operation that appended interactions,
    after all of them (and after each one's :func:`recrm_interaction_logged`): once
    for ``crm.interactions.log`` (a batch of one), once for
    ``crm.interactions.log_many``, once for everything done inside
    ``crm.hooks.batched(uow)`` (stage changes' own interactions included). Never
    with an empty batch. Implement this or :func:`recrm_interaction_logged`, not
    both (a plugin implementing both is refused when it is registered). An
    interaction a batch implementation appends itself fires this hook again as a
    batch of its own.

    :param uow: the operation's unit of work.
    :param interactions: a read-only sequence of the new interactions, in the order
        they were appended.
    """


@hookspec
def recrm_case_opened(uow: UnitOfWork, case: Case) -> None:
    """A service case was opened (its SLA due time already set).

    Fires inside the transaction.

    :param uow: the operation's unit of work.
    :param case: the new case.
    """


@hookspec
def recrm_case_status_changed(
    uow: UnitOfWork, case: Case, old_status: str, new_status: str
) -> None:
    """A service case moved from ``old_status`` to ``new_status``.

    Fires inside the transaction, after the history row is written; raising
    refuses the transition (it rolls back). Use it, for instance, to send a
    satisfaction survey when a case is closed.

    :param uow: the operation's unit of work.
    :param case: the case after the change.
    :param old_status: the previous status.
    :param new_status: the new status.
    """


@hookspec
def recrm_timeline(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry] | None:
    """Contribute entries to a customer's 360 view.

    Fires when the 360 view is built (``crm.customers.view`` / ``recrm customers
    show``), inside the view's unit of work, which is rolled back afterwards: read
    through ``uow.session``, never write.

    :param uow: the unit of work of the read.
    :param customer: the customer shown.
    :return: a list of :class:`~recrm_core.models.TimelineEntry` (set ``source``
        to the plugin's name), or ``None``. The core merges every list with its own
        interactions, newest first.
    """


# -- follow-up tasks -------------------------------------------------------------------


@hookspec
def recrm_task_created(uow: UnitOfWork, task: Task) -> None:
    """A follow-up task was created: added by hand (``crm.tasks.add``, ``recrm tasks
    add``, ``POST /v1/tasks``) or by a follow-up rule (the visit rule when a first visit
    is logged, ``recrm tasks sweep``).

    Fires inside the transaction that creates it; raising rolls the operation back (for
    the visit rule: the visit's logging). Use it to notify the owner (a WeChat Work
    message, an SMS through ``crm.send_message``) or to add your own reminder.

    :param uow: the operation's unit of work.
    :param task: the new task (``rule`` says which rule made it; ``None``: by hand).
    """


@hookspec
def recrm_task_done(uow: UnitOfWork, task: Task) -> None:
    """A follow-up task was done: its owner logged an interaction of its kind for its
    customer and project (the oldest open task it fulfils is closed), or it was marked
    done (``crm.tasks.done``, ``recrm tasks done``, ``POST /v1/tasks/{id}/done``).

    Fires inside the transaction that closes it (for an interaction: the
    interaction's), so raising rolls that back. Not fired for a cancelled task. Use it
    to award a consultant's activity points or to schedule the next step.

    :param uow: the operation's unit of work.
    :param task: the task after the change (``interaction_id`` the interaction that did
        it, when known; ``closed_at`` when).
    """


# -- segments -------------------------------------------------------------------------


@hookspec
def recrm_segment_fields(register: Callable[[SegmentField], None]) -> None:
    """Register fields that segment definitions may filter on.

    Fires once per CRM, the first time a segment is compiled; outside any
    transaction.

    :param register: call ``register(SegmentField(name="plugin.field", ...))``;
        the name must be ``<plugin>.<field>``; ``expression`` receives the
        customers' id column and returns a SQLAlchemy expression (usually a
        correlated scalar subquery) the operators apply to.
    """


# -- privacy requests (PIPL Art. 45, 47) ---------------------------------------------------


@hookspec
def recrm_customer_export(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    """Contribute everything the plugin holds about one person to their data export.

    Fires from ``crm.privacy.export`` / ``recrm customers export ID``, inside the
    export's unit of work, which is read-only and rolled back: read through
    ``uow.session``, never write. Every plugin that keeps rows about customers must
    implement it (and :func:`recrm_customer_erase`).

    :param uow: the unit of work of the export.
    :param customer: the person (the survivor of any merge; ``customer.id`` is theirs).
    :return: a JSON-serialisable dict (lists of your rows as dicts, dates as ISO text),
        which the export puts under ``plugins.<your plugin's name>``; or ``None`` when
        you hold nothing about them.
    """


@hookspec
def recrm_customer_erase(uow: UnitOfWork, customer: Customer,
                         merged_ids: list[int]) -> list[ErasureStep] | None:
    """Erase the person's data from the plugin's tables.

    Fires from ``crm.privacy.erase`` / ``recrm customers erase ID``, inside the
    erasure's unit of work, after the core erased its own rows and before the
    verification scans every text column of every table for the person's mobiles,
    ID number, email and (in rows about them) name. Delete or anonymise every row
    about them; keep what a law requires (say so in the step's ``basis``) without
    their identifiers; keep aggregates anonymous (point totals, scores). A dry run
    (``--dry-run``) runs exactly this and rolls back, so do the work: never branch on
    it. Raising rolls the erasure back.

    :param uow: the unit of work of the erasure.
    :param customer: the person as they were before the erasure.
    :param merged_ids: ids of the customers merged into this one, erased with it
        (your rows follow merges, so they should hold none of these).
    :return: one :class:`~recrm_core.models.ErasureStep` per table you touched
        (rows deleted, anonymised, retained with their legal basis), or ``None``.
    """


# -- consent ------------------------------------------------------------------------------


@hookspec
def recrm_consent_purposes(register: Callable[[str, str], None]) -> None:
    """Register the consent purposes the plugin asks customers to agree to.

    Fires once per CRM, the first time a consent record is written or checked, an
    unsubscribe link is made or read, or ``crm.consent.purposes()`` is called (and
    again when the set of plugins changes); outside any transaction. The core's
    purposes are ``marketing`` and ``surveys``; a registered purpose is accepted by
    ``crm.consent``, ``recrm consent grant|withdraw --purpose``, the API and the
    unsubscribe links and page exactly like those::

        @hookimpl
        def recrm_consent_purposes(register):
            register("newsletter", "业主刊物")

    :param register: call ``register(name, label)``; ``name`` is lower-case letters,
        digits and ``_`` (at most 32), best the plugin's own name or prefixed with it;
        ``label`` is what the unsubscribe page calls it (the customer reads it). A
        malformed name, or one already registered (by the core or another plugin), is a
        :class:`~recrm_core.errors.ConfigError` naming the plugin.
    """


# -- messages' merge fields ------------------------------------------------------------------


@hookspec
def recrm_message_fields(uow: UnitOfWork,
                         customers: list[Customer]) -> dict[int, dict[str, Any]] | None:
    """Add merge fields to the messages built for these customers (newsletters and
    campaigns, and any plugin building messages from templates).

    Fires when a sender builds a batch of messages (and for a preview or a test
    message), inside a read-only unit of work: read through ``uow.session``, never
    write. Templates reach a plugin's fields under its name, so two plugins never
    clash: the membership plugin's ``{"tier": "金卡"}`` is ``{{ membership.tier }}``.
    A customer you return nothing for gets empty fields (render ``{{
    membership.tier or "业主" }}`` for a fallback)::

        @hookimpl
        def recrm_message_fields(uow, customers):
            rows = uow.session.execute(select(Member.customer_id, Member.tier).where(
                Member.customer_id.in_([c.id for c in customers])))
            return {cid: {"tier": tier} for cid, tier in rows}

    :param uow: a read-only unit of work.
    :param customers: the customers (up to a sender's batch) messages are built for.
    :return: ``{customer id: {field: value}}`` for the customers you have fields
        for (values as templates show them: text or numbers), or ``None``.
    """


# -- the audit log ----------------------------------------------------------------------


@hookspec
def recrm_register_audit_actions(register: Callable[[str, str], None]) -> None:
    """Register the actions the plugin records in the audit log.

    Fires once per CRM, the first time the audit log is written or its actions are
    listed; outside any transaction. The core's actions (``disclose``, ``export``,
    ``erase``, ``merge``, ``reassign``, ``pool``, ``consent``, ``import``,
    ``bulk_send``, ``prune``, ``apikey``, ``webhook``) need no registration;
    ``crm.audit.record(uow, name, ...)`` refuses a name nobody registered, so a typo
    cannot slip into a record kept for years.

    :param register: call ``register(name, description)``; ``name`` is lower-case
        letters, digits, ``_`` and ``.``, best prefixed with the plugin's name
        (``membership.redeem``); registering a name twice (or a core one) is an error.
    """


# -- webhooks ---------------------------------------------------------------------------


@hookspec
def recrm_webhook_events(register: Callable[[str, str], None]) -> None:
    """Declare the webhook event types the plugin sends (docs/api.md#webhooks).

    Fires once per CRM, the first time event types are listed, a subscription is
    added or an event is emitted; outside any transaction. Subscribers name these
    types in ``recrm webhook add --events``; the plugin then writes each event inside
    the unit of work of the change it describes, so it is sent only if the change
    commits::

        @hookimpl
        def recrm_webhook_events(register):
            register("sales.contract_signed", "a deal's contract was signed")

        # in the service, inside the operation's unit of work
        uow.crm.webhooks.emit(uow, "sales.contract_signed",
                              {"deal_id": deal.id, "unit": deal.unit},
                              customer_id=deal.customer_id)

    ``emit`` writes nothing (and returns ``None``) when no subscription wants the
    type. Pass the ``customer_id`` the event is about: an erasure deletes that
    person's events, and the export lists them.

    :param register: call ``register(name, description)``; ``name`` is
        ``<plugin>.<event>`` (the plugin's own name, a dot, lower-case letters, digits
        and ``_``), ``description`` says when it is sent (``recrm webhook events``
        lists it). A name without the plugin's prefix, or registered twice, is a
        :class:`~recrm_core.errors.PluginError` naming the plugin.
    """


# -- reports ----------------------------------------------------------------------------


@hookspec
def recrm_reports(register: Callable[[ReportSpec], None]) -> None:
    """Register the plugin's management reports (``recrm report list``).

    Fires once per CRM, the first time reports are listed or one is run (and again
    when the set of plugins changes); outside any transaction. Each registered report
    runs from ``recrm report NAME``, ``crm.reports.run(NAME, request)``,
    ``GET /v1/reports/NAME`` and the dashboard (``recrm report dashboard``), with
    every output (table, ``--json``, ``--csv``, ``--xlsx``, ``--svg``, ``--png``)
    made from the :class:`~recrm_core.reports.Report` it returns::

        from recrm_core.reports import Chart, Column, Report, ReportSpec, Series

        def _points(crm, request):
            rows = ...  # aggregates computed in SQL, honouring request.project,
                        # request.start/end (inclusive days) and request.by
            return Report(name="membership.points", title="Points by month",
                          columns=[Column(key="period", title="Period"),
                                   Column(key="earned", title="Earned", kind="int")],
                          rows=rows,
                          chart=Chart(kind="line", x="period",
                                      series=(Series(column="earned"),)))

        @hookimpl
        def recrm_reports(register):
            register(ReportSpec(name="membership.points", title="Points",
                                description="points earned and spent per period",
                                run=_points))

    :param register: call ``register(spec)`` with a
        :class:`~recrm_core.reports.ReportSpec`; its ``name`` is ``<plugin>.<name>``
        (the plugin's own name first). A name without the prefix, or one registered
        twice, is a :class:`~recrm_core.errors.ConfigError` naming the plugin. The
        ``run`` function receives the CRM and a
        :class:`~recrm_core.reports.ReportRequest` and must respect
        ``request.actor`` (a partner sees only what it may) and keep personal data
        out of aggregates.
    """


# -- the HTTP API -----------------------------------------------------------------------


@hookspec
def recrm_api_routes(crm: CRM, routes: ApiRoutes) -> None:
    """Add routes to the HTTP API (``recrm serve``, ``recrm_core.api.create_app``).

    Fires once per app, when ``create_app`` builds it, for each plugin on its own;
    outside any transaction. Add FastAPI routes to two routers. Keep them in a
    module of their own that the hook imports when it fires, so a CLI command
    never pays for importing FastAPI::

        # recrm_myplugin/hooks.py
        @hookimpl
        def recrm_api_routes(crm, routes):
            from .api import add_routes

            add_routes(crm, routes)

        # recrm_myplugin/api.py
        from recrm_core.api import CurrentActor

        def add_routes(crm, routes):
            @routes.api.get("/balance/{customer_id}", response_model=Balance)
            def balance(customer_id: int, actor: CurrentActor) -> Balance:
                return my_service(crm).balance(customer_id, actor=actor)

    ``routes.api`` is served under ``/v1/<plugin>/`` with the plugin's OpenAPI tag
    and needs an API key; declare ``actor: CurrentActor`` and pass it to the
    services, so masking and the audit apply as in the CLI. ``routes.public`` is
    served at the paths it declares and needs no key: pages and provider callbacks,
    at a short prefix the plugin owns (``/s/{token}``); it may not use ``/v1``,
    ``/docs``, ``/openapi.json`` or ``/healthz``. Raise the SDK's exceptions
    (``NotFound`` → 404, ``Forbidden`` → 403, ``Refused`` → 409, ``InvalidInput`` →
    422); responses are problem documents. Operation ids are
    ``<plugin>_<function name>``, stable as long as the function keeps its name.
    FastAPI reads the route functions' annotations: in a module with ``from
    __future__ import annotations`` the names they use (``CurrentActor``, your
    models) must be the module's globals, not local imports.
    Two plugins (or a plugin and the core) declaring one method and path stop the
    app from being built with an error naming both.

    :param crm: the CRM the app serves.
    :param routes: this plugin's :class:`recrm_core.api.ApiRoutes` (``api``,
        ``public``).
    """


# -- demo -----------------------------------------------------------------------------


@hookspec
def recrm_demo(crm: CRM, rng: random.Random, customer_ids: list[int]) -> DemoSection | None:
    """Seed the plugin's demo data and describe it in the demo summary.

    Fires from ``recrm demo`` after the core seeded projects, customers, visits,
    contracts, handovers and cases; outside a transaction (use the CRM's services,
    each of which is its own operation). Use only ``rng`` for randomness so the
    demo is deterministic for a seed.

    :param crm: the demo CRM.
    :param rng: a seeded random generator.
    :param customer_ids: ids of the customers the core created.
    :return: a :class:`~recrm_core.demo.DemoSection` (title and rows) for the
        summary, or ``None``.
    """


# -- messages -------------------------------------------------------------------------


@hookspec(firstresult=True)
def recrm_deliver_message(crm: CRM, message: Message) -> DeliveryResult | None:
    """Deliver one message (email, SMS, ...) through a transport.

    Fires from ``crm.send_message(message)``, once per message.

    ``firstresult``: the first implementation that returns a
    :class:`~recrm_core.models.DeliveryResult` wins; return ``None`` for channels
    you do not handle. The core's console transport runs last and prints the
    message, so something always answers. Called outside any transaction: whatever
    sends in bulk records the message in its outbox first, so a crash never sends
    twice.

    :param crm: the CRM sending.
    :param message: channel, recipient, subject and body.
    """
