"""判客: who brought the customer, as one pure function over the customer's events.

:func:`attribute` takes every event of one customer (one mobile) at one project —
registrations as they were accepted, visits (with or without an agent), stage moves —
and the project's rule versions, and replays them in time order. It touches no
database and no clock (``now`` is an argument), so a decision can be replayed and
explained at any later time and gives the same answer.

Per registration, in order of registration time (ties: the lower id first):

1. refused when another registration holds the customer at that moment ("already
   registered ... until"), when the same agency's last registration ended less than
   ``reregister_cooldown_days`` before, or when the customer is known at the project
   (a visit, a stage move, or another agency's registration within
   ``known_customer_days``);
2. otherwise ``pending``, under the rule version in force when it was made;
3. ``confirmed`` by the first visit within ``registration_valid_hours`` (the window's
   last instant counts); with ``visit_is_king``, only a visit accompanied by an
   agent counts, and one accompanied by another agency's agent ends it;
   ``expired`` when the window passes without one;
4. ``converted`` by a subscription, contract or handover within
   ``visit_protection_days`` of the confirming visit; ``released`` when protection
   runs out first.

A ``ruling`` (an upheld dispute) is replayed at its time like any other event: the
registration it awards is confirmed (by its first visit, else by the ruling itself),
protected for ``visit_protection_days`` from the later of the two, and converted by a
subscription or contract since it was made; every other registration holding the
customer then ends ``released`` at the ruling. Registrations made after the ruling
are judged against the awarded one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .settings import Rules

#: ``contact``: any other interaction at the project, or the customer's first link to
#: it (they only make the customer known)
EventKind = Literal["registration", "visit", "stage", "contact", "ruling"]
State = Literal["none", "pending", "confirmed", "converted", "expired", "released", "rejected"]
#: the stage moves that convert a confirmed registration
CONVERTING = frozenset({"subscriber", "buyer", "owner"})
ACTIVE = frozenset({"pending", "confirmed", "converted"})


@dataclass(frozen=True)
class Event:
    """One thing that happened to the customer at the project."""

    kind: EventKind
    at: dt.datetime
    #: registration id, interaction id, or 0
    ref: int = 0
    agency: str | None = None
    agent: str | None = None
    #: a stage event's new stage
    stage: str | None = None
    #: a registration's rule version (the one in force when it was made)
    rule_version: int | None = None
    #: a registration refused when it was made (a suspended agency, an agent over the
    #: cap): it stays refused for this reason in every replay
    refused: str | None = None
    #: a ruling's awarded registration (``ref`` is the dispute's id)
    registration: int | None = None


@dataclass(frozen=True)
class RuleVersion:
    version: int
    effective_from: dt.datetime | None
    rules: Rules


@dataclass(frozen=True)
class RuleBook:
    """A project's rule versions; version 0 (the settings' defaults) is in force before
    the first."""

    default: Rules
    versions: tuple[RuleVersion, ...] = ()
    #: the business time zone: an explanation's times are read there, as every other
    #: time a person sees (in UTC, a refusal's "until" was eight hours off the office's)
    zone: dt.tzinfo = dt.UTC

    def in_force(self, at: dt.datetime) -> RuleVersion:
        chosen = RuleVersion(0, None, self.default)
        for v in sorted(self.versions, key=lambda v: (v.effective_from or at, v.version)):
            if v.effective_from is not None and v.effective_from <= at:
                chosen = v
        return chosen

    def get(self, version: int) -> RuleVersion:
        for v in self.versions:
            if v.version == version:
                return v
        return RuleVersion(0, None, self.default)


@dataclass(frozen=True)
class Decision:
    """The state of one registration (or of the customer, for the top-level decision
    of :func:`attribute`), the rule version it was made under and why."""

    state: State
    registration: int | None
    agency: str | None
    rule: int | None
    explanation: str
    times: dict[str, dt.datetime] = field(default_factory=dict)
    #: every registration's own decision, in registration order
    outcomes: tuple[Decision, ...] = ()

    @property
    def ended_at(self) -> dt.datetime | None:
        return self.times.get("ended_at")

    def live_at(self, at: dt.datetime) -> bool:
        """Whether this registration held the customer at ``at``."""
        if self.state == "rejected" or self.times["registered_at"] > at:
            return False
        return self.ended_at is None or at < self.ended_at

    def holds_until(self) -> dt.datetime | None:
        """Until when it holds the customer (None: for good, once converted)."""
        if self.state == "pending":
            return self.times["valid_until"]
        if self.state == "confirmed":
            return self.times["protected_until"]
        return self.ended_at

    def of(self, registration: int) -> Decision | None:
        return next((o for o in self.outcomes if o.registration == registration), None)


def _iso(at: dt.datetime | None, zone: dt.tzinfo) -> str:
    return "for good" if at is None else at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _refusal(reg: Event, rules: Rules, version: int, earlier: Sequence[Decision],
             others: Sequence[Event], zone: dt.tzinfo) -> str | None:
    for o in earlier:
        if o.live_at(reg.at):
            whose = "your agency" if o.agency == reg.agency else "another agency"
            until = o.holds_until()
            return (f"already registered by {whose} until {_iso(until, zone)}" if until else
                    f"already registered by {whose}, which converted the customer")
    cooldown = dt.timedelta(days=rules.reregister_cooldown_days)
    for o in earlier:
        if (o.agency == reg.agency and o.state in ("expired", "released")
                and o.ended_at is not None and o.ended_at <= reg.at < o.ended_at + cooldown):
            return (f"cooldown: this agency's registration ended {_iso(o.ended_at, zone)}; "
                    f"it may register again from {_iso(o.ended_at + cooldown, zone)} "
                    f"(rule v{version})")
    since = reg.at - dt.timedelta(days=rules.known_customer_days)
    for e in others:
        if since <= e.at < reg.at:
            what = {"visit": "a visit", "stage": f"stage {e.stage}"}.get(e.kind, "a contact")
            return (f"known customer of the project: {what} on {_iso(e.at, zone)} "
                    f"(within {rules.known_customer_days} days, rule v{version})")
    # Under visit is king a registration protects no one: another agency's earlier one
    # does not make the customer known (the first accompanied visit decides).
    for o in () if rules.visit_is_king else earlier:
        if o.state != "rejected" and o.agency != reg.agency \
                and since <= o.times["registered_at"] <= reg.at:
            return (f"known customer of the project: registered by another agency on "
                    f"{_iso(o.times['registered_at'], zone)} (within "
                    f"{rules.known_customer_days} days, rule v{version})")
    return None


def _judge(reg: Event, version: RuleVersion, earlier: Sequence[Decision],
           others: Sequence[Event], now: dt.datetime, zone: dt.tzinfo) -> Decision:
    rules, v = version.rules, version.version
    valid_until = reg.at + dt.timedelta(hours=rules.registration_valid_hours)
    times = {"registered_at": reg.at, "valid_until": valid_until}

    def decision(state: State, why: str) -> Decision:
        return Decision(state, reg.ref, reg.agency, v, why, dict(times))

    refusal = reg.refused or _refusal(reg, rules, v, earlier,
                                      [e for e in others if e.at < reg.at], zone)
    if refusal:
        times["ended_at"] = reg.at
        return decision("rejected", refusal)
    visits = [e for e in others if e.kind == "visit" and e.at >= reg.at]
    if rules.visit_is_king:
        visits = [e for e in visits if e.agent is not None]
    visit = visits[0] if visits else None
    if visit is None or visit.at > valid_until:
        if now > valid_until:
            times["ended_at"] = valid_until
            return decision("expired", f"no visit within {rules.registration_valid_hours} hours "
                            f"(window ended {_iso(valid_until, zone)}, rule v{v})")
        return decision("pending", f"registered {_iso(reg.at, zone)}; a visit is due by "
                        f"{_iso(valid_until, zone)} (rule v{v})")
    if rules.visit_is_king and visit.agency != reg.agency:
        times["ended_at"] = visit.at
        return decision("expired", f"visit is king: the first accompanied visit "
                        f"({_iso(visit.at, zone)}) was with another agency's agent "
                        f"(rule v{v})")
    protected_until = visit.at + dt.timedelta(days=rules.visit_protection_days)
    times |= {"confirmed_at": visit.at, "protected_until": protected_until}
    confirmed = (f"confirmed by a visit on {_iso(visit.at, zone)}, within "
                 f"{rules.registration_valid_hours} hours of the registration; protected "
                 f"until {_iso(protected_until, zone)} (rule v{v})")
    stages = [e for e in others if e.kind == "stage" and e.stage in CONVERTING
              and e.at >= visit.at]
    stage = stages[0] if stages else None
    if stage is not None and stage.at <= protected_until:
        times |= {"converted_at": stage.at}
        return decision("converted", f"{confirmed}; converted by stage {stage.stage} on "
                        f"{_iso(stage.at, zone)}")
    if now > protected_until:
        times["ended_at"] = protected_until
        return decision("released", f"{confirmed}; released: no subscription or contract "
                        f"within {rules.visit_protection_days} days")
    return decision("confirmed", confirmed)


def acceptance(outcome: Decision, version: RuleVersion, *, agency: str,
               agency_active: bool, agent_active: int) -> str | None:
    """Why a new registration is refused, or None when it is accepted: the agency is
    suspended, the agent holds ``max_active_per_agent`` pending and confirmed
    registrations already, or 判客 refused it (``outcome``, the new registration's own
    decision from :func:`attribute` at its time). Pure: the service's write path and
    ``simulate`` both decide with it."""
    if not agency_active:
        return f"agency {agency} is suspended"
    cap = version.rules.max_active_per_agent
    if agent_active >= cap:
        return (f"agent over cap: {agent_active} active registrations, at most {cap} "
                f"(rule v{version.version})")
    if outcome.state == "rejected":
        return outcome.explanation
    return None


def _award(ruling: Event, reg: Event, version: RuleVersion, others: Sequence[Event],
           now: dt.datetime, zone: dt.tzinfo) -> Decision:
    """The awarded registration's decision from ``ruling`` on."""
    rules, v = version.rules, version.version
    times = {"registered_at": reg.at, "ruled_at": ruling.at,
             "valid_until": reg.at + dt.timedelta(hours=rules.registration_valid_hours)}
    # The dispute's notes are free text (personal data); explanations never hold them.
    why = (f"dispute #{ruling.ref} upheld on {_iso(ruling.at, zone)} for agency "
           f"{ruling.agency}")
    visit = next((e for e in others if e.kind == "visit" and e.at >= reg.at), None)
    confirmed_at = visit.at if visit is not None else ruling.at
    protected_until = max(confirmed_at, ruling.at) + dt.timedelta(
        days=rules.visit_protection_days)
    times |= {"confirmed_at": confirmed_at, "protected_until": protected_until}
    why += (f"; confirmed by the visit on {_iso(confirmed_at, zone)}" if visit is not None
            else "; confirmed by the ruling")
    why += f", protected until {_iso(protected_until, zone)}"
    stage = next((e for e in others if e.kind == "stage" and e.stage in CONVERTING
                  and reg.at <= e.at <= protected_until), None)
    if stage is not None:
        times["converted_at"] = stage.at
        return Decision("converted", reg.ref, reg.agency, v,
                        f"{why}; converted by stage {stage.stage} on {_iso(stage.at, zone)} "
                        f"(rule v{v})", times)
    if now > protected_until:
        times["ended_at"] = protected_until
        return Decision("released", reg.ref, reg.agency, v,
                        f"{why}; released: no subscription or contract within "
                        f"{rules.visit_protection_days} days (rule v{v})", times)
    return Decision("confirmed", reg.ref, reg.agency, v, f"{why} (rule v{v})", times)


