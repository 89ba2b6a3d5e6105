"""The sales part of ``recrm demo``.

Both projects get a sales-control table (销控表): XL2 (on sale) two buildings, the
top floor of one withheld; YH1 (handed over) one building. Through the plugin's
public services: tickets (认筹) are issued at XL2 and the first ones called on opening
day; holders subscribe with their tickets, some with a spouse as co-buyer; some sign;
other units are held (one hold lapsed); one deal is cancelled (退房), one changes
unit (换房); YH1's deals are signed and handed over. Signed deals get payment
schedules (each deposit was received at subscription). The section ends with the
sales-control table: units by state per building. Randomness comes only from ``rng``.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from recrm_core import CRM, DemoSection, NotFound, Refused, utcnow

from .report import report
from .service import Sales
from .settings import NAME

#: (project, name, buildings, floors, rooms per floor, price per ㎡, withheld floors)
PROJECTS: tuple[tuple[str, str, tuple[str, ...], int, int, int, int], ...] = (
    ("XL2", "星珑湾二期", ("13", "15"), 12, 4, 32000, 1),
    ("YH1", "御湖一期", ("2",), 8, 4, 26000, 0),
)
LAYOUTS = (("3室2厅2卫", "98.50", "南"), ("4室2厅2卫", "128.00", "南北"),
           ("2室2厅1卫", "86.00", "东"), ("3室2厅1卫", "95.00", "西"))


def _inventory(sales: Sales) -> None:
    for project, _, buildings, floors, rooms, per_m2, withheld in PROJECTS:
        rows: list[dict[str, Any]] = []
        for building in buildings:
            for floor in range(2, floors + 2):
                for r in range(1, rooms + 1):
                    layout, area, facing = LAYOUTS[r - 1]
                    premium = Decimal(per_m2 + 150 * floor)
                    rows.append({
                        "project": project, "building": building, "entrance": str(1 + r // 3),
                        "floor": str(floor), "room": f"{floor}{r:02d}", "gross_area": area,
                        "net_area": str((Decimal(area) * Decimal("0.8")).quantize(
                            Decimal("0.01"))),
                        "layout": layout, "orientation": facing,
                        "price_per_m2": str(premium),
                        "status": "withheld" if building == buildings[0]
                        and floor > floors + 1 - withheld else "available"})
        sales.units.add(rows)


def _people(crm: CRM, customer_ids: list[int], rng: random.Random,
            count: int) -> list[int]:
    """Demo customers not yet dealing at either project (so the core's own figures stay
    as they were)."""
    codes = {p[0] for p in PROJECTS}
    ids = sorted(set(customer_ids))
    sample = sorted(rng.sample(ids, k=min(len(ids), 4 * count)))  # enough, and cheap
    found = [c.id for c in crm.customers.get_many(sample)
             if c.mobiles and not any(p.project in codes and p.stage not in
                                      ("prospect", "visitor") for p in c.projects)]
    return rng.sample(found, k=min(count, len(found)))


def seed_demo(crm: CRM, rng: random.Random, customer_ids: list[int]) -> DemoSection:
    for code, name, *_ in PROJECTS:
        try:
            crm.projects.get(code)
        except NotFound:
            crm.projects.ensure(code, name)
    sales = Sales(crm)
    _inventory(sales)
    people = _people(crm, customer_ids, rng, 19)
    if len(people) < 6:
        return DemoSection(title=f"{NAME}: too few demo customers for sales", rows=[])
    now = utcnow()
    opening = now - dt.timedelta(days=40)
    buyers, spouses, holders = people[:10], people[10:13], people[13:]
    tickets = [sales.tickets.issue("XL2", cid, "20000", now=opening - dt.timedelta(days=10))
               for cid in buyers]
    sales.tickets.call("XL2", 8, now=opening)
    available = [u.name for u in sales.units.list(project="XL2", status="available")]
    rng.shuffle(available)
    deals = []
    for i, t in enumerate(tickets[:8]):
        parties = [f"{spouses[i]}:spouse:50"] if i < len(spouses) else []
        at = opening + dt.timedelta(hours=i)
        try:
            deals.append(sales.deals.subscribe(
                available.pop(), t.customer_id or 0, parties=parties, ticket=t.number,
                discount=str(rng.choice((0, 10000, 30000))), deposit="100000", now=at))
        except Refused:
            continue
    sales.tickets.refund(tickets[-1].number, project="XL2")
    signed = []
    for i, d in enumerate(deals[:5]):
        at = d.subscribed_at + dt.timedelta(days=rng.randint(2, 6))
        plan = ("full", "mortgage", "instalments")[i % 3]
        signed.append(sales.deals.sign(d.id, contract_no=f"XL2-HT-{d.id:04d}", total=d.amount,
                                       payment=plan, now=at))
        sales.payments.schedule(d.id, "instalments:6" if plan == "instalments" else plan,
                                now=at)
    if len(deals) > 6:
        sales.deals.cancel(deals[6].id, reason="客户贷款未获批 (mortgage refused)",
                           now=now - dt.timedelta(days=5))
    if len(deals) > 5:
        sales.deals.change_unit(deals[5].id, available.pop(), reason="换到高楼层 (higher floor)",
                                now=now - dt.timedelta(days=3))
    for i, cid in enumerate(holders[:4]):  # the first one lapsed an hour ago
        at = now - dt.timedelta(minutes=90 if i == 0 else 10)
        sales.units.hold(available.pop(), cid, now=at)
    yh1 = [u.name for u in sales.units.list(project="YH1", status="available")]
    for cid in holders[4:]:
        unit = yh1.pop(rng.randrange(len(yh1)))
        at = now - dt.timedelta(days=rng.randint(400, 600))
        d = sales.deals.subscribe(unit, cid, deposit="50000", now=at)
        sales.deals.sign(d.id, contract_no=f"YH1-HT-{d.id:04d}", total=d.amount,
                         payment="full", now=at + dt.timedelta(days=5))
        sales.deals.handover(d.id, date=(at + dt.timedelta(days=300)).date(),
                             now=at + dt.timedelta(days=300))
    rows: list[tuple[str, str]] = []
    states = ("withheld", "available", "held", "subscribed", "contracted", "handed_over")
    for code, *_ in PROJECTS:
        r = report(crm, project=code, now=now)
        for b in r.buildings:
            rows.append((f"{code} building {b.building}", " ".join(
                f"{s} {b.states.get(s, 0)}" for s in states)))
        rows.append((f"{code}", f"sold {r.sold}/{r.for_sale} ({r.sell_through_percent}%), "
                     f"deals {r.deal_amount} CNY, avg {r.average_price_per_m2 or '-'} CNY/㎡, "
                     f"receivables {r.receivables_due} due, {r.receivables_overdue} overdue"))
    called = sum(1 for t in sales.tickets.list(project="XL2") if t.state != "issued")
    rows.append(("tickets XL2", f"{len(tickets)} issued, {called} called or settled"))
    return DemoSection(title=f"{NAME}: sales control (销控), tickets, deals, receivables",
                       rows=rows)
