"""Hook specifications: privacy requests (export, erasure) and consent purposes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import hookspec

if TYPE_CHECKING:
    from ...db import UnitOfWork
    from ...models import (
        Customer,
        ErasureStep,
    )


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
