"""Runs examples/minimal_crm.py as a user would, then checks what it left in the database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import recrm_hotlead

from recrm_core import CRM

SCRIPT = Path(__file__).resolve().parents[1] / "minimal_crm.py"


def test_minimal_crm_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'minimal.db').as_posix()}"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--db", url],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "second record of 王伟: merged" in lines
    assert "customers: 2" in lines
    assert any(line.startswith("customer 1: 王伟 +8613812345678 email=wangwei@example.com "
                               "stage=subscriber") for line in lines)
    assert "  project XL2 (星珑二期): subscriber, consultant zhang, source 抖音广告" in lines
    # Both plugins changed the 360 view: the hot-lead tag and the suggested next step.
    assert any(line.endswith("[hotlead] hot_lead: hot lead (2 visits)") for line in lines)
    assert any(line.endswith("[nextstep] next_step: prepare the contract (签约)") for line in lines)
    assert lines[-1] == "hot lead: 王伟 (2 visits at XL2)"

    # What the script wrote is really in the file, readable by a CRM with the same plugin.
    with CRM(database_url=url, plugins=[recrm_hotlead]) as crm:
        [wang] = crm.customers.find(mobile="13812345678")
        assert (wang.name, wang.stage, wang.budget, wang.persona) == (
            "王伟", "subscriber", 2_000_000, "first_time",
        )
        kinds = [i.kind for i in crm.interactions.list(wang.id)]
        assert kinds == ["subscription", "visit", "visit"]
        assert [h.customer_id for h in recrm_hotlead.hot_leads(crm)] == [wang.id]
