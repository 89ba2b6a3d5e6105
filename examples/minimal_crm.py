"""A minimal integration: a CRM assembled in code, with chosen plugins and settings.

Run it (after ``pip install -e . -e examples/hotlead``)::

    python examples/minimal_crm.py --db sqlite:///minimal.db

It builds a CRM with two plugins — the tutorial plugin ``recrm_hotlead`` passed as
an object (no ``recrm.toml`` needed) and ``NextStep``, a plugin defined right here —
adds a project and customers (the second record of 王伟 merges into the first),
logs visits and a subscription, and prints the 360 view and the hot leads.
"""

from __future__ import annotations

import argparse
from typing import Any

import recrm_hotlead

from recrm_core import CRM, Customer, CustomerView, TimelineEntry, UnitOfWork, hookimpl, utcnow

NEXT_STEPS = {
    "prospect": "invite to the sales office",
    "visitor": "offer a show-flat viewing",
    "subscriber": "prepare the contract (签约)",
    "buyer": "schedule the handover (交房)",
    "owner": "invite to the owners' club",
}


class NextStep:
    """Suggests the consultant's next step in the 360 view, from the customer's stage."""

    name = "nextstep"

    @hookimpl
    def recrm_timeline(self, uow: UnitOfWork, customer: Customer) -> list[TimelineEntry]:
        return [
            TimelineEntry(
                at=utcnow(), kind="next_step", title=NEXT_STEPS[customer.stage], source=self.name
            )
        ]


def build_crm(database_url: str) -> CRM:
    return CRM(
        database_url=database_url,
        plugins=[recrm_hotlead, NextStep()],
        # Core settings and each plugin's section, as recrm.toml would hold them.
        settings={"timezone": "Asia/Shanghai", "hotlead": {"threshold": 2}},
        create_schema=True,
    )


def print_view(crm: CRM, view: CustomerView) -> None:
    c = view.customer
    zone = crm.config.zone
    print(f"customer {c.id}: {c.name} {', '.join(c.mobiles)} email={c.email} stage={c.stage}")
    for link in c.projects:
        print(f"  project {link.project} ({link.project_name}): {link.stage}, "
              f"consultant {link.owner_staff}, source {link.source}")
    print("  timeline:")
    for entry in view.timeline:
        when = entry.at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        print(f"    {when}  [{entry.source}] {entry.kind}: {entry.title}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", default="sqlite:///minimal-crm.db", help="database URL")
    args = parser.parse_args(argv)

    with build_crm(args.db) as crm:
        crm.projects.ensure("XL2", "星珑二期")
        lead: dict[str, Any] = {
            "name": "王伟", "mobile": "138 1234 5678", "project": "XL2",
            "source": "抖音广告", "owner_staff": "zhang", "persona": "刚需", "budget": "200万",
        }
        wang = crm.customers.add(lead).customer
        # The same person, typed by another hand at the sales office: it merges.
        again = crm.customers.add({"mobile": "+86 138-1234-5678", "email": "WangWei@Example.com"})
        print(f"second record of 王伟: {'merged' if not again.created else 'created'}")
        li = crm.customers.add({"name": "李娜", "mobile": "13912345678", "project": "XL2"}).customer

        for _ in range(2):
            crm.interactions.log(wang.id, {"kind": "visit", "project": "XL2", "staff": "zhang"})
        crm.customers.set_stage(wang.id, "visitor", "XL2")
        crm.customers.set_stage(wang.id, "subscriber", "XL2", unit="3-1201", amount=50_000)
        crm.interactions.log(li.id, {"kind": "call", "project": "XL2", "summary": "asked prices"})

        print(f"customers: {crm.customers.count()}")
        print_view(crm, crm.customers.view(wang.id))
        for hot in recrm_hotlead.hot_leads(crm):
            print(f"hot lead: {hot.name} ({hot.visits} visits at {hot.project})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
