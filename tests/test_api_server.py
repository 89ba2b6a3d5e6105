"""``recrm serve`` as a real process, over real HTTP (issue 13).

The server runs against the ``crm`` fixture's database (a SQLite file, or the test's
PostgreSQL schema, both already migrated), with a key made by ``recrm apikey
create --json``; requests go through httpx on 127.0.0.1. Every process started here
is in its own session and is ended in ``finally``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from recrm_core import CRM

STARTUP_TIMEOUT = 60.0
EXIT_TIMEOUT = 30.0


def recrm_command() -> list[str]:
    """The installed console script, as a user runs it (like tests/test_cli.py)."""
    script = Path(sys.executable).with_name("recrm")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from recrm_core.cli import main; main()"]


def environment(crm: CRM) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RECRM_DATABASE_URL", "RECRM_CONFIG", "RECRM_DEBUG")}
    if crm.key_file is not None:
        env["RECRM_KEY_FILE"] = str(crm.key_file)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_key(crm: CRM, cwd: Path) -> str:
    """A new admin key, from the real ``recrm apikey create --json``."""
    crm.directory.add_staff({"id": "a1", "name": "Admin", "role": "admin"})
    done = subprocess.run(
        [*recrm_command(), "--db", crm.config.database_url, "apikey", "create", "--staff", "a1",
         "--name", "server test", "--json"],
        cwd=cwd, env=environment(crm), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)["key"]
    assert isinstance(key, str) and key
    return key


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serving(crm: CRM, cwd: Path, *args: str,
            env: dict[str, str] | None = None) -> Iterator[Server]:
    """``recrm serve`` on a free port of 127.0.0.1, up (``/healthz`` answers 200) when
    entered; killed with every process of its session on the way out, whatever
    happened (a clean shutdown is the test's to do and check)."""
    port = free_port()
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*recrm_command(), "--db", crm.config.database_url, "serve", "--host", "127.0.0.1",
             "--port", str(port), *args],
            cwd=cwd, env={**environment(crm), **(env or {})}, stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert process.poll() is None, f"recrm serve exited:\n{server.output()}"
            assert time.monotonic() < deadline, f"no /healthz after {STARTUP_TIMEOUT}s:\n" \
                f"{server.output()}"
            with suppress(httpx.TransportError):
                if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=EXIT_TIMEOUT)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # its workers, if any outlived it


def stop(server: Server, how: signal.Signals) -> None:
    """Ask the server to stop, as a terminal (SIGINT) or a service manager (SIGTERM)
    does, and check that it exits, cleanly."""
    server.process.send_signal(how)
    try:
        code = server.process.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"recrm serve still running {EXIT_TIMEOUT}s after {how.name}:\n"
                             f"{server.output()}") from None
    output = server.output()
    assert code == 0, (code, output)
    assert "Traceback" not in output, output
    assert "Shutting down" in output or "Finished server process" in output, output


def test_serve_over_real_http(crm: CRM, tmp_path: Path) -> None:
    key = api_key(crm, tmp_path)
    with serving(crm, tmp_path) as server:
        health = httpx.get(f"{server.url}/healthz", timeout=10)
        assert health.json() == {"status": "ok", "database": crm.engine.dialect.name,
                                 "schema_version": "current"}
        with httpx.Client(base_url=server.url, timeout=10,
                          headers={"Authorization": f"Bearer {key}"}) as client:
            record = {"mobile": "13812345678", "name": "王先生", "email": "wang@example.com"}
            created = client.post("/v1/customers", json=record)
            assert created.status_code == 201, created.text
            assert created.headers["content-type"] == "application/json"
            body = created.json()
            assert body["created"] is True
            customer_id = body["customer"]["id"]
            assert body["customer"]["mobiles"] == ["+8613812345678"]

            # the same person again, spelt differently: merged into the first
            again = client.post("/v1/customers", json={"mobile": "+86 138 1234 5678",
                                                       "source": "ad"})
            assert again.status_code == 200, again.text
            assert again.json()["created"] is False
            assert again.json()["customer"]["id"] == customer_id

            view = client.get(f"/v1/customers/{customer_id}")
            assert view.status_code == 200, view.text
            assert view.json()["customer"]["name"] == "王先生"
            assert view.json()["customer"]["email"] == "wang@example.com"
            assert client.get("/v1/customers", params={"mobile": "13812345678"}).json()[0][
                "id"] == customer_id

            # an Idempotency-Key retry is replayed, not done twice
            touch = {"kind": "call", "summary": "回访"}
            retry = {"Idempotency-Key": "call-2024-0001"}
            first = client.post(f"/v1/customers/{customer_id}/interactions", json=touch,
                                headers=retry)
            assert first.status_code == 201, first.text
            assert "idempotent-replayed" not in first.headers
            replay = client.post(f"/v1/customers/{customer_id}/interactions", json=touch,
                                 headers=retry)
            assert replay.status_code == 201, replay.text
            assert replay.headers["Idempotent-Replayed"] == "true"
            assert replay.json() == first.json()
            logged = client.get(f"/v1/customers/{customer_id}/interactions").json()
            assert [i["id"] for i in logged if i["kind"] == "call"] == [first.json()["id"]]
            # the same key with another body is refused
            other = client.post(f"/v1/customers/{customer_id}/interactions",
                                json={"kind": "visit"}, headers=retry)
            assert other.status_code == 422, other.text

        # no key, a wrong key: 401 problem documents
        for headers in ({}, {"Authorization": "Bearer rk_not-a-key"}):
            refused = httpx.get(f"{server.url}/v1/customers/{customer_id}", headers=headers,
                                timeout=10)
            assert refused.status_code == 401, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert refused.json()["status"] == 401
            assert "王" not in refused.text

        stop(server, signal.SIGINT)


