"""Overlapping imports at once: four ``recrm customers import`` processes over files
that share mobiles, each in its own order, all finish (exit 0) and leave exactly
the union of the persons, one customer each.

Without a fixed lock order two batches inserting the same keys in different orders
deadlock on PostgreSQL; the importer sorts what it inserts and retries a batch that
lost a race (UNIQUE violation or deadlock) with backoff.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from recrm_core import CRM
from recrm_core.tables import CustomerRow, IdentityRow

PERSONS = 1200
PER_FILE = 800
PROCESSES = 4


def _recrm() -> list[str]:
    return [str(Path(sys.executable).with_name("recrm"))]


@pytest.mark.parametrize("same_file", [False, True])
def test_overlapping_imports_all_finish_with_the_union(
    crm: CRM, recrm_database_url: str, tmp_path: Path, same_file: bool
) -> None:
    rng = random.Random(7)
    persons = [(f"1371234{i:04d}", f"客户{i}") for i in range(PERSONS)]
    config = tmp_path / "recrm.toml"
    config.write_text(f'database_url = "{recrm_database_url}"\nimport_batch_size = 50\n',
                      encoding="utf-8")
    files = []
    used: set[str] = set()
    first = rng.sample(persons, PER_FILE)
    for n in range(PROCESSES):
        chosen = first if same_file or n == 0 else rng.sample(persons, PER_FILE)
        if n % 2 and not same_file:
            chosen.reverse()
        used.update(m for m, _ in chosen)
        path = tmp_path / f"leads{n}.csv"
        path.write_text("mobile,name,project\n" + "".join(
            f"{m},{name},XL{0 if same_file else n % 2}\n" for m, name in chosen), encoding="utf-8")
        files.append(path)
    env = dict(os.environ, RECRM_DISABLE_PLUGINS="", PYTHONIOENCODING="utf-8")
    procs = [
        subprocess.Popen([*_recrm(), "--config", str(config), "customers", "import", str(f),
                          "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         cwd=tmp_path)
        for f in files
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
        assert err.decode() == "", err.decode()  # no "error ignored terminating" lines
        assert b'"rejected":0' in out.replace(b" ", b""), out
    with crm.unit_of_work() as uow:
        alive = uow.session.scalar(select(func.count()).select_from(CustomerRow)
                                   .where(CustomerRow.merged_into.is_(None)))
        mobiles = uow.session.scalar(select(func.count()).select_from(IdentityRow)
                                     .where(IdentityRow.kind == "mobile"))
    assert alive == len(used)
    assert mobiles == len(used)
