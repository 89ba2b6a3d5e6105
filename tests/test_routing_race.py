"""Cases opened at once at several desks (separate processes, one database) are routed
in turn: the round robin's row lock hands each case to the next person, so the
department's staff get equal shares and no case is lost or routed twice."""

from __future__ import annotations

from collections import Counter

from recrm_core import CRM
from recrm_core.testing import StartLine, run_together

WORKERS = 4
EACH = 6
ROUTING = [{"category": "repair", "department": "ENG"}]


def _open_worker(url: str, key_file: str, customer: int,
                 start: StartLine) -> list[str | None]:
    crm = CRM(database_url=url, settings={"key_file": key_file, "routing": ROUTING})
    try:
        start.wait()
        return [crm.cases.open({"customer_id": customer, "category": "repair",
                                "subject": "漏水"}).assignee for _ in range(EACH)]
    finally:
        crm.close()


def test_cases_opened_at_once_are_routed_in_turn(crm: CRM, recrm_database_url: str) -> None:
    crm.directory.add_department({"code": "ENG", "name": "工程部"})
    for sid in ("e1", "e2", "e3"):
        crm.directory.add_staff({"id": sid, "name": sid, "role": "service", "department": "ENG"})
    customer = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    results = run_together(_open_worker, [(recrm_database_url, str(crm.key_file), customer)
                                          for _ in range(WORKERS)])
    shares = Counter(a for assignees in results for a in assignees)
    assert shares == {"e1": 8, "e2": 8, "e3": 8}
    # each routing is in its case's history once
    cases = crm.cases.list(customer_id=customer)
    assert len(cases) == WORKERS * EACH
    assert all([h.action for h in crm.cases.get(c.id).history].count("route") == 1
               for c in cases)
