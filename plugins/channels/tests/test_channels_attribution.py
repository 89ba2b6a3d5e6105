"""判客 as a pure function: rule by rule, with the edges (no database)."""

from __future__ import annotations

import datetime as dt

from recrm_channels import Event, RuleBook, Rules, RuleVersion, attribute

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)
M = dt.timedelta(minutes=1)
BOOK = RuleBook(Rules())


def reg(ref: int, at: dt.datetime, agency: str = "A", version: int | None = None) -> Event:
    return Event("registration", at, ref, agency, f"{agency.lower()}1", rule_version=version)


def visit(at: dt.datetime, agency: str | None = None) -> Event:
    return Event("visit", at, 100, agency, f"{agency.lower()}1" if agency else None)


def stage(at: dt.datetime, name: str = "subscriber") -> Event:
    return Event("stage", at, 200, stage=name)


def test_a_visit_one_minute_inside_the_window_confirms() -> None:
    d = attribute([reg(1, T0), visit(T0 + 72 * H - M)], BOOK, T0 + 80 * H)
    assert (d.state, d.registration, d.agency, d.rule) == ("confirmed", 1, "A", 0)
    assert d.times["protected_until"] == T0 + 72 * H - M + 30 * D


def test_a_visit_at_the_last_instant_of_the_window_confirms() -> None:
    assert attribute([reg(1, T0), visit(T0 + 72 * H)], BOOK).state == "confirmed"


def test_a_visit_one_minute_outside_the_window_expires() -> None:
    d = attribute([reg(1, T0), visit(T0 + 72 * H + M)], BOOK)
    assert d.state == "expired"
    assert d.ended_at == T0 + 72 * H
    assert "no visit within 72 hours" in d.explanation


def test_pending_until_the_window_ends() -> None:
    assert attribute([reg(1, T0)], BOOK, T0 + 72 * H).state == "pending"
    assert attribute([reg(1, T0)], BOOK, T0 + 72 * H + M).state == "expired"


def test_the_rules_in_force_at_registration_apply_after_a_change() -> None:
    strict = RuleVersion(1, T0 + H, Rules(registration_valid_hours=1))
    book = RuleBook(Rules(), (strict,))
    before = attribute([reg(1, T0, version=0), visit(T0 + 5 * H)], book)
    assert (before.state, before.rule) == ("confirmed", 0)
    after = attribute([reg(2, T0 + 2 * H, version=1), visit(T0 + 5 * H)], book)
    assert (after.state, after.rule) == ("expired", 1)
    # without a recorded version: the one in force at the registration's time
    assert book.in_force(T0 + H).version == 1 and book.in_force(T0 + H - M).version == 0


def test_two_registrations_a_millisecond_apart_the_first_wins() -> None:
    ms = dt.timedelta(milliseconds=1)
    d = attribute([reg(2, T0 + ms, "B"), reg(1, T0, "A"), visit(T0 + H)], BOOK)
    assert (d.registration, d.agency, d.state) == (1, "A", "confirmed")
    second = d.of(2)
    assert second is not None and second.state == "rejected"
    assert "already registered by another agency until" in second.explanation
    assert "b1" not in second.explanation and "a1" not in second.explanation


def test_a_subscription_inside_protection_converts() -> None:
    d = attribute([reg(1, T0), visit(T0 + H), stage(T0 + H + 30 * D)], BOOK)
    assert d.state == "converted" and d.times["converted_at"] == T0 + H + 30 * D


def test_protection_runs_out_then_released() -> None:
    d = attribute([reg(1, T0), visit(T0 + H), stage(T0 + H + 30 * D + M)], BOOK)
    assert d.state == "released" and d.ended_at == T0 + H + 30 * D
    assert attribute([reg(1, T0), visit(T0 + H)], BOOK, T0 + 40 * D).state == "released"


def test_a_known_customer_cannot_be_registered() -> None:
    d = attribute([visit(T0 - 89 * D), reg(1, T0)], BOOK)
    assert d.state == "rejected" and "known customer" in d.explanation
    assert attribute([visit(T0 - 91 * D), reg(1, T0)], BOOK).state == "pending"
    earlier = attribute([reg(1, T0 - 10 * D, "B"), reg(2, T0, "A")], BOOK)
    rejected = earlier.of(2)
    assert rejected is not None and "registered by another agency" in rejected.explanation


def test_cooldown_after_the_same_agencys_registration_ended() -> None:
    ended = T0 + 72 * H
    d = attribute([reg(1, T0), reg(2, ended + 29 * D)], BOOK)
    second = d.of(2)
    assert second is not None and second.state == "rejected" and "cooldown" in second.explanation
    assert attribute([reg(1, T0), reg(2, ended + 30 * D)], BOOK).of(2).state == "pending"  # type: ignore[union-attr]


def test_visit_is_king_the_first_accompanied_visit_decides() -> None:
    king = RuleBook(Rules(visit_is_king=True))
    lost = attribute([reg(1, T0, "A"), visit(T0 + H), visit(T0 + 2 * H, "B")], king)
    assert lost.of(1).state == "expired"  # type: ignore[union-attr]
    won = attribute([reg(1, T0, "A"), visit(T0 + H), visit(T0 + 2 * H, "A")], king)
    assert won.state == "confirmed" and won.times["confirmed_at"] == T0 + 2 * H
    nobody = attribute([visit(T0, "B")], king)
    assert (nobody.state, nobody.agency, nobody.registration) == ("confirmed", "B", None)


def test_replay_is_the_same_whatever_the_input_order() -> None:
    events = [reg(1, T0), visit(T0 + H), stage(T0 + 2 * D), reg(2, T0 + D, "B")]
    assert attribute(events, BOOK, T0 + 3 * D) == attribute(events[::-1], BOOK, T0 + 3 * D)
