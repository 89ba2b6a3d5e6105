"""HTTP API benchmark: ``recrm serve`` against a bare Starlette app on the same server.

    python bench/api_bench.py [--backends sqlite,postgresql] [--seconds 4] [--rounds 2]
                              [--clients 4] [--customers 200] [--keep DIR]

For each backend it builds a migrated database holding ``--customers`` customers
(SQLite: a file in a temporary directory; PostgreSQL: a fresh schema in the database
of ``--postgres-url``, dropped afterwards) and an admin API key, then starts two
servers on 127.0.0.1, both uvicorn in one process with one worker, log level
warning (so no access log):

- ``recrm serve`` (the real command, with ``[api] rate_limit_per_minute`` raised so
  the bench is not throttled);
- the baseline: a bare Starlette app with the same two routes — ``GET
  /v1/customers/{id}`` answering a fixed JSON object and ``POST
  /v1/customers/{id}/interactions`` parsing the JSON body and answering 201 — run by
  ``uvicorn.run`` with the same options ``recrm serve`` passes.

Each round loads each target for ``--seconds`` with ``--clients`` threads, each an
``httpx.Client`` (keep-alive) sending one request after the other: (a) ``GET
/v1/customers/{id}`` (the 360 view) of customers 1..N/2, (b) ``POST
/v1/customers/{id}/interactions`` to customers N/2+1..N (so the views read do not
grow), and the baseline's same two routes. The best round of each target counts.
Besides requests/s and p50/p99 latency it reads the server process's CPU time from
/proc, which is steadier than wall time on a shared machine.

Prints one JSON document: per backend and target the figures, and the recrm /
baseline ratios (``rps``: below 1 is slower; ``p50``, ``p99``, ``cpu_per_request``:
above 1 is slower). The client runs on the same machine and takes CPU from the
servers: the baseline's figures are a floor of this setup, not of uvicorn.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from recrm_core import CRM
from recrm_core.migrating import upgrade

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LOG_LEVEL = "warning"

BASELINE = f"""
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CUSTOMER = {{"customer": {{"id": 1, "name": "客户1", "mobiles": ["+8613800000001"],
                         "stage": "prospect", "projects": []}},
            "timeline": [], "cases": [], "consents": []}}


async def view(request: Request) -> JSONResponse:
    return JSONResponse({{**CUSTOMER, "id": int(request.path_params["customer_id"])}})


async def log(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({{"id": 1, "customer_id": int(request.path_params["customer_id"]),
                         "kind": body["kind"], "summary": body.get("summary")}},
                        status_code=201)


app = Starlette(routes=[
    Route("/v1/customers/{{customer_id:int}}", view),
    Route("/v1/customers/{{customer_id:int}}/interactions", log, methods=["POST"]),
    Route("/healthz", lambda request: JSONResponse({{"status": "ok"}})),
])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level={LOG_LEVEL!r},
            proxy_headers=False, server_header=False)
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def database(backend: str, work: Path, postgres_url: str) -> Iterator[str]:
    """The URL of a new, empty database of ``backend``; a PostgreSQL schema is dropped
    on the way out."""
    if backend == "sqlite":
        yield f"sqlite:///{work / 'api-bench.db'}"
        return
    schema = f"recrm_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def prepare(url: str, customers: int) -> str:
    """Migrate, add the customers and an admin; the admin's new API key."""
    with CRM(database_url=url, plugins=[]) as crm:
        upgrade(crm)
    with CRM(database_url=url, plugins=[]) as crm:
        crm.directory.add_staff({"id": "a1", "name": "Admin", "role": "admin"})
        crm.projects.add({"code": "XL2", "name": "星珑二期"})
        for i in range(1, customers + 1):
            added = crm.customers.add({"mobile": f"138{i:08d}", "name": f"客户{i}",
                                       "project": "XL2", "email": f"c{i}@example.com"})
            assert added.customer.id == i
        return crm.apikeys.create("a1", role="admin", name="api bench").key


@contextmanager
def server(argv: list[str], cwd: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, up (``/healthz`` 200) when entered, ended on the way out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECRM_")}
    log = (cwd / f"server-{port}.log").open("wb")
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{argv[:3]} exited: {(cwd / log.name).read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv[:3]} did not answer /healthz in 60 s")
            with suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)
        log.close()


Request = Callable[[httpx.Client, random.Random], httpx.Response]


