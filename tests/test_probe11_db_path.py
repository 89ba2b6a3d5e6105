"""Found by a new user's probe: a SQLite ``--db`` whose file name is longer than a file
system takes (255 bytes) exited 1 with "cannot use the database: unable to open
database file" (``db upgrade``: an internal error). It is a usage error (exit 2) in
one line naming the path (cut short) and where it came from, on every command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("recrm")
    command = [str(script)] if script.exists() else \
        [sys.executable, "-c", "from recrm_core.cli import main; main()"]
    env = {k: v for k, v in os.environ.items() if k not in ("RECRM_DATABASE_URL", "RECRM_DEBUG")}
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(("name", "size"), [("a" * 300 + ".db", 303), ("é" * 130, 260)])
@pytest.mark.parametrize("command", [("customers", "count"), ("db", "upgrade")])
def test_a_name_too_long_is_a_usage_error_naming_db(
        tmp_path: Path, name: str, size: int, command: tuple[str, ...]) -> None:
    # the file's own name, and a folder's (SQLite's "-journal" beside the file: 247)
    for url, what, limit in ((f"sqlite:///{tmp_path / name}", "its name", 247),
                             (f"sqlite:///{tmp_path / name / 'crm.db'}", "a name in it", 255)):
        done = _run(tmp_path, "--db", url, *command)
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert done.stdout == "" and "Traceback" not in done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and len(lines[0]) < 300, done.stderr
        assert f"{what} is {size} bytes long, longer than the {limit} bytes it may " \
               "have (--db, RECRM_DATABASE_URL or database_url in recrm.toml)" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_the_longest_names_make_a_database(tmp_path: Path) -> None:
    folder = tmp_path / ("d" * 255)
    folder.mkdir()
    done = _run(tmp_path, "--db", f"sqlite:///{tmp_path / ('a' * 245 + '.db')}", "db",
                "upgrade")
    assert done.returncode == 2 and "its name is 248 bytes long" in done.stderr, done.stderr
    done = _run(tmp_path, "--db", f"sqlite:///{tmp_path / ('a' * 244 + '.db')}", "db",
                "upgrade")
    assert done.returncode == 0, done.stderr
    # the longest full path SQLite opens (504 bytes, with "-journal" 512)
    longest = folder / ("a" * (504 - len(os.fsencode(folder)) - 1))
    done = _run(tmp_path, "--db", f"sqlite:///{longest}", "db", "upgrade")
    assert done.returncode == 0, done.stderr
    done = _run(tmp_path, "--db", f"sqlite:///{longest}a", "db", "upgrade")
    assert done.returncode == 2, done.stderr
    assert "its full path is 505 bytes long, longer than the 504 bytes" in done.stderr
