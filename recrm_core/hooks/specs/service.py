"""Hook specifications: the timeline, service cases and follow-up tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import hookspec

if TYPE_CHECKING:
    from ...db import UnitOfWork
    from ...models import (
        Case,
        Customer,
        Interaction,
        Task,
        TimelineEntry,
    )


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
