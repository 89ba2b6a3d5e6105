"""Several ``webhook deliver`` processes at once, against one real local receiver
counting requests: every event reaches each subscription exactly once (the leases
in the database decide who sends which delivery)."""

from __future__ import annotations

import json
from collections import Counter

from webhook_receiver import receiver

from recrm_core import CRM
from recrm_core.testing import StartLine, run_together

WORKERS = 4
EVENTS = 40


def _deliver_worker(url: str, key_file: str, start: StartLine) -> tuple[int, int]:
    crm = CRM(database_url=url, settings={"key_file": key_file})
    try:
        start.wait()
        run = crm.webhooks.deliver()
        return run.attempted, run.delivered
    finally:
        crm.close()


def test_concurrent_senders_deliver_each_event_once_per_subscription(
        crm: CRM, recrm_database_url: str) -> None:
    with receiver(delay=0.02) as erp, receiver(delay=0.02) as bi:
        crm.webhooks.add(erp.url, "customer.created")
        crm.webhooks.add(bi.url, "*")
        for i in range(EVENTS):
            crm.customers.add({"mobile": f"1380000{i:04d}"})
        results = run_together(_deliver_worker,
                               [(recrm_database_url, str(crm.key_file))] * WORKERS)
        assert sum(attempted for attempted, _ in results) == 2 * EVENTS
        assert sum(delivered for _, delivered in results) == 2 * EVENTS
        for rx in (erp, bi):
            ids = Counter(json.loads(r.body)["id"] for r in rx.requests)
            assert len(ids) == EVENTS and set(ids.values()) == {1}, ids.most_common(3)
    assert {d.status for d in crm.webhooks.deliveries(limit=1000)} == {"delivered"}
    # more than one process took part (a real race, not one process doing it all)
    assert sum(1 for attempted, _ in results if attempted) >= 2, results
