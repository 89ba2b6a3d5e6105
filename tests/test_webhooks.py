"""Webhooks: the outbox commits with the change, events reach a real local HTTP
receiver signed, failures are retried with backoff and then marked failed, plugins
add event types, erasure and retention delete payloads, and the CLI behaves."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from webhook_receiver import receiver

from recrm_core import CRM, PluginError, hookimpl
from recrm_core.db import utcnow
from recrm_core.errors import InvalidInput
from recrm_core.tables import WebhookDeliveryRow, WebhookEventRow, WebhookSubscriptionRow
from recrm_core.testing import RecrmCliRunner
from recrm_core.webhooks import SIGNATURE_HEADER, sign, verify_signature
from recrm_core.webhooks.events import CORE_EVENTS

Register = Callable[..., str]
M1, M2 = "13812345678", "13987654321"


def count(crm: CRM, row: type) -> int:
    with crm.unit_of_work(readonly=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(row)) or 0)


def bodies(requests: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in requests]


# -- the outbox ---------------------------------------------------------------------------


def test_nothing_is_written_without_a_subscription(crm: CRM) -> None:
    crm.customers.add({"mobile": M1, "project": "XL2"})
    assert count(crm, WebhookEventRow) == 0
    crm.webhooks.add("https://erp.example.cn/hooks", "case.opened")
    crm.customers.add({"mobile": M2})  # nobody wants customer.created
    assert count(crm, WebhookEventRow) == 0


def test_a_rolled_back_change_writes_no_event(crm: CRM, register_plugin: Register) -> None:
    crm.webhooks.add("https://erp.example.cn/hooks", "customer.created,interaction.logged")

    class Refuser:
        name = "refuser"

        @hookimpl
        def recrm_customer_created(self, uow: Any, customer: Any) -> None:
            raise RuntimeError("no")

    register_plugin(Refuser())
    with pytest.raises(PluginError):
        crm.customers.add({"mobile": M1})
    assert count(crm, WebhookEventRow) == 0 and count(crm, WebhookDeliveryRow) == 0
    crm.pm.unregister(name="refuser")
    customer = crm.customers.add({"mobile": M1}).customer
    with pytest.raises(InvalidInput), crm.unit_of_work() as uow:  # emitted, then rolled back
        crm.interactions.log_in(uow, customer.id, kind="call", summary="hello")
        raise InvalidInput("x", "the caller changed its mind")
    assert count(crm, WebhookEventRow) == 1  # the customer.created only


def test_every_core_event_reaches_the_receiver_signed(crm: CRM) -> None:
    with receiver() as rx:
        created = crm.webhooks.add(rx.url, "*", description="ERP")
        assert created.generated and created.secret.startswith("whsec_")
        a = crm.customers.add({"name": "王伟", "mobile": M1, "project": "XL2",
                               "id_card": "11010519491231002X"}).customer
        b = crm.customers.add({"name": "王伟", "mobile": M2}).customer
        crm.customers.update(a.id, {"email": "wang@example.cn"})
        crm.customers.merge(a.id, b.id)
        crm.customers.set_stage(a.id, "visitor", "XL2")
        crm.interactions.log(a.id, {"kind": "visit", "project": "XL2"})
        case = crm.cases.open({"customer_id": a.id, "category": "repair",
                               "subject": "漏水", "priority": "high"})
        crm.cases.start(case.id)
        run = crm.webhooks.deliver()
        assert run.failed == run.retrying == 0 and run.delivered == run.attempted > 0
        received = bodies(rx.requests)
        assert {e["type"] for e in received} == set(CORE_EVENTS)
        for request, event in zip(rx.requests, received, strict=True):
            assert set(event) == {"id", "type", "created_at", "data"}
            assert event["id"].startswith("evt_") and event["created_at"].endswith("Z")
            assert request.headers["X-Recrm-Event-Id"] == event["id"]
            assert request.headers["X-Recrm-Event"] == event["type"]
            assert request.headers["Content-Type"].startswith("application/json")
            assert verify_signature(created.secret, request.headers[SIGNATURE_HEADER],
                                    request.body)
            assert not verify_signature("whsec_another-secret-here", request.headers[
                SIGNATURE_HEADER], request.body)
            assert not verify_signature(created.secret, request.headers[SIGNATURE_HEADER],
                                        request.body + b" ")
        first = next(e for e in received if e["type"] == "customer.created")
        assert first["data"]["customer"]["mobiles"] == ["+86" + M1]
        # never the ID number: encrypted at rest, it is not copied out in clear
        assert "id_card" not in first["data"]["customer"]
        assert all(b"11010519491231002X" not in r.body for r in rx.requests)
        updated = next(e for e in received if e["type"] == "customer.updated")
        assert updated["data"]["changed"] == ["email"]
        merged = next(e for e in received if e["type"] == "customer.merged")
        assert merged["data"]["duplicate_id"] == b.id
        moved = next(e for e in received if e["type"] == "case.status_changed")
        assert (moved["data"]["old_status"], moved["data"]["new_status"]) == ("open",
                                                                              "in_progress")
        assert len({e["id"] for e in received}) == len(received)
        # nothing is sent twice
        assert crm.webhooks.deliver().attempted == 0


def test_the_signature_is_the_documented_hmac() -> None:
    body = b'{"id":"evt_1"}'
    header = f"t=1700000000,v1={sign('whsec_0123456789abcdef', 1700000000, body)}"
    import hashlib
    import hmac

    expected = hmac.new(b"whsec_0123456789abcdef", b"1700000000." + body,
                        hashlib.sha256).hexdigest()
    assert header.endswith(expected)
    assert verify_signature("whsec_0123456789abcdef", header, body, now=1700000100)
    # too old (or from the future) beyond the tolerance: refused, a replay
    assert not verify_signature("whsec_0123456789abcdef", header, body, now=1700000301)
    assert not verify_signature("whsec_0123456789abcdef", header, body, now=1699999000)
    assert verify_signature("whsec_0123456789abcdef", header, body, now=1700000900,
                            tolerance=1000)
    for bad in (None, "", "t=x,v1=00", "v1=" + expected, "t=1700000000"):
        assert not verify_signature("whsec_0123456789abcdef", bad, body, now=1700000000)


# -- retries ----------------------------------------------------------------------------


@pytest.mark.recrm_settings(webhooks={"retry_base_seconds": 30, "max_attempts": 5})
def test_a_failing_receiver_is_retried_until_it_recovers(crm: CRM) -> None:
    with receiver([500, 503]) as rx:
        crm.webhooks.add(rx.url, "customer.created")
        crm.customers.add({"mobile": M1})
        t0 = utcnow()
        assert crm.webhooks.deliver(now=t0).retrying == 1
        pending = crm.webhooks.deliveries(status="pending")[0]
        assert (pending.attempts, pending.last_status, pending.last_error) == (1, 500, "HTTP 500")
        assert pending.next_attempt_at == t0 + dt.timedelta(seconds=30)
        # not due yet: nothing is sent
        assert crm.webhooks.deliver(now=t0 + dt.timedelta(seconds=29)).attempted == 0
        assert crm.webhooks.deliver(now=t0 + dt.timedelta(seconds=30)).retrying == 1
        # the backoff doubles: 60 seconds after the second failure
        second = crm.webhooks.deliveries(status="pending")[0]
        assert second.next_attempt_at == t0 + dt.timedelta(seconds=90)
        run = crm.webhooks.deliver(now=t0 + dt.timedelta(seconds=90))
        assert (run.delivered, run.retrying) == (1, 0)
        ids = {r.headers["X-Recrm-Event-Id"] for r in rx.requests}
        assert len(rx.requests) == 3 and len(ids) == 1  # the same event, the same id
        assert [r.headers["X-Recrm-Attempt"] for r in rx.requests] == ["1", "2", "3"]
        done = crm.webhooks.deliveries(status="delivered")[0]
        assert (done.attempts, done.last_status, done.last_error) == (3, 200, None)


@pytest.mark.recrm_settings(webhooks={"retry_base_seconds": 1, "max_attempts": 2})
def test_the_last_failed_attempt_marks_it_failed(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    with receiver([500] * 10) as rx:
        crm.webhooks.add(rx.url, "customer.created")
        crm.customers.add({"mobile": M1})
        t0 = utcnow()
        assert crm.webhooks.deliver(now=t0).retrying == 1
        assert crm.webhooks.deliver(now=t0 + dt.timedelta(seconds=5)).failed == 1
        assert crm.webhooks.deliver(now=t0 + dt.timedelta(hours=5)).attempted == 0
        assert len(rx.requests) == 2
    shown = cli_runner.invoke("webhook", "deliveries", "--status", "failed", "--json")
    assert shown.exit_code == 0, shown.stderr
    (failed,) = shown.json()
    assert (failed["status"], failed["attempts"], failed["last_status"], failed["type"]) == (
        "failed", 2, 500, "customer.created")
    table = cli_runner.invoke("webhook", "deliveries")
    assert "failed" in table.stdout and "HTTP 500" in table.stdout


@pytest.mark.recrm_settings(webhooks={"timeout_seconds": 2})
def test_an_unreachable_receiver_is_a_failed_attempt(crm: CRM) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    crm.webhooks.add(f"http://127.0.0.1:{port}/x", "customer.created")
    crm.customers.add({"mobile": M1})
    assert crm.webhooks.deliver().retrying == 1
    (pending,) = crm.webhooks.deliveries()
    assert pending.last_status is None and pending.last_error


def test_a_redirect_is_not_followed(crm: CRM) -> None:
    with receiver([302]) as rx:
        crm.webhooks.add(rx.url, "customer.created")
        crm.customers.add({"mobile": M1})
        assert crm.webhooks.deliver().retrying == 1
        assert len(rx.requests) == 1


# -- plugin events ------------------------------------------------------------------------


class Channels:
    """A stand-in for the channels plugin: it confirms registrations."""

    name = "channels"

    @hookimpl
    def recrm_webhook_events(self, register: Callable[[str, str], None]) -> None:
        register("channels.registration_confirmed", "an agency's registration was confirmed")


class Sales:
    name = "sales"

    @hookimpl
    def recrm_webhook_events(self, register: Callable[[str, str], None]) -> None:
        register("sales.contract_signed", "a deal's contract was signed")


def test_hook_recrm_webhook_events(crm: CRM, register_plugin: Register) -> None:
    register_plugin(Channels())
    register_plugin(Sales())
    listed = {t.name: t.source for t in crm.webhooks.event_types()}
    assert listed["channels.registration_confirmed"] == "channels"
    assert listed["sales.contract_signed"] == "sales"
    assert listed["customer.created"] == "core"
    customer = crm.customers.add({"mobile": M1, "project": "XL2"}).customer
    with receiver() as rx:
        hook = crm.webhooks.add(rx.url, ["sales.contract_signed"])
        with crm.unit_of_work() as uow:
            # nobody subscribed to this one: nothing written
            assert crm.webhooks.emit(uow, "channels.registration_confirmed",
                                     {"agency": "A1"}, customer_id=customer.id) is None
            event_id = crm.webhooks.emit(
                uow, "sales.contract_signed",
                {"unit": "3-1201", "signed_on": dt.date(2024, 5, 1)}, customer_id=customer.id)
        assert event_id is not None
        with pytest.raises(InvalidInput, match="unknown webhook event type"), \
                crm.unit_of_work() as uow:
            crm.webhooks.emit(uow, "sales.contract_signd", {})
        assert crm.webhooks.deliver().delivered == 1
        (event,) = bodies(rx.requests)
        assert event == {"id": event_id, "type": "sales.contract_signed",
                         "created_at": event["created_at"],
                         "data": {"unit": "3-1201", "signed_on": "2024-05-01"}}
        assert verify_signature(hook.secret, rx.requests[0].headers[SIGNATURE_HEADER],
                                rx.requests[0].body)


def test_a_plugin_event_must_carry_the_plugins_name(crm: CRM, register_plugin: Register) -> None:
    class Thief:
        name = "thief"

        @hookimpl
        def recrm_webhook_events(self, register: Callable[[str, str], None]) -> None:
            register("channels.registration_confirmed", "not mine")

    register_plugin(Thief())
    with pytest.raises(PluginError) as failed:
        crm.webhooks.event_types()
    assert failed.value.plugin == "thief" and "must start with" in str(failed.value)


def test_subscribing_to_an_unknown_type_is_refused(crm: CRM) -> None:
    with pytest.raises(InvalidInput, match=r"unknown event type 'sales\.contract_signed'"):
        crm.webhooks.add("https://erp.example.cn/h", "customer.created,sales.contract_signed")


# -- privacy and retention ---------------------------------------------------------------


def test_erasure_deletes_the_persons_payloads(crm: CRM) -> None:
    crm.webhooks.add("https://erp.example.cn/hooks", "*")
    person = crm.customers.add({"name": "王伟", "mobile": M1, "email": "wang@example.cn",
                                "project": "XL2"}).customer
    friend = crm.customers.add({"name": "李娜", "mobile": M2}).customer
    crm.interactions.log(friend.id, {"kind": "call", "summary": f"介绍朋友 {M1}"})
    exported = crm.privacy.export(person.id)
    assert [e["type"] for e in exported["webhook_events"]] == ["customer.created"]
    before = count(crm, WebhookEventRow)
    report = crm.privacy.erase(person.id, "request 42")
    assert report.verified
    step = next(s for s in report.steps if s["table"] == "webhook_events")
    # the person's own event, and the friend's interaction naming their mobile
    assert step["deleted"] == 2
    with crm.unit_of_work(readonly=True) as uow:
        left = list(uow.session.scalars(select(WebhookEventRow.body)))
    assert len(left) == before - 2
    assert all(M1 not in body and "王伟" not in body for body in left)
    # their deliveries went with them: never sent
    assert count(crm, WebhookDeliveryRow) == len(left)


@pytest.mark.recrm_settings(webhooks={"retention_days": 7})
def test_payloads_are_deleted_after_retention(crm: CRM) -> None:
    with receiver([200, 500]) as rx:
        crm.webhooks.add(rx.url, "customer.created")
        crm.customers.add({"mobile": M1})
        crm.customers.add({"mobile": M2})
        t0 = utcnow()
        run = crm.webhooks.deliver(now=t0)
        assert (run.delivered, run.retrying) == (1, 1)
    # a day short of retention: kept; the one still pending is never pruned
    assert crm.webhooks.prune(now=t0 + dt.timedelta(days=6)) == 0
    assert crm.webhooks.prune(now=t0 + dt.timedelta(days=7, seconds=1)) == 1
    assert count(crm, WebhookEventRow) == 1
    (pending,) = crm.webhooks.deliveries()
    assert pending.status == "pending"


# -- subscriptions and the CLI ------------------------------------------------------------


def test_the_secret_is_stored_encrypted(crm: CRM) -> None:
    given = "a-shared-secret-of-some-length"
    created = crm.webhooks.add("https://erp.example.cn/h", "customer.created", secret=given)
    assert created.secret == given and not created.generated
    with crm.unit_of_work(readonly=True) as uow:
        stored = uow.session.scalar(select(WebhookSubscriptionRow.secret))
    assert stored is not None and stored.startswith("v1:") and given not in stored


def test_the_secrets_survive_a_key_rotation(crm: CRM, tmp_path: Path) -> None:
    from recrm_core.rotation import rotate_key

    with receiver() as rx:
        hook = crm.webhooks.add(rx.url, "customer.created")
        with crm.unit_of_work(readonly=True) as uow:
            before = uow.session.scalar(select(WebhookSubscriptionRow.secret))
        rotate_key(crm, tmp_path / "rotated.key")
        with crm.unit_of_work(readonly=True) as uow:
            after = uow.session.scalar(select(WebhookSubscriptionRow.secret))
        assert before != after
        crm.customers.add({"mobile": M1})
        assert crm.webhooks.deliver().delivered == 1
        assert verify_signature(hook.secret, rx.requests[0].headers[SIGNATURE_HEADER],
                                rx.requests[0].body)


def test_cli_add_list_remove(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    added = cli_runner.invoke("webhook", "add", "https://erp.example.cn/hooks?src=crm",
                              "--events", "customer.created, stage.changed",
                              "--description", "ERP")
    assert added.exit_code == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_") and "shown once" in added.stderr
    listed = cli_runner.invoke("webhook", "list", "--json")
    (hook,) = listed.json()
    assert hook["events"] == ["customer.created", "stage.changed"]
    assert hook["url"] == "https://erp.example.cn/hooks?src=crm"
    assert "secret" not in hook and secret not in listed.stdout
    assert secret not in cli_runner.invoke("webhook", "list").stdout
    given = cli_runner.invoke("webhook", "add", "http://10.0.0.5:8080/in", "--events", "*",
                              "--secret", "0123456789abcdefXYZ", "--json")
    assert given.exit_code == 0 and "0123456789abcdefXYZ" not in given.stdout
    events = cli_runner.invoke("webhook", "events", "--json").json()
    assert {e["name"] for e in events} == set(CORE_EVENTS)
    removed = cli_runner.invoke("webhook", "remove", str(hook["id"]))
    assert removed.exit_code == 0 and "removed webhook" in removed.stderr
    assert [h["id"] for h in cli_runner.invoke("webhook", "list", "--json").json()] == [
        given.json()["id"]]
    audit = [(e.action, e.details["event"]) for e in crm.audit.entries(action="webhook")]
    assert audit == [("webhook", "add"), ("webhook", "add"), ("webhook", "remove")]
    assert all("secret" not in json.dumps(e.details) for e in crm.audit.entries())


def one_line_error(result: Any, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    line: str = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line, result.stderr
    return line


@pytest.mark.parametrize(("args", "code", "says"), [
    (("ftp://erp.example.cn/x", "--events", "customer.created"), 2, "http:// or https://"),
    (("https://user:pw@erp.example.cn/x", "--events", "customer.created"), 2, "credentials"),
    (("not a url", "--events", "customer.created"), 2, "URL"),
    (("https://erp.example.cn/x", "--events", "customer.creatd"), 2, "unknown event type"),
    (("https://erp.example.cn/x", "--events", " , "), 2, "at least one event type"),
    (("https://erp.example.cn/x", "--events", "*", "--secret", "short"), 2, "16 to 100"),
    (("https://erp.example.cn/x",), 2, "--events"),
])
def test_cli_usage_errors(cli_runner: RecrmCliRunner, args: tuple[str, ...], code: int,
                          says: str) -> None:
    line = one_line_error(cli_runner.invoke("webhook", "add", *args), code)
    assert says in line


def test_cli_refusals(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    assert "no such webhook 7" in one_line_error(
        cli_runner.invoke("webhook", "remove", "7"), 1)
    one_line_error(cli_runner.invoke("webhook", "remove", "x"), 2)
    crm.directory.add_staff({"id": "s2", "name": "Li", "role": "sales"})
    line = one_line_error(cli_runner.invoke("--as", "sales:s2", "webhook", "add",
                                            "https://erp.example.cn/x", "--events", "*"), 1)
    assert "may not manage webhooks" in line
    one_line_error(cli_runner.invoke("--as", "sales:s2", "webhook", "list"), 1)
    one_line_error(cli_runner.invoke("--as", "sales:s2", "webhook", "deliveries"), 1)


def test_cli_deliver_once_and_in_a_loop(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    with receiver() as rx:
        crm.webhooks.add(rx.url, "customer.created")
        crm.customers.add({"mobile": M1})
        once = cli_runner.invoke("webhook", "deliver", "--json")
        assert once.exit_code == 0, once.stderr
        assert once.json()["delivered"] == 1
        crm.customers.add({"mobile": M2})
        seen: list[Any] = []
        crm.webhooks.run(0.01, passes=2, report=seen.append)
        assert [r.delivered for r in seen] == [1, 0] and len(rx.requests) == 2
    plain = cli_runner.invoke("webhook", "deliver")
    assert plain.exit_code == 0 and "0 delivered" in plain.stderr


def test_imports_send_created_and_updated_events(crm: CRM, tmp_path: Path) -> None:
    crm.webhooks.add("https://erp.example.cn/h", "customer.created,customer.updated")
    existing = crm.customers.add({"mobile": M2}).customer
    path = tmp_path / "in.csv"
    path.write_text(f"name,mobile,email\n王伟,{M1},\n,{M2},li@example.cn\n", encoding="utf-8")
    crm.importer.import_file(path)
    with crm.unit_of_work(readonly=True) as uow:
        events = [json.loads(b) for b in uow.session.scalars(
            select(WebhookEventRow.body).order_by(WebhookEventRow.created_at))]
    assert [e["type"] for e in events] == ["customer.created", "customer.created",
                                          "customer.updated"]
    assert events[1]["data"]["customer"]["name"] == "王伟"
    assert events[2]["data"]["customer"]["id"] == existing.id
    assert events[2]["data"]["changed"] == ["email"]


def test_startup_does_not_load_the_sender(tmp_path: Path) -> None:
    probe = ("import sys; from recrm_core.cli import main; sys.argv = ['recrm', *ARGS]\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if 'webhooks' in m or m == 'urllib.request'))")
    (tmp_path / "recrm.toml").write_text(f'database_url = "sqlite:///{tmp_path}/s.db"\n',
                                         encoding="utf-8")
    for args in (["init"], ["customers", "count"], ["--help"]):
        done = subprocess.run([sys.executable, "-c", probe.replace("ARGS", repr(args))],
                              capture_output=True, text=True, cwd=tmp_path, check=True)
        loaded = done.stdout.strip().splitlines()[-1]
        assert "delivery" not in loaded and "service" not in loaded, (args, loaded)
        assert "urllib.request" not in loaded and "cli.webhooks" not in loaded, loaded


def test_the_documented_receiver_check_accepts_a_real_delivery(crm: CRM) -> None:
    """The ten lines of Python in docs/api.md#webhooks, run on what a receiver got."""
    import re

    page = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    section = page[page.index("## Webhooks"):]
    (snippet,) = re.findall(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "docs/api.md", "exec"), namespace)
    verify = namespace["verify"]
    with receiver() as rx:
        hook = crm.webhooks.add(rx.url, "customer.created")
        crm.customers.add({"name": "王伟", "mobile": M1})
        crm.webhooks.deliver()
        (request,) = rx.requests
    header = request.headers[SIGNATURE_HEADER]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    assert verify(hook.secret, header, request.body)
    assert not verify(hook.secret, header, request.body.replace(b"created", b"updated", 1))
    assert not verify("whsec_wrong-secret-0000", header, request.body)
    t = int(header.split(",")[0][2:])
    stale = f"t={t - 600},v1={sign(hook.secret, t - 600, request.body)}"
    assert not verify(hook.secret, stale, request.body)
