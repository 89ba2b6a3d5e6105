"""Start-up of the ``recrm`` command, against the floor every command pays.

The floor is a Python process importing click, SQLAlchemy (with its ORM) and
pydantic and doing nothing else; the figures are ``recrm --help`` and
``recrm customers count --json`` (on an existing SQLite database, plugins as given,
none by default), and the same two with the five first-party plugins enabled, as a
real deployment runs them (``*_five_plugins``).
Runs alternate, best of ``--runs``; CPU time (user + system of the child) is steadier
than wall time on a shared machine and is the figure the ratios use.

    python bench/startup_bench.py [--runs 7] [--plugins membership,survey]

Prints one JSON object: seconds per command, the ratios to the floor and the load
average when the runs ended.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = "import click, sqlalchemy, sqlalchemy.orm, pydantic"
#: what a real deployment enables: the ``*_five_plugins`` figures
FIRST_PARTY = ("membership", "survey", "channels", "newsletter", "sales")


def timed(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env, cwd=cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def prepare(directory: str, plugins: list[str], env: dict[str, str], recrm: str) -> None:
    """A ``recrm.toml`` enabling ``plugins`` and its database, made by ``recrm init``."""
    config = Path(directory, "recrm.toml")
    text = f'database_url = "sqlite:///{directory}/bench.db"\nplugins = {json.dumps(plugins)}\n'
    config.write_text(text, encoding="utf-8")
    subprocess.run([recrm, "init"], check=True, capture_output=True, env=env, cwd=directory)
    config.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--plugins", default="", help="comma-separated plugins to enable")
    args = parser.parse_args()
    recrm = str(Path(sys.executable).with_name("recrm"))
    plugins = [p for p in args.plugins.split(",") if p]
    env = dict(os.environ, RECRM_DISABLE_PLUGINS="")
    env.pop("RECRM_DATABASE_URL", None)
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as deployed:
        prepare(tmp, plugins, env, recrm)
        # A real deployment enables plugins: the first-party five, each command's
        # figure beside the one with ``--plugins`` (none by default).
        prepare(deployed, list(FIRST_PARTY), env, recrm)
        commands = {
            "floor": ([sys.executable, "-c", FLOOR], tmp),
            "help": ([recrm, "--help"], tmp),
            "count": ([recrm, "customers", "count", "--json"], tmp),
            "help_five_plugins": ([recrm, "--help"], deployed),
            "count_five_plugins": ([recrm, "customers", "count", "--json"], deployed),
        }
        best = {name: (float("inf"), float("inf")) for name in commands}
        for _ in range(args.runs):
            for name, (argv, cwd) in commands.items():
                wall, cpu = timed(argv, env, cwd)
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    floor_cpu = best["floor"][1]
    print(json.dumps({
        "runs": args.runs,
        "plugins": plugins,
        "five_plugins": list(FIRST_PARTY),
        "load": round(os.getloadavg()[0], 1),
        "cpu_seconds": {name: round(cpu, 3) for name, (_, cpu) in best.items()},
        "wall_seconds": {name: round(wall, 3) for name, (wall, _) in best.items()},
        "help_ratio": round(best["help"][1] / floor_cpu, 2),
        "count_ratio": round(best["count"][1] / floor_cpu, 2),
        "help_five_plugins_ratio": round(best["help_five_plugins"][1] / floor_cpu, 2),
        "count_five_plugins_ratio": round(best["count_five_plugins"][1] / floor_cpu, 2),
        "aim": {"help_ratio": 1.3, "count_ratio": 1.6},
    }))


if __name__ == "__main__":
    main()
