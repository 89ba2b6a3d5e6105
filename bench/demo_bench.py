"""``recrm demo`` (the README's main job) against its budget of 10 s.

Times whole ``recrm demo`` processes on a fresh SQLite file each (the demo refuses a
database holding customers), every installed plugin taking part and the human
summary printed (to /dev/null) as in ``bash scripts/demo.sh``; ``--json`` times the
one-line JSON form instead, which skips printing the summary and its reports. The
first run warms one-time caches (matplotlib's font cache on a fresh machine,
bytecode) and is not counted; then best of ``--runs``. The baseline in the same run
is the floor every command pays (a Python process importing click, SQLAlchemy and
pydantic), so a slower machine shows in both. CPU seconds are the demo process's and
its children's (the worker drawing the dashboard's charts).

    python bench/demo_bench.py [--runs 3] [--customers 3000] [--json]

Prints one JSON object: wall and CPU seconds of the best run, peak memory, the floor,
``budget_ratio`` (best wall / 10 s: under 1 meets the issue's budget) and
``floor_ratio`` (demo CPU / floor CPU); ``demo_cpu_min_s`` and ``floor_ratio_min_cpu``
take the least CPU of any run instead of the fastest run's (on a loaded machine the
fastest run by the clock is not always the one that did the least work).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = "import click, sqlalchemy, sqlalchemy.orm, pydantic"
BUDGET_SECONDS = 10.0


def timed(argv: list[str], cwd: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one child process (wait4 counts
    the CPU of the children it waited for too)."""
    # PYTHONDONTWRITEBYTECODE would make every run compile the sources again: the
    # warm-up run must leave its bytecode as on any machine that installed recrm.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RECRM_") and k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=env, cwd=cwd)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        err = child.stderr.read().decode(errors="replace") if child.stderr else ""
        raise SystemExit(f"{argv[0]} failed: {err.strip().splitlines()[-1:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--json", action="store_true",
                        help="time `recrm demo --json` (no summary printed)")
    args = parser.parse_args()
    recrm = str(Path(sys.executable).with_name("recrm"))
    demos: list[tuple[float, float, float]] = []
    floors: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs + 1):
            db = Path(tmp, f"demo{i}.db")
            run = timed([recrm, "--db", f"sqlite:///{db}", "demo", "--customers",
                         str(args.customers), *(["--json"] if args.json else [])], tmp)
            if i:  # the first run warms the caches
                demos.append(run)
            floors.append(timed([sys.executable, "-c", FLOOR], tmp)[1])
    wall, cpu, rss = min(demos)
    least_cpu = min(run[1] for run in demos)
    floor = min(floors)
    print(json.dumps({
        "customers": args.customers, "runs": args.runs, "json": args.json,
        "demo_wall_s": round(wall, 2), "demo_cpu_s": round(cpu, 2),
        "demo_peak_rss_mb": round(rss, 1), "floor_cpu_s": round(floor, 3),
        "budget_s": BUDGET_SECONDS, "budget_ratio": round(wall / BUDGET_SECONDS, 2),
        "floor_ratio": round(cpu / floor, 1) if floor else None,
        "demo_cpu_min_s": round(least_cpu, 2),
        "floor_ratio_min_cpu": round(least_cpu / floor, 1) if floor else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }))


if __name__ == "__main__":
    main()
