"""The core's events, written to the webhook outbox by the core's own hooks.

A builtin plugin (``recrm_core.plugins.BUILTIN_PLUGINS``): each implementation runs
inside the operation's unit of work, so the event commits or rolls back with the
change. Cheap to import (it is loaded with every CRM); the outbox writer is imported
on the first event.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..hooks import hookimpl

if TYPE_CHECKING:
    from ..db import UnitOfWork
    from ..models import Case, Customer, CustomerStageChange, ImportedCustomer, Interaction

name = "webhooks"


@functools.cache
def _outbox() -> Any:
    """The outbox writer (``.events``), imported on the first event and then kept: an
    import statement in each implementation cost ~0.5 µs a call."""
    from . import events

    return events


def _wanted(uow: UnitOfWork, event_type: str) -> bool:
    """Whether a subscription wants ``event_type`` (read once per unit of work): asked
    first, so an event nobody wants costs no payload builder."""
    return bool(_outbox().subscribers(uow, event_type))


def _customer_event(uow: UnitOfWork, event_type: str, customer: Customer,
                    **extra: Any) -> None:
    if not _wanted(uow, event_type):
        return
    events = _outbox()
    events.write(uow, event_type, [(customer.id, lambda: {
        "customer": events.customer_data(customer), **extra})])


@hookimpl
def recrm_customer_created(uow: UnitOfWork, customer: Customer) -> None:
    _customer_event(uow, "customer.created", customer)


@hookimpl
def recrm_customer_updated(uow: UnitOfWork, customer: Customer, changes: dict[str, Any]) -> None:
    # Field names only: the old values would keep what the change replaced in the
    # outbox and in the receiver; the customer holds the new ones.
    _customer_event(uow, "customer.updated", customer, changed=sorted(changes))


@hookimpl
def recrm_customer_merged(uow: UnitOfWork, survivor: Customer, duplicate_id: int) -> None:
    _customer_event(uow, "customer.merged", survivor, duplicate_id=duplicate_id)


@hookimpl
def recrm_stages_changed(uow: UnitOfWork, changes: Sequence[CustomerStageChange]) -> None:
    if not _wanted(uow, "stage.changed"):
        return
    from .events import customer_data, write

    def data(item: CustomerStageChange) -> Callable[[], dict[str, Any]]:
        return lambda: {"customer": customer_data(item.customer),
                        "change": item.change.model_dump(mode="json")}

    write(uow, "stage.changed", [(item.customer.id, data(item)) for item in changes])


@hookimpl
def recrm_interactions_logged(uow: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    if not _wanted(uow, "interaction.logged"):
        return
    from .events import write

    def data(interaction: Interaction) -> Callable[[], dict[str, Any]]:
        return lambda: {"interaction": interaction.model_dump(mode="json")}

    write(uow, "interaction.logged", [(i.customer_id, data(i)) for i in interactions])


@hookimpl
def recrm_case_opened(uow: UnitOfWork, case: Case) -> None:
    if not _wanted(uow, "case.opened"):
        return
    from .events import write

    write(uow, "case.opened", [(case.customer_id, lambda: {"case": case.model_dump(mode="json")})])


@hookimpl
def recrm_case_status_changed(uow: UnitOfWork, case: Case, old_status: str,
                              new_status: str) -> None:
    from .events import write

    write(uow, "case.status_changed", [(case.customer_id, lambda: {
        "case": case.model_dump(mode="json"), "old_status": old_status,
        "new_status": new_status})])


@hookimpl
def recrm_customers_imported(uow: UnitOfWork, records: Sequence[ImportedCustomer],
                             load: Callable[[Iterable[int]], dict[int, Customer]]) -> None:
    """An import sends what ``customers add`` would: ``customer.created`` for each
    customer a batch created, ``customer.updated`` for each it changed (with the
    names of the fields it set), loaded only when a subscription wants them.

    The subscriptions are asked first: with none wanting these events the records
    are never read, so their lazy sequence is never built."""
    from .events import customer_data, subscribers, write

    want_created = bool(subscribers(uow, "customer.created"))
    want_updated = bool(subscribers(uow, "customer.updated"))
    if not want_created and not want_updated:
        return
    created = [r for r in records if r.created] if want_created else []
    changed = [r for r in records if not r.created and r.changed] if want_updated else []
    if not created and not changed:
        return
    customers = load([r.customer_id for r in (*created, *changed)])

    def data(record: ImportedCustomer) -> Callable[[], dict[str, Any]]:
        extra = {} if record.created else {"changed": sorted(record.changed)}
        return lambda: {"customer": customer_data(customers[record.customer_id]), **extra}

    write(uow, "customer.created", [(r.customer_id, data(r)) for r in created])
    write(uow, "customer.updated", [(r.customer_id, data(r)) for r in changed])
