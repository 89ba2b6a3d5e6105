"""Staff at several desks adding the same new mobile (or WeChat unionid) to different
customers at the same moment: one update takes it, every other is the identity
conflict a later update gets (409 over HTTP), naming the customer that holds it.

Each worker is its own process with its own CRM, released together by a barrier each
round. The database's UNIQUE (kind, value) on identities decides; before
``customers.update`` ran as a retried unit of work the losers on PostgreSQL failed with
the constraint's IntegrityError (an internal error, a 500), having read "nobody holds
it" before the winner committed.
"""

from __future__ import annotations

from recrm_core import CRM, IdentityConflict
from recrm_core.testing import StartLine, run_together

WORKERS = 4
ROUNDS = 4
UNIONID = "oAbCdEfGhIjKlMnOpQrStUvWx_{:02d}"


def _keys(round_: int) -> dict[str, list[str]]:
    """Round ``round_``'s new key: a mobile in even rounds, a unionid in odd ones."""
    if round_ % 2:
        return {"add_wechat_unionids": [UNIONID.format(round_)]}
    return {"add_mobiles": [f"1360000{round_:04d}"]}


def _updater(url: str, customer_id: int, start: StartLine) -> list[str]:
    crm = CRM(database_url=url)
    outcomes: list[str] = []
    try:
        crm.customers.get(customer_id)  # warm up: connections, compiled statements
        for round_ in range(ROUNDS):
            start.wait()
            try:
                crm.customers.update(customer_id, _keys(round_))
                outcomes.append(f"won {round_}")
            except IdentityConflict as exc:
                outcomes.append(f"conflict {round_}: {exc}")
        return outcomes
    finally:
        crm.close()


def test_one_update_takes_a_new_key_the_others_conflict(
        crm: CRM, recrm_database_url: str) -> None:
    ids = [crm.customers.add({"mobile": f"1371234{i:04d}"}).customer.id
           for i in range(WORKERS)]
    results = run_together(_updater, [(recrm_database_url, cid) for cid in ids])
    outcomes = [o for values in results for o in values]
    for round_ in range(ROUNDS):
        won = [o for o in outcomes if o == f"won {round_}"]
        lost = [o for o in outcomes if o.startswith(f"conflict {round_}:")]
        assert (len(won), len(lost)) == (1, WORKERS - 1), outcomes
        [(kind, [value])] = _keys(round_).items()
        holders = [c.id for c in crm.customers.get_many(ids)
                   if value in (c.mobiles if kind == "add_mobiles" else c.wechat_unionids)
                   or f"+86{value}" in c.mobiles]
        assert len(holders) == 1, (round_, holders)
        # each loser's message names the customer that holds the key
        assert all(f"belongs to customer {holders[0]}" in o for o in lost
                   if kind == "add_mobiles"), lost
