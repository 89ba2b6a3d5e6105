"""Privacy requests: what the newsletter tables and files hold about one person, and
its erasure.

List memberships and outbox rows are found by customer id. Erasure deletes the list
memberships and anonymises the outbox rows (the customer link removed; the send, the
state and the dates kept, so a send's figures stay true). Suppressions and bounces
hold only keyed hashes of addresses and are kept on purpose: an erased person must
stay unsubscribed if their address comes back (docs/privacy.md); they name nobody.

The file transport's messages in ``file_directory`` hold the address, the name and
the text: a file is the person's when it was sent to one of their addresses or is
one of their outbox rows' messages (whoever sent it: a survey's invitation too). The
export includes each; the erasure deletes each once its transaction has committed
(not in a dry run, nor when it rolls back), and first scans every other file there:
one that still names the person rolls the erasure back, naming the file, as the
core's scan does for a column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import delete, event, select, update
from sqlalchemy.orm import Session

from recrm_core import Customer, ErasureStep, UnitOfWork
from recrm_core.privacy import ErasureFailed, PersonValues

from .service import address_hash
from .settings import settings
from .tables import ListMemberRow, ListRow, RecipientRow, SendRow, SuppressionRow
from .transports import FILE_SUFFIXES, file_stem, read_file

#: what an erasure's step calls the file transport's directory
FILES = "newsletter_files"


def export_in(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    session = uow.session
    lists = list(session.scalars(
        select(ListRow.name).join(ListMemberRow, ListMemberRow.list_id == ListRow.id)
        .where(ListMemberRow.customer_id == customer.id).order_by(ListRow.name)))
    messages = [
        {"send": name, "channel": r.channel, "state": r.state, "reason": r.reason,
         "message_id": r.message_id, "sent_at": r.sent_at.isoformat() if r.sent_at else None}
        for r, name in session.execute(
            select(RecipientRow, SendRow.name).join(SendRow, SendRow.id == RecipientRow.send_id)
            .where(RecipientRow.customer_id == customer.id).order_by(RecipientRow.id))]
    addresses = [("email", customer.email)] if customer.email else []
    addresses += [("sms", m) for m in customer.mobiles]
    suppressed = []
    for channel, address in addresses:
        row = session.scalar(select(SuppressionRow).where(
            SuppressionRow.channel == channel,
            SuppressionRow.address_hash == address_hash(uow.crm, channel, address)))
        if row is not None:
            suppressed.append({"channel": channel, "address": address, "reason": row.reason,
                               "at": row.at.isoformat()})
    files = [{"file": path.name, **content} for path, content in
             _person_files(uow, customer, [customer.id])[0]]
    if not (lists or messages or suppressed or files):
        return None
    return {"lists": lists, "messages": messages, "suppressions": suppressed, "files": files}


def _person_files(uow: UnitOfWork, customer: Customer, ids: list[int]
                  ) -> tuple[list[tuple[Path, dict[str, str]]], list[tuple[Path, str]]]:
    """The file transport's files that are the person's (with what each says), and the
    others that still name them (with what of theirs each holds)."""
    directory = settings(uow.crm).file_directory
    if not directory.is_dir():
        return [], []
    stems = {file_stem(key) for key in uow.session.scalars(
        select(RecipientRow.message_id).where(RecipientRow.customer_id.in_(ids))) if key}
    needles = PersonValues.of(customer, names=False)
    theirs: list[tuple[Path, dict[str, str]]] = []
    naming: list[tuple[Path, str]] = []
    for path in sorted(directory.iterdir()):
        if path.suffix not in FILE_SUFFIXES or not path.is_file():
            continue
        content = read_file(path)
        if path.stem in stems or needles.named_in(content["to"]):
            theirs.append((path, content))
            continue
        words = f"{content['subject']}\n{content['text']}"
        if needles.named_in(words):  # which of their values, only for a file that names them
            naming.append((path, next(what for what in ("mobile", "ID number", "email")
                                      if needles.named_in(words, only=what))))
    return theirs, naming


def _delete_when_committed(session: Session, paths: list[Path]) -> None:
    """Delete ``paths`` once the erasure's transaction commits; a rollback (a dry run,
    a failed scan) keeps them, as it keeps the rows."""
    undone = False

    def rolled_back(_session: Session) -> None:
        nonlocal undone
        undone = True

    def committed(_session: Session) -> None:
        if not undone:
            for path in paths:
                path.unlink(missing_ok=True)

    event.listen(session, "after_rollback", rolled_back, once=True)
    event.listen(session, "after_commit", committed, once=True)


def erase_in(uow: UnitOfWork, customer: Customer, merged_ids: list[int]) -> list[ErasureStep]:
    ids = [customer.id, *merged_ids]
    session = uow.session
    theirs, naming = _person_files(uow, customer, ids)
    if naming:
        path, what = naming[0]
        raise ErasureFailed(
            f"erasure of customer {customer.id} rolled back: the file transport's "
            f"{path} (sent to someone else) still holds the person's {what}")
    _delete_when_committed(session, [path for path, _ in theirs])
    members = session.execute(delete(ListMemberRow).where(ListMemberRow.customer_id.in_(ids))
                              .execution_options(synchronize_session=False))
    outbox = session.execute(update(RecipientRow).where(RecipientRow.customer_id.in_(ids))
                             .values(customer_id=None)
                             .execution_options(synchronize_session=False))
    steps = []
    if members.rowcount:  # type: ignore[attr-defined]
        steps.append(ErasureStep(table=ListMemberRow.__tablename__,
                                 deleted=members.rowcount))  # type: ignore[attr-defined]
    if outbox.rowcount:  # type: ignore[attr-defined]
        steps.append(ErasureStep(
            table=RecipientRow.__tablename__, anonymised=outbox.rowcount,  # type: ignore[attr-defined]
            basis="a send's figures: the send, state and dates kept without the person"))
    if theirs:
        steps.append(ErasureStep(table=FILES, deleted=len(theirs)))
    return steps


def merged_in(uow: UnitOfWork, survivor_id: int, duplicate_id: int) -> None:
    """The duplicate's list memberships follow the survivor (its outbox rows stay:
    they record what was sent to whom)."""
    session = uow.session
    survivor_lists = select(ListMemberRow.list_id).where(
        ListMemberRow.customer_id == survivor_id).scalar_subquery()
    session.execute(update(ListMemberRow)
                    .where(ListMemberRow.customer_id == duplicate_id,
                           ListMemberRow.list_id.not_in(survivor_lists))
                    .values(customer_id=survivor_id)
                    .execution_options(synchronize_session=False))
    session.execute(delete(ListMemberRow).where(ListMemberRow.customer_id == duplicate_id)
                    .execution_options(synchronize_session=False))