def worker_pids(server: Server, count: int) -> list[int]:
    """The pids of the ``count`` workers, from uvicorn's "Started server process [N]"
    lines, once each has finished starting."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        output = server.output()
        pids = sorted({int(p) for p in re.findall(r"Started server process \[(\d+)\]", output)})
        if len(pids) >= count and output.count("Application startup complete") >= count:
            assert server.process.pid not in pids
            return pids
        assert time.monotonic() < deadline, output
        time.sleep(0.1)


#: how long each worker is kept from answering uvicorn's health check (stopped, or still
#: starting): longer than uvicorn's own 5 s, which replaced workers that a loaded
#: machine made this slow ("Child process [N] died")
SILENT_SECONDS = 6.0

#: a worker that starts slowly: ``sitecustomize`` runs in every Python process of the
#: server; the spawned workers (``--multiprocessing-fork``) sleep before anything else
SLOW_START = f"""import sys, time
if "--multiprocessing-fork" in sys.argv:
    time.sleep({SILENT_SECONDS})
"""


def test_serve_with_two_workers(crm: CRM, tmp_path: Path) -> None:
    """Both worker processes serve: with the other one stopped (SIGSTOP), each alone
    answers requests on new connections. Workers that start slowly, and a worker
    stopped for longer than uvicorn's default health check allows, are waited for, not
    replaced (as a loaded machine makes them: ``WORKER_HEALTHCHECK_SECONDS``)."""
    key = api_key(crm, tmp_path)
    customer = crm.customers.add({"mobile": "13912345678", "name": "李四"}).customer
    slow = tmp_path / "slow-start"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOW_START)
    with serving(crm, tmp_path, "--workers", "2", "--log-level", "info",
                 env={"PYTHONPATH": str(slow)}) as server:
        workers = worker_pids(server, 2)
        auth = {"Authorization": f"Bearer {key}"}
        for serving_pid in workers:
            paused = [pid for pid in workers if pid != serving_pid]
            for pid in paused:
                os.kill(pid, signal.SIGSTOP)
            try:
                began = time.monotonic()
                for _ in range(3):
                    # a new connection each time: only the running worker can accept it
                    got = httpx.get(f"{server.url}/v1/customers/{customer.id}", headers=auth,
                                    timeout=30)
                    assert got.status_code == 200, got.text
                    assert got.json()["customer"]["name"] == "李四"
                time.sleep(max(0.0, SILENT_SECONDS - (time.monotonic() - began)))
            finally:
                for pid in paused:
                    os.kill(pid, signal.SIGCONT)
        # and both together, for a moment
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            added = [client.post("/v1/customers", json={"mobile": f"1391234{i:04d}"})
                     for i in range(6)]
        assert [r.status_code for r in added] == [201] * 6
        assert crm.customers.count() == 7
        # the same two workers, alive: none replaced, none started since
        started = re.findall(r"Started server process \[(\d+)\]", server.output())
        assert sorted(int(p) for p in started) == workers, server.output()
        for pid in workers:
            os.kill(pid, 0)
        assert "Child process" not in server.output()  # no worker died or was replaced
        stop(server, signal.SIGTERM)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_access_log_holds_no_identity_value_nor_a_page_token(
        crm: CRM, tmp_path: Path, workers: str) -> None:
    """uvicorn logs each request's target: a find by mobile, ID number or email would
    write the person's values into the server's log, where no erasure reaches, and a
    page's address its token (which acts for the person). The log keeps the path."""
    from recrm_core.unsubscribe import unsubscribe_url

    key = api_key(crm, tmp_path)
    values = {"mobile": "13912345678", "id_card": "11010519491231002X",
              "email": "li.si@example.com"}
    customer = crm.customers.add({**values, "name": "李四"}).customer
    page = unsubscribe_url(crm, customer.id, "email").removeprefix(
        crm.config.public_base_url)
    with serving(crm, tmp_path, "--workers", workers, "--log-level", "info") as server:
        with httpx.Client(base_url=server.url, timeout=10,
                          headers={"Authorization": f"Bearer {key}"}) as client:
            for kind, value in values.items():
                found = client.get("/v1/customers", params={kind: value})
                assert [c["id"] for c in found.json()] == [customer.id], found.text
            assert client.get(page).status_code == 200
        stop(server, signal.SIGINT if workers == "1" else signal.SIGTERM)
    output = server.output()
    assert '"GET /v1/customers?... HTTP/1.1" 200' in output, output
    assert '"GET /u/... HTTP/1.1" 200' in output, output
    for secret in (*values.values(), "1391234", "li.si", page.rsplit("/", 1)[1][:12]):
        assert secret.lower() not in output.lower(), (secret, output)


def test_a_single_server_stopped_by_sigterm_exits_0(crm: CRM, tmp_path: Path) -> None:
    """Found by a new user's probe: ``recrm serve`` (one process) stopped by a service
    manager's SIGTERM shut down cleanly, then died of the signal (status -15): uvicorn
    raises it again after its shutdown, into Python's default. It exits 0, as on SIGINT
    and as the ``--workers N`` supervisor does."""
    with serving(crm, tmp_path) as server:
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        stop(server, signal.SIGTERM)
    assert "Application shutdown complete" in server.output()
