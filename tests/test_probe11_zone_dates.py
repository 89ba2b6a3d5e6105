"""Siblings of the probe's channel refusal in UTC, found on the way: the pool's
"lost customer ... to the pool on <day>" named the UTC day, a day off the office's
between midnight and 08:00 in Shanghai. A day a person reads is the business zone's."""

from __future__ import annotations

import datetime as dt

import pytest

from recrm_core import CRM
from recrm_core.errors import Refused


@pytest.mark.recrm_settings(pool={"reclaim_days": 7})
def test_the_pool_refusal_names_the_local_day(crm: CRM) -> None:
    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678", "project": "XL2",
                             "owner_staff": "zhang"}).customer.id
    # 20:00 UTC is 04:00 the next day in Shanghai
    swept = (dt.datetime.now(dt.UTC) + dt.timedelta(days=17)).replace(hour=20, minute=0)
    assert len(crm.pool.sweep(swept).released) == 1
    local_day = swept.astimezone(crm.config.zone).date()
    assert local_day != swept.date()
    with pytest.raises(Refused, match=f"to the pool on {local_day.isoformat()} and may claim"):
        crm.pool.claim(cid, "XL2", "zhang", now=swept + dt.timedelta(days=1))
