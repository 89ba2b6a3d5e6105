"""Sending: due invitations leave through the transport hook exactly once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pytest
from recrm_survey import SendResult, due, expire, invitations, invite, send_due
from recrm_survey.tables import SurveyInvitation
from sqlalchemy import select
from survey_testkit import Capture, ago, customer, owner

from recrm_core import CRM, DeliveryResult, Message, hookimpl

pytestmark = pytest.mark.recrm_plugins("survey")


def due_invitations(crm: CRM, n: int) -> list[int]:
    ids = []
    for i in range(n):
        cid = customer(crm, f"138{i:08d}", name=f"业主{i}")
        ids.append(invite(crm, cid, "yearly", due_at=ago(1)).id)
    return ids


def statuses(crm: CRM) -> dict[int, str]:
    return {i.id: i.status for i in invitations(crm)}


def test_send_hands_each_due_invitation_to_the_transport_once(
    crm: CRM, register_plugin: Callable[..., str]
) -> None:
    capture = Capture()
    register_plugin(capture)
    a = owner(crm, "13812345678", handed_over=ago(100), name="王伟")
    [checkin] = due(crm)
    later = invite(crm, a, "csat", due_at=ago(-3))  # due in three days
    result = send_due(crm)
    assert (result.sent, result.failed, result.skipped, result.invitation_ids) == (
        1, 0, 0, [checkin.id])
    [message] = capture.messages
    assert (message.channel, message.to, message.subject, message.customer_id) == (
        "sms", "+8613812345678", "业主入住回访", a)
    assert message.headers == {"X-Recrm-Survey": "handover_checkin",
                               "X-Recrm-Invitation": str(checkin.id)}
    assert message.body.startswith("王伟您好，诚邀您参加「业主入住回访」")
    # the default link_template: the core's public_base_url and the survey page
    assert f"http://127.0.0.1:8000/s/{checkin.token}" in message.body
    [sent] = invitations(crm, status="sent")
    assert sent.id == checkin.id and sent.sent_at is not None
    # a re-run sends nobody twice
    assert send_due(crm).sent == 0
    assert len(capture.messages) == 1
    # the later invitation goes out once its day has come, and only then
    assert send_due(crm, now=later.due_at).invitation_ids == [later.id]
    assert capture.invitation_ids() == [checkin.id, later.id]


def test_limit_and_order(crm: CRM, register_plugin: Callable[..., str]) -> None:
    capture = Capture()
    register_plugin(capture)
    ids = due_invitations(crm, 5)
    assert send_due(crm, limit=2).sent == 2
    assert send_due(crm, limit=10).sent == 3
    assert sorted(capture.invitation_ids()) == ids


def test_console_transport_by_default(crm: CRM, capsys: pytest.CaptureFixture[str]) -> None:
    due_invitations(crm, 1)
    assert send_due(crm).sent == 1
    err = capsys.readouterr().err
    assert "--- sms to +8613800000000 [年度业主满意度调查]" in err
    [inv] = invitations(crm)
    assert inv.status == "sent"


def test_a_second_sender_at_the_same_moment_never_doubles(
    crm: CRM, crm_factory: Callable[..., CRM]
) -> None:
    # The first sender's transport, while delivering its first message, lets a
    # second sender (another CRM on the same database) run to the end: the claim
    # of every invitation is committed before delivery, so each goes out once.
    ids = due_invitations(crm, 4)
    inner = Capture()
    other = crm_factory(plugins=["survey", inner])
    second_runs: list[object] = []

    def run_second_sender(_message: Message) -> None:
        if not second_runs:
            second_runs.append(send_due(other))

    outer = Capture(on_deliver=run_second_sender)
    first = crm_factory(plugins=["survey", outer])
    result = send_due(first)
    assert len(outer.messages) == 1
    assert sorted(outer.invitation_ids() + inner.invitation_ids()) == ids
    assert result.sent == 1 and result.skipped == 3
    assert second_runs[0].sent == 3  # type: ignore[attr-defined]
    assert set(statuses(crm).values()) == {"sent"}


def test_threads_sending_together_send_each_once(crm_factory: Callable[..., CRM]) -> None:
    setup = crm_factory(plugins=["survey"])
    ids = due_invitations(setup, 12)
    captures = [Capture(), Capture()]
    senders = [crm_factory(plugins=["survey", c]) for c in captures]
    barrier = threading.Barrier(2)
    results: list[SendResult] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results.append(send_due(senders[i]))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    delivered = captures[0].invitation_ids() + captures[1].invitation_ids()
    assert sorted(delivered) == ids  # every one, none twice
    assert sum(r.sent for r in results) == 12


class Crash(BaseException):
    """Stands for the process dying mid-send (not an ordinary error)."""


def test_a_crash_mid_send_never_sends_twice(crm: CRM) -> None:
    ids = due_invitations(crm, 3)
    delivered: list[int] = []

    class Dying:
        name = "dying"

        @hookimpl
        def recrm_deliver_message(self, message: Message) -> DeliveryResult:
            invitation = int(message.headers["X-Recrm-Invitation"])
            if invitation == ids[1]:
                raise Crash()
            delivered.append(invitation)
            return DeliveryResult(transport="dying")

    crm.pm.register(Dying(), name="dying")
    try:
        with pytest.raises(Crash):
            send_due(crm)
    finally:
        crm.pm.unregister(name="dying")
    assert delivered == [ids[0]]
    # the claimed one stays claimed: its outcome is unknown, so it is not re-sent
    assert statuses(crm) == {ids[0]: "sent", ids[1]: "sending", ids[2]: "pending"}
    capture = Capture()
    crm.pm.register(capture, name="capture")
    try:
        assert send_due(crm).sent == 1
    finally:
        crm.pm.unregister(name="capture")
    assert capture.invitation_ids() == [ids[2]]


def test_transport_failures_are_recorded(crm: CRM, register_plugin: Callable[..., str]) -> None:
    ids = due_invitations(crm, 3)

    class Flaky:
        @hookimpl
        def recrm_deliver_message(self, message: Message) -> DeliveryResult:
            invitation = int(message.headers["X-Recrm-Invitation"])
            if invitation == ids[0]:
                raise ConnectionError("gateway down")
            if invitation == ids[1]:
                return DeliveryResult(transport="flaky", ok=False, detail="number blocked")
            return DeliveryResult(transport="flaky")

    register_plugin(Flaky(), name="flaky")
    result = send_due(crm)
    assert (result.sent, result.failed) == (1, 2)
    found = {i.id: (i.status, i.detail) for i in invitations(crm)}
    assert found == {ids[0]: ("failed", "plugin 'flaky' failed in recrm_deliver_message: "
                                        "ConnectionError: gateway down"),
                     ids[1]: ("failed", "number blocked"),
                     ids[2]: ("sent", None)}
    assert send_due(crm).sent == 0  # failures are not retried behind anyone's back


@pytest.mark.recrm_settings(survey={"channel": "email"})
def test_no_address_on_the_channel(crm: CRM, register_plugin: Callable[..., str]) -> None:
    capture = Capture()
    register_plugin(capture)
    with_mail = customer(crm, "13812345678", email="Wang@Example.com")
    without = customer(crm, "13912345678")
    invite(crm, with_mail, "csat", due_at=ago(1))
    invite(crm, without, "csat", due_at=ago(1))
    result = send_due(crm)
    assert (result.sent, result.failed) == (1, 1)
    assert [m.to for m in capture.messages] == ["wang@example.com"]
    [failed] = invitations(crm, status="failed")
    assert failed.customer_id == without and failed.detail == "customer has no email address"


def test_consent_withdrawn_after_inviting_cancels(crm: CRM,
                                                  register_plugin: Callable[..., str]) -> None:
    capture = Capture()
    register_plugin(capture)
    a, b = due_invitations(crm, 2)
    [inv_a] = [i for i in invitations(crm) if i.id == a]
    crm.consent.withdraw(inv_a.customer_id, "sms", "surveys")
    result = send_due(crm)
    assert (result.sent, result.cancelled) == (1, 1)
    assert capture.invitation_ids() == [b]
    assert statuses(crm)[a] == "cancelled"


def test_expired_invitations_are_not_sent(crm: CRM, register_plugin: Callable[..., str]) -> None:
    capture = Capture()
    register_plugin(capture)
    cid = customer(crm, "13812345678")
    old = invite(crm, cid, "csat", due_at=ago(31))  # window of 30 days closed
    fresh = invite(crm, cid, "csat", due_at=ago(29))
    assert [i.id for i in due(crm)] == [fresh.id]
    result = send_due(crm)
    assert (result.sent, result.expired) == (1, 1)
    assert statuses(crm) == {old.id: "expired", fresh.id: "sent"}
    assert capture.invitation_ids() == [fresh.id]
    assert expire(crm) == 0


def test_claims_are_committed_before_delivery(crm: CRM) -> None:
    # What the transport sees when it runs: its invitation is already recorded as
    # being sent, in a committed transaction another connection can read.
    ids = due_invitations(crm, 1)
    seen: list[str] = []

    class Peek:
        name = "peek"

        @hookimpl
        def recrm_deliver_message(self, message: Message) -> DeliveryResult:
            with crm.unit_of_work() as uow:
                seen.append(uow.session.scalar(
                    select(SurveyInvitation.status).where(SurveyInvitation.id == ids[0])) or "")
            return DeliveryResult(transport="peek")

    crm.pm.register(Peek(), name="peek")
    try:
        send_due(crm, now=dt.datetime.now(dt.UTC))
    finally:
        crm.pm.unregister(name="peek")
    assert seen == ["sending"]
    assert statuses(crm) == {ids[0]: "sent"}
