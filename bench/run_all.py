"""Run every benchmark in bench/ and print one JSON document.

    python bench/run_all.py [--full] [--only NAME,...] [--skip NAME,...] [--timeout S]

Each ``*_bench.py`` beside this file runs in a process of its own (the project's
interpreter, from the repository root) with modest sizes by default, or with the
issue's sizes under ``--full`` (imports of 200k and 1M rows, lookups and segments on
1M customers); a script named here without sizes, or new in bench/, runs with its own
defaults. Each script prints one JSON object: its last line of output becomes the
script's entry. A script that fails or times out gets ``{"error": ...}`` and the run
goes on. The document also says when and on what it ran: the figures of a shared,
noisy machine mean little without the load beside them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

#: (entry name, script, arguments) run by default: minutes, not hours
MODEST: list[tuple[str, str, list[str]]] = [
    ("import_bench", "import_bench.py", ["--rows", "20000"]),
    ("import_bench_postgresql", "import_bench.py",
     ["--rows", "20000", "--backend", "postgresql", "--second-file"]),
    ("demo_bench", "demo_bench.py", ["--runs", "1"]),
    ("report_bench", "report_bench.py", ["--customers", "20000"]),
    ("lookup_bench", "lookup_bench.py", ["--rows", "100000", "--lookups", "1000"]),
    ("startup_bench", "startup_bench.py", ["--runs", "3"]),
    ("api_bench", "api_bench.py", ["--seconds", "2", "--rounds", "1"]),
    ("send_bench", "send_bench.py", ["--recipients", "5000"]),
    ("ops_bench", "ops_bench.py", ["--ops", "100"]),
    ("segment_bench", "segment_bench.py", ["--rows", "100000", "--runs", "3"]),
]
#: the issue's sizes (``--full``): hours on a shared 2-core machine
FULL: list[tuple[str, str, list[str]]] = [
    ("import_bench_200k", "import_bench.py", ["--rows", "200000"]),
    ("import_bench_1m", "import_bench.py", ["--rows", "1000000"]),
    ("import_bench_postgresql_200k", "import_bench.py",
     ["--rows", "200000", "--backend", "postgresql", "--second-file"]),
    ("import_bench_postgresql_1m", "import_bench.py",
     ["--rows", "1000000", "--backend", "postgresql", "--second-file"]),
    ("demo_bench", "demo_bench.py", ["--runs", "3"]),
    ("report_bench", "report_bench.py", ["--customers", "1000000"]),
    ("lookup_bench", "lookup_bench.py", ["--rows", "1000000"]),
    ("startup_bench", "startup_bench.py", []),
    ("api_bench", "api_bench.py", []),
    ("send_bench", "send_bench.py", []),
    ("ops_bench", "ops_bench.py", ["--ops", "1000"]),
    ("segment_bench", "segment_bench.py", ["--rows", "1000000"]),
]


def plan(full: bool) -> list[tuple[str, str, list[str]]]:
    """The runs: the known scripts with their sizes, then any other bench script."""
    runs = list(FULL if full else MODEST)
    known = {script for _, script, _ in runs} | {Path(__file__).name}
    for path in sorted(BENCH.glob("*.py")):
        if path.name not in known and not path.name.startswith("_"):
            runs.append((path.stem, path.name, []))
    return runs


def run(script: str, args: list[str], timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "args": args}
    seconds = round(time.perf_counter() - started, 1)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}", "args": args, "seconds": seconds}
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"last line is not JSON: {lines[-1][:200]}", "args": args}
    return {"args": args, "seconds": seconds, "result": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help="the issue's sizes (200k and 1M rows); takes hours")
    parser.add_argument("--only", default="", help="comma-separated entry names to run")
    parser.add_argument("--skip", default="", help="comma-separated entry names to leave out")
    parser.add_argument("--timeout", type=float, default=7200,
                        help="seconds each script may take")
    args = parser.parse_args()
    only = {n for n in args.only.split(",") if n}
    skip = {n for n in args.skip.split(",") if n}
    runs = [r for r in plan(args.full) if (not only or r[0] in only) and r[0] not in skip]
    unknown = (only | skip) - {name for name, _, _ in plan(args.full)}
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    document: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "full": args.full,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_before": [round(x, 2) for x in os.getloadavg()]},
        "benchmarks": {},
    }
    for name, script, script_args in runs:
        print(f"running {name} {' '.join(script_args)} ...", file=sys.stderr, flush=True)
        document["benchmarks"][name] = run(script, script_args, args.timeout)
    document["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(document, ensure_ascii=False))


if __name__ == "__main__":
    main()
