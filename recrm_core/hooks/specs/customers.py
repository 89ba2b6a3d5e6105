"""Hook specifications: customers, their stages and owners, imports, attribution and
segment fields."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import hookspec

if TYPE_CHECKING:
    from ...db import UnitOfWork
    from ...models import (
        Customer,
        CustomerStageChange,
        ImportedCustomer,
        OwnerChange,
        StageChange,
    )
    from ...segments import SegmentField


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