def _overruled(o: Decision, ruling: Event, zone: dt.tzinfo) -> Decision:
    times = {**o.times, "ended_at": ruling.at}
    return Decision("released", o.registration, o.agency, o.rule,
                    f"{o.explanation}; released on {_iso(ruling.at, zone)}: dispute "
                    f"#{ruling.ref} upheld for agency {ruling.agency}", times)


def attribute(events: Iterable[Event], rules: RuleBook,
              now: dt.datetime | None = None) -> Decision:
    """Replay ``events`` (of one customer at one project) under ``rules`` as of ``now``
    (default: the last event). Returns the decision about the customer: the registration
    that holds them (else the latest that was not refused, else the latest refused one),
    with every registration's own decision in ``outcomes``."""
    ordered = sorted(events, key=lambda e: (e.at, e.kind == "ruling",
                                            e.kind != "registration", e.ref))
    if now is None:
        now = ordered[-1].at if ordered else dt.datetime.now(dt.UTC)
    others = [e for e in ordered if e.kind not in ("registration", "ruling")]
    outcomes: list[Decision] = []
    registrations: dict[int, Event] = {}

    def version_of(reg: Event) -> RuleVersion:
        return (rules.get(reg.rule_version) if reg.rule_version is not None
                else rules.in_force(reg.at))

    for e in ordered:
        if e.kind == "registration":
            registrations[e.ref] = e
            outcomes.append(_judge(e, version_of(e), outcomes, others, now, rules.zone))
        elif e.kind == "ruling" and e.registration in registrations:
            reg = registrations[e.registration]
            outcomes = [
                _award(e, reg, version_of(reg), others, now, rules.zone)
                if o.registration == reg.ref
                else _overruled(o, e, rules.zone) if o.live_at(e.at) else o
                for o in outcomes]
    accepted = [o for o in outcomes if o.state != "rejected"]
    holding = [o for o in accepted if o.state in ACTIVE]
    chosen = (holding[-1] if holding else accepted[-1] if accepted
              else outcomes[-1] if outcomes else None)
    if chosen is not None:
        return Decision(chosen.state, chosen.registration, chosen.agency, chosen.rule,
                        chosen.explanation, chosen.times, tuple(outcomes))
    in_force = rules.in_force(now)
    if in_force.rules.visit_is_king:
        first = next((e for e in others if e.kind == "visit" and e.agent is not None), None)
        if first is not None:
            return Decision("confirmed", None, first.agency, in_force.version,
                            f"visit is king: first visit accompanied by an agent of "
                            f"{first.agency} on {_iso(first.at, rules.zone)} "
                            f"(rule v{in_force.version})",
                            {"confirmed_at": first.at})
    return Decision("none", None, None, in_force.version, "no registration at the project")
