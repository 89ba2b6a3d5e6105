"""Found by probing as a new user: an agency code typed with full-width letters
(``ＬＪ``) made a second agency beside ``LJ``, and a full-width agent id was stored as
typed while the directory stored the staff id cleaned, so the agent's API key (the
staff id) named no agent. Codes are NFKC-normalised as the core's are."""

from __future__ import annotations

import pytest
from recrm_channels import service

from recrm_core import CRM, Refused

pytestmark = pytest.mark.recrm_plugins("channels")


def test_full_width_agency_and_agent_codes_are_the_ascii_ones(crm: CRM) -> None:
    crm.projects.ensure("XL2", "Xinglong Phase II")
    channels = service(crm)
    assert channels.add_agency("ＬＪ", "链家").code == "LJ"
    with pytest.raises(Refused, match="agency 'LJ' exists"):
        channels.add_agency("LJ", "链家 again")
    agent = channels.add_agent("ｌｊ.ｌｉ", "李强", "ＬＪ")
    assert (agent.id, agent.agency) == ("lj.li", "LJ")
    assert crm.directory.get("lj.li").role == "partner"
    assert channels.suspend_agency("ＬＪ").status == "suspended"
    assert [a.code for a in channels.agencies()] == ["LJ"]
