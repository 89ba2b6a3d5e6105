"""``recrm customers merge`` with an id merged away before: the SDK merges the customer
the id resolves to (concurrent overlapping merges rely on it), and the message names
the customers actually merged, never the stale id as if it had been merged."""

from __future__ import annotations

from recrm_core import CRM
from recrm_core.testing import RecrmCliRunner


def test_the_message_names_the_customers_actually_merged(
        crm: CRM, cli_runner: RecrmCliRunner) -> None:
    a, b, c, d = (crm.customers.add({"mobile": f"1391234000{i}"}).customer.id
                  for i in range(4))
    first = cli_runner.invoke("customers", "merge", str(a), str(b))
    assert first.exit_code == 0, first.stderr
    assert first.stderr.strip() == f"merged {b} into {a}"
    stale_loser = cli_runner.invoke("customers", "merge", str(c), str(b))
    assert stale_loser.exit_code == 0, stale_loser.stderr
    assert stale_loser.stderr.strip() == (
        f"merged {a} (customer {b} had been merged into it) into {c}")
    stale_survivor = cli_runner.invoke("customers", "merge", str(a), str(d))
    assert stale_survivor.exit_code == 0, stale_survivor.stderr
    assert stale_survivor.stderr.strip() == (
        f"merged {d} into {c} (customer {a} had been merged into it)")
    assert crm.customers.get(b).id == crm.customers.get(d).id == c
    again = cli_runner.invoke("customers", "merge", str(c), str(b))
    assert again.exit_code == 1 and "already merged into" in again.stderr
