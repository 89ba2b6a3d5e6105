"""Several processes register overlapping mobiles for one project at once: each mobile
ends with exactly one active registration, and no process sees any error but the
documented refusal. Each writer is its own spawned process with its own CRM (like
agents at several desks); on PostgreSQL the agent row lock, the advisory lock on
(mobile, project) and the partial unique index decide, on SQLite ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import pytest
from channels_testkit import PROJECT, setup_agencies
from recrm_channels import RegistrationRefused, service
from recrm_channels.tables import RegistrationRow
from sqlalchemy import func, select

from recrm_core import CRM
from recrm_core.testing import StartLine, run_together

pytestmark = pytest.mark.recrm_plugins("channels")

MOBILES = [f"1381234{i:04d}" for i in range(8)]
AGENTS = ["a1", "a2", "b1", "c1"]


def _writer(url: str, agent: str, mobiles: list[str], start: StartLine) -> list[str]:
    outcomes: list[str] = []
    with CRM(database_url=url, plugins=["channels"]) as crm:
        channels = service(crm)
        start.wait()
        for mobile in mobiles:
            try:
                channels.register(agent, PROJECT, mobile)
                outcomes.append("pending")
            except RegistrationRefused:
                outcomes.append("refused")
    return outcomes


def test_processes_registering_at_once_leave_one_active_per_mobile(
    crm: CRM, recrm_database_url: str
) -> None:
    channels = setup_agencies(crm)
    channels.add_agency("C", "C")
    channels.add_agent("c1", "Agent C1", "C")
    # every writer takes the mobiles in its own order, so they collide everywhere
    orders = [MOBILES[i:] + MOBILES[:i] for i in range(0, 2 * len(AGENTS), 2)]
    results = run_together(_writer, [(recrm_database_url, agent, order)
                                     for agent, order in zip(AGENTS, orders, strict=True)])
    outcomes = [o for values in results for o in values]
    assert outcomes.count("pending") == len(MOBILES)
    assert outcomes.count("refused") == len(MOBILES) * (len(AGENTS) - 1)
    with crm.unit_of_work() as uow:
        active = dict(uow.session.execute(
            select(RegistrationRow.mobile, func.count())
            .where(RegistrationRow.state.in_(("pending", "confirmed", "converted")))
            .group_by(RegistrationRow.mobile)).all())
        total = uow.session.scalar(select(func.count()).select_from(RegistrationRow))
    assert sorted(active.values()) == [1] * len(MOBILES)
    assert total == len(MOBILES) * len(AGENTS)
