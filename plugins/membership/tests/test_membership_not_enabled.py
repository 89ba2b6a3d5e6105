"""Without the plugin enabled in recrm.toml, `recrm member` says how to enable it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_member_command_when_plugin_is_not_enabled(tmp_path: Path) -> None:
    recrm = Path(sys.executable).with_name("recrm")
    env = {k: v for k, v in os.environ.items() if k != "RECRM_DATABASE_URL"}
    proc = subprocess.run(
        [str(recrm), "--db", f"sqlite:///{tmp_path / 'x.db'}", "member", "show", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "plugin 'membership', which is not enabled" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr

    (tmp_path / "recrm.toml").write_text('plugins = ["membership"]\n', encoding="utf-8")
    proc = subprocess.run(
        [str(recrm), "--db", f"sqlite:///{tmp_path / 'x.db'}", "member", "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0 and "enroll" in proc.stdout
