"""Senders in separate processes against one database: several at once send each
recipient exactly one message, and a sender killed with SIGKILL in the middle of a send
leaves nothing that the next run sends twice or forgets. The kill lands where the test
says through a test transport plugin that blocks after N messages (no test-only switch
in the production code). Each sender is its own spawned process with its own CRM."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from newsletter_testkit import HTML, SEGMENT, add_customers, smtp_server, smtp_settings
from recrm_newsletter import Sender, service

from recrm_core import CRM, DeliveryResult, Message, hookimpl
from recrm_core.keys import ensure_key_file
from recrm_core.testing import StartLine, run_together

N = 40


class BlockAfter:
    """Answers no message itself (the plugin's SMTP transport delivers) until ``n``
    went through; then marks ``flag`` and blocks for good, before the next one."""

    name = "blockafter"

    def __init__(self, n: int, flag: str) -> None:
        self.n, self.flag, self.seen = n, flag, 0

    @hookimpl(tryfirst=True)
    def recrm_deliver_message(self, message: Message) -> DeliveryResult | None:
        if self.seen == self.n:
            Path(self.flag).write_text("blocked")
            time.sleep(3600)
        self.seen += 1
        return None


def _settings(tmp_path: Path, port: int, **more: Any) -> dict[str, Any]:
    """Settings every process shares: the test's key file and the SMTP server."""
    key = tmp_path / "recrm-test.key"
    ensure_key_file(key)
    return {"key_file": str(key), "newsletter": smtp_settings(port, **more)}


def _crm(url: str, settings: dict[str, Any], *extra: object) -> CRM:
    return CRM(database_url=url, plugins=["newsletter", *extra], settings=settings)


def _sender(url: str, settings: dict[str, Any], start: StartLine) -> int:
    with _crm(url, settings) as crm:
        sender = Sender(crm)
        start.wait()
        result = sender.run()
    return result.sent


def _blocked_sender(url: str, settings: dict[str, Any], n: int, flag: str) -> None:
    with _crm(url, settings, BlockAfter(n, flag)) as crm:
        Sender(crm).run()


def _prepare(crm: CRM) -> None:
    add_customers(crm, N, consent=lambda i: i % 7 != 3)
    news = service(crm)
    news.save_segment("prospects", SEGMENT)
    news.create_campaign("launch", channel="email", segment="prospects",
                         subject="星珑湾三期开盘", html=HTML)
    news.schedule("launch")


def _consented() -> list[str]:
    return sorted(f"owner{i}@example.com" for i in range(N) if i % 7 != 3)


def test_senders_at_once_send_each_message_once(
        crm_factory: Any, recrm_database_url: str, tmp_path: Path) -> None:
    with smtp_server() as (inbox, port):
        settings = _settings(tmp_path, port, batch_size=4)
        crm = crm_factory(plugins=["newsletter"], settings=settings)
        _prepare(crm)
        results = run_together(_sender, [(recrm_database_url, settings)] * 4)
        assert sum(results) == len(_consented())
        assert sorted(r[0] for r in inbox.rcpt) == _consented()
        assert len({m["Message-ID"] for m in inbox.messages}) == len(_consented())
        report = service(crm).report("launch")
        assert (report.sent, report.pending, report.send.state) == (
            len(_consented()), 0, "sent")


def test_a_sender_killed_mid_send_is_resumed_without_sending_twice(
        crm_factory: Any, recrm_database_url: str, recrm_backend: str,
        tmp_path: Path) -> None:
    if recrm_backend != "postgresql":
        pytest.skip("the kill-and-resume test runs on PostgreSQL")
    with smtp_server() as (inbox, port):
        settings = _settings(tmp_path, port, batch_size=5, lease_seconds=30)
        crm = crm_factory(plugins=["newsletter"], settings=settings)
        _prepare(crm)
        flag = tmp_path / "blocked"
        ctx = multiprocessing.get_context("spawn")
        proc = ctx.Process(target=_blocked_sender,
                           args=(recrm_database_url, settings, 13, str(flag)))
        proc.start()
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert proc.is_alive() and time.monotonic() < deadline, "the sender never blocked"
            time.sleep(0.05)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=30)
        assert len(inbox.raw) == 13
        report = service(crm).report("launch")
        assert report.sent == 13 and report.send.state == "sending"
        # The dead sender's batch is leased: a run now leaves it, one after the lease
        # takes it again.
        Sender(crm).run()
        assert service(crm).report("launch").pending == 2  # rows 14, 15 of its batch
        Sender(crm).run(now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60))
        got = Counter(r[0] for r in inbox.rcpt)
        assert sorted(got) == _consented() and set(got.values()) == {1}
        assert service(crm).report("launch").send.state == "sent"