def load(base_url: str, headers: dict[str, str], send: Request, expect: int, pid: int,
         seconds: float, clients: int) -> dict[str, float]:
    """``clients`` threads sending ``send`` requests for ``seconds``: requests/s,
    latency percentiles and the server's CPU time per request."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    start_line = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(n: int) -> None:
        rng = random.Random(n)
        mine = latencies[n]
        try:
            with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
                for _ in range(20):  # warm up: connection, the server's caches
                    assert send(http, rng).status_code == expect
                start_line.wait()
                while True:
                    began = time.perf_counter()
                    if began >= stop_at[0]:
                        return
                    response = send(http, rng)
                    mine.append(time.perf_counter() - began)
                    if response.status_code != expect:
                        raise AssertionError(f"{response.status_code}: {response.text[:300]}")
        except BaseException as exc:
            errors.append(exc)
            with suppress(threading.BrokenBarrierError):
                start_line.abort()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = float("inf")
    with suppress(threading.BrokenBarrierError):  # a client failed: raised below
        start_line.wait()
    cpu_before, began = cpu_seconds(pid), time.perf_counter()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    cpu = cpu_seconds(pid) - cpu_before
    if errors:
        raise errors[0]
    every = sorted(x for mine in latencies for x in mine)
    count = len(every)
    return {
        "requests": count,
        "rps": round(count / elapsed, 1),
        "p50_ms": round(every[count // 2] * 1000, 2),
        "p99_ms": round(every[min(count - 1, int(count * 0.99))] * 1000, 2),
        "server_cpu_us_per_request": round(cpu / count * 1e6, 1),
    }


def bench_backend(backend: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    with database(backend, work, args.postgres_url) as url:
        key = prepare(url, args.customers)
        config = work / "recrm.toml"
        config.write_text(f"database_url = {json.dumps(url)}\n\n[api]\n"
                          "rate_limit_per_minute = 1000000\n", encoding="utf-8")
        recrm_port, base_port = free_port(), free_port()
        recrm = [str(Path(sys.executable).with_name("recrm")), "--config", str(config),
                 "serve", "--host", "127.0.0.1", "--port", str(recrm_port),
                 "--log-level", LOG_LEVEL]
        baseline_script = work / "baseline_app.py"
        baseline_script.write_text(BASELINE, encoding="utf-8")
        baseline = [sys.executable, str(baseline_script), str(base_port)]
        half = args.customers // 2

        def get(http: httpx.Client, rng: random.Random) -> httpx.Response:
            return http.get(f"/v1/customers/{rng.randint(1, half)}")

        def post(http: httpx.Client, rng: random.Random) -> httpx.Response:
            return http.post(f"/v1/customers/{rng.randint(half + 1, args.customers)}"
                             "/interactions",
                             json={"kind": "call", "summary": "回访：客户对三期感兴趣"})

        with server(recrm, work, recrm_port) as recrm_proc, \
                server(baseline, work, base_port) as base_proc:
            targets = {
                "baseline_get": (f"http://127.0.0.1:{base_port}", get, 200, base_proc.pid),
                "recrm_get": (f"http://127.0.0.1:{recrm_port}", get, 200, recrm_proc.pid),
                "baseline_post": (f"http://127.0.0.1:{base_port}", post, 201, base_proc.pid),
                "recrm_post": (f"http://127.0.0.1:{recrm_port}", post, 201, recrm_proc.pid),
            }
            best: dict[str, dict[str, float]] = {}
            headers = {"Authorization": f"Bearer {key}"}
            for _ in range(args.rounds):
                for name, (base_url, send, expect, pid) in targets.items():
                    figures = load(base_url, headers, send, expect, pid, args.seconds,
                                   args.clients)
                    if name not in best or figures["rps"] > best[name]["rps"]:
                        best[name] = figures
    ratios: dict[str, dict[str, float]] = {}
    for kind in ("get", "post"):
        ours, floor = best[f"recrm_{kind}"], best[f"baseline_{kind}"]
        ratios[kind] = {
            "rps": round(ours["rps"] / floor["rps"], 3),
            "p50": round(ours["p50_ms"] / floor["p50_ms"], 2),
            "p99": round(ours["p99_ms"] / floor["p99_ms"], 2),
            "cpu_per_request": round(ours["server_cpu_us_per_request"]
                                     / floor["server_cpu_us_per_request"], 2),
        }
    return {**best, "ratios_recrm_to_baseline": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--seconds", type=float, default=4.0, help="load per target and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep its files")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown or not backends:
        parser.error(f"--backends: unknown {sorted(unknown)}")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="recrm-api-bench-"))
    started = time.perf_counter()
    results: dict[str, Any] = {}
    try:
        for backend in backends:
            results[backend] = bench_backend(backend, args, work / backend)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({
        "setup": {
            "server": f"uvicorn, 1 worker, 127.0.0.1, log level {LOG_LEVEL}",
            "clients": args.clients, "seconds_per_target": args.seconds,
            "rounds": args.rounds, "customers": args.customers, "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        **results,
        "total_s": round(time.perf_counter() - started, 1),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
