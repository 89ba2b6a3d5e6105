"""Acceptance review of issue 7 ("Reliability first"): what the review found still
open, each proven with real ``recrm`` processes or the public API on both backends.

- Many short ``in`` lists (each inline, one parameter per value) together passed
  PostgreSQL's 65,535 parameters: ``customers count`` ended in an internal error.
- A plugin calling ``sys.exit()`` while it is imported ended every command with the
  plugin's code and no word, ``recrm plugins list`` included.
- ``--config`` naming a FIFO waited forever, naming ``/dev/zero`` read until memory
  ran out; ``--segment`` naming a FIFO waited forever.
- The first commands started at once on an empty PostgreSQL database raced to
  create the tables: some exited 2 ("relation ... already exists").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from recrm_core import CRM
from recrm_core.segments import MAX_NODES
from recrm_core.testing import CliResult, RecrmCliRunner

#: a command that should answer at once; one that waits for a FIFO writer never does
PROMPT = 30


def _recrm() -> list[str]:
    return [str(Path(sys.executable).with_name("recrm"))]


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[:2000]
    assert "Traceback" not in stderr
    return lines[0]


# -- segments: many inline lists -------------------------------------------------------


def test_many_short_in_lists_stay_within_the_parameter_limits(
    cli_runner: RecrmCliRunner, crm: CRM
) -> None:
    crm.customers.add({"name": "王伟", "mobile": "13812345678"})
    lists = [[f"n{j}_{i}" for i in range(1000)] for j in range(MAX_NODES - 1)]
    lists[-1][-1] = "王伟"
    definition = {"any": [{"field": "name", "op": "in", "value": v} for v in lists]}
    result: CliResult = cli_runner.invoke("customers", "count", "--segment",
                                          json.dumps(definition), "--json")
    assert result.exit_code == 0, result.stderr[:500]
    assert result.json() == {"count": 1}
