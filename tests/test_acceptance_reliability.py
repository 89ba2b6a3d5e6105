"""Acceptance review of issue 7 ("Reliability first"): what the review found still
open, each proven with real ``recrm`` processes or the public API on both backends.

- Many short ``in`` lists (each inline, one parameter per value) together passed
  PostgreSQL's 65,535 parameters: ``customers count`` ended in an internal error.
- A plugin calling ``sys.exit()`` while it is imported ended every command with the
  plugin's code and no word, ``recrm plugins list`` included.
- ``--config`` naming a FIFO waited forever, naming ``/dev/zero`` read until memory
  ran out; ``--segment`` naming a FIFO waited forever.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recrm_core import CRM
from recrm_core.segments import MAX_NODES
from recrm_core.testing import CliResult, RecrmCliRunner, StartLine, run_together

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


# -- a plugin exiting while it is imported ---------------------------------------------


def _installed_plugin(tmp_path: Path, name: str, source: str) -> dict[str, str]:
    """An environment in which ``name`` is an installed plugin (an entry point in the
    group ``recrm``, found on PYTHONPATH) whose module is ``source``."""
    site = tmp_path / "site"
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (site / f"{name}.py").write_text(source, encoding="utf-8")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[recrm]\n{name} = {name}\n", encoding="utf-8")
    return {**os.environ, "PYTHONPATH": str(site)}


def test_a_plugin_exiting_on_import_is_a_plugin_error(tmp_path: Path) -> None:
    env = _installed_plugin(tmp_path, "exitonload", "import sys\nsys.exit(7)\n")
    config = tmp_path / "recrm.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "x.db"}"\n'
                      'plugins = ["exitonload"]\n', encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*_recrm(), "--config", str(config), *args], env=env,
                              capture_output=True, text=True, timeout=PROMPT, cwd=tmp_path)

    done = run("customers", "count")
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "plugin 'exitonload' failed in load: SystemExit: 7" in _one_line(done.stderr)
    listed = run("plugins", "list", "--json")
    assert listed.returncode == 0, (listed.returncode, listed.stderr)
    errors = {p["name"]: p["error"] for p in json.loads(listed.stdout)}
    assert errors["exitonload"] == "SystemExit: 7"
    # With the plugin installed but not enabled, the hint for an unknown command
    # still imports it (to find whose command it is).
    config.write_text(f'database_url = "sqlite:///{tmp_path / "x.db"}"\n', encoding="utf-8")
    typo = run("no-such-command")
    assert typo.returncode == 2, (typo.returncode, typo.stderr)
    assert "No such command 'no-such-command'" in _one_line(typo.stderr)


# -- files that are not files: the configuration and a segment file --------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.toml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("where", ["fifo", "zero"])
def test_a_configuration_that_is_not_a_file_is_refused(
    tmp_path: Path, fifo: Path, where: str
) -> None:
    target = fifo if where == "fifo" else tmp_path / "zero.toml"
    if where == "zero":
        target.symlink_to("/dev/zero")
    done = subprocess.run([*_recrm(), "--config", str(target), "customers", "count"],
                          capture_output=True, text=True, timeout=PROMPT, cwd=tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr[:500])
    kind = "a FIFO (named pipe)" if where == "fifo" else "a character device"
    assert f"it is {kind}, not a file" in _one_line(done.stderr)


def test_a_configuration_not_in_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "recrm.toml"
    config.write_bytes('timezone = "Asia/Shanghai"  # 上海\n'.encode("gb18030"))
    done = subprocess.run([*_recrm(), "customers", "count"], capture_output=True, text=True,
                          timeout=PROMPT, cwd=tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr[:500])
    assert "not UTF-8 text" in _one_line(done.stderr)


def test_a_segment_file_that_is_a_fifo_is_refused(tmp_path: Path, fifo: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    done = subprocess.run([*_recrm(), "--db", db, "customers", "count", "--segment", str(fifo)],
                          capture_output=True, text=True, timeout=PROMPT, cwd=tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr[:500])
    assert "it is a FIFO (named pipe), not a file" in _one_line(done.stderr)


# -- the first commands on an empty database, at once ----------------------------------

STARTERS = 6


def _start_worker(url: str, start: StartLine) -> int:
    crm = CRM(database_url=url, plugins=["membership", "survey"])
    try:
        start.wait()
        crm.create_schema()  # what every CLI command runs first
        return crm.customers.count()
    finally:
        crm.close()


def test_first_commands_at_once_on_an_empty_database_all_run(recrm_database_url: str) -> None:
    results = run_together(_start_worker, [(recrm_database_url,)] * STARTERS)
    assert results == [0] * STARTERS, results
