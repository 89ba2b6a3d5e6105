"""The key file as a person meets it: ``recrm init`` creates it owner-only, ``db
upgrade`` creates a missing one in its default place and says so, a command that
needs a key exits 2 in one line when it is missing or bad, and commands that need
none work without it. Real ``recrm`` processes in a temporary directory."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from recrm_core.testing import postgres_url

SEGMENT = '{"field": "mobile", "op": "eq", "value": "13812345678"}'


def recrm(cwd: Path, *args: str, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("recrm")
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "from recrm_core.cli import main; main()"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RECRM_")}
    environ.update(env or {})
    return subprocess.run([*command, *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=120)


def test_init_creates_the_key_file_owner_only(tmp_path: Path) -> None:
    init = recrm(tmp_path, "init")
    assert init.returncode == 0, init.stderr
    key = tmp_path / "recrm.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "created the key file" in init.stderr
    data = json.loads(key.read_text())
    assert len({data["hashing"], data["encryption"], data["signing"]}) == 3
    before = key.read_bytes()
    again = recrm(tmp_path, "init")
    assert again.returncode == 0 and key.read_bytes() == before  # never replaced
    added = recrm(tmp_path, "customers", "add", "--mobile", "13812345678", "--name", "王伟")
    assert added.returncode == 0, added.stderr
    out = tmp_path / "list.csv"
    export = recrm(tmp_path, "customers", "export-list", "--segment", SEGMENT, "--out", str(out))
    assert export.returncode == 0, export.stderr
    entries = json.loads(recrm(tmp_path, "audit", "list", "--action", "export",
                               "--json").stdout)
    [entry] = entries
    hashed = entry["details"]["segment"]["value"]
    assert hashed.startswith("h1:") and "13812345678" not in json.dumps(entries)
    assert entry["channel"] == "cli" and entry["details"]["rows"] == 1
    # Another installation's keys would hash to nothing this database holds: refused.
    key.unlink()
    from recrm_core.keys import create_key_file

    create_key_file(key)
    wrong = recrm(tmp_path, "customers", "export-list", "--segment", SEGMENT, "--out", str(out))
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
    assert "does not belong to this database" in wrong.stderr and "recrm.key" in wrong.stderr


def test_a_missing_or_bad_key_file_stops_only_what_needs_it(tmp_path: Path) -> None:
    assert recrm(tmp_path, "init").returncode == 0
    assert recrm(tmp_path, "customers", "add", "--mobile", "13812345678").returncode == 0
    key = tmp_path / "recrm.key"
    key.unlink()
    out = tmp_path / "list.csv"
    needs = recrm(tmp_path, "customers", "export-list", "--segment", SEGMENT, "--out", str(out))
    assert needs.returncode == 2 and needs.stdout == ""
    assert needs.stderr.count("\n") == 1 and "recrm.key" in needs.stderr
    assert "not found" in needs.stderr and not out.exists()
    # commands that never need a key work without it
    for args in (("customers", "count"), ("customers", "find", "--mobile", "13812345678"),
                 ("customers", "export-list", "--all", "--out", str(out))):
        done = recrm(tmp_path, *args)
        assert done.returncode == 0, (args, done.stderr)
    # a damaged or world-readable file: exit 2, one line naming it, no key material
    key.write_text('{"format": "recrm-keys-1", "hashing": "AAAA"}')
    key.chmod(0o600)
    bad = recrm(tmp_path, "customers", "export-list", "--segment", SEGMENT, "--out", str(out))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "recrm.key" in bad.stderr
    key.unlink()
    upgraded = recrm(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0 and "created the key file" in upgraded.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key.chmod(0o644)
    shared = recrm(tmp_path, "customers", "export-list", "--segment", SEGMENT, "--out", str(out))
    assert shared.returncode == 2 and "readable by other users" in shared.stderr


def test_a_configured_key_file_is_never_invented_by_db_upgrade(tmp_path: Path) -> None:
    (tmp_path / "recrm.toml").write_text('database_url = "sqlite:///crm.db"\n'
                                         'key_file = "keys/mine.key"\n')
    upgraded = recrm(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "not found" in upgraded.stderr and not (tmp_path / "keys").exists()


def test_postgresql_without_configuration_names_the_setting(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(postgres_url())
    schema = f"recrm_k_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
        env = {"RECRM_DATABASE_URL": url}
        upgraded = recrm(tmp_path, "db", "upgrade", env=env)
        assert upgraded.returncode == 0, upgraded.stderr
        assert "set key_file" in upgraded.stderr
        assert recrm(tmp_path, "customers", "add", "--mobile", "13812345678",
                     env=env).returncode == 0
        needs = recrm(tmp_path, "customers", "export-list", "--segment", SEGMENT, "--out",
                      str(tmp_path / "x.csv"), env=env)
        assert needs.returncode == 2 and "key_file" in needs.stderr, needs.stderr
        assert needs.stderr.count("\n") == 1
        env["RECRM_KEY_FILE"] = str(tmp_path / "pg.key")
        from recrm_core.keys import create_key_file

        create_key_file(tmp_path / "pg.key")
        done = recrm(tmp_path, "customers", "export-list", "--segment", SEGMENT, "--out",
                     str(tmp_path / "x.csv"), env=env)
        assert done.returncode == 0, done.stderr
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_the_demo_on_postgresql_keeps_its_key_file_in_the_working_directory(
        tmp_path: Path) -> None:
    """``recrm --db postgresql://… demo`` in a fresh directory, as on SQLite: no
    recrm.toml, no RECRM_KEY_FILE; the key file lands in the working directory and
    the "try next" commands name it."""
    pytest.importorskip("psycopg")
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(postgres_url())
    schema = f"recrm_d_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
        built = recrm(tmp_path, "--db", url, "demo", "--customers", "60")
        assert built.returncode == 0, built.stderr[-2000:]
        key = tmp_path / "recrm.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert f"RECRM_KEY_FILE={key} recrm --db" in built.stdout
        # the key file is the database's: a command needing it works when pointed at it
        shown = recrm(tmp_path, "--db", url, "customers", "show", "1",
                      env={"RECRM_KEY_FILE": str(key)})
        assert shown.returncode == 0, shown.stderr
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
