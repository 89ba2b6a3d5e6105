"""Found by probing the pages with several clients at once: one unsubscribe link
POSTed four times at one moment (a double tap; a mail client's RFC 8058 one-click
beside the person's own click) recorded four withdrawals, and four audit entries,
where a link used again records nothing more. The look and the withdrawal are now one
transaction holding the customer's row: one record, however many at once."""

from __future__ import annotations

from sqlalchemy import func, select

from recrm_core import CRM
from recrm_core.tables import ConsentRow
from recrm_core.testing import StartLine, run_together
from recrm_core.unsubscribe import read_unsubscribe_token, unsubscribe, unsubscribe_url


def _clicker(url: str, key_file: str, token: str, start: StartLine) -> tuple[str, bool]:
    with CRM(database_url=url, settings={"key_file": key_file}) as crm:
        link = read_unsubscribe_token(crm, token)
        start.wait()
        state, record = unsubscribe(crm, link)
    return state, record is not None


def test_a_link_used_at_once_withdraws_once(crm: CRM, recrm_database_url: str) -> None:
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    crm.consent.grant(cid, "sms")
    token = unsubscribe_url(crm, cid, "sms").rsplit("/", 1)[1]
    results = run_together(_clicker, [(recrm_database_url, str(crm.key_file), token)]
                           * 4)
    assert sorted(results) == [("subscribed", True)] + [("unsubscribed", False)] * 3
    with crm.unit_of_work() as uow:
        withdrawals = uow.session.scalar(select(func.count()).select_from(ConsentRow).where(
            ConsentRow.customer_id == cid, ConsentRow.granted.is_(False)))
    assert withdrawals == 1
    assert not crm.consent.allowed(cid, "sms")
    entries = [e for e in crm.audit.entries() if e.action == "consent" and e.customer_id == cid]
    assert len(entries) == 2  # the grant and one withdrawal
