"""``recrm survey define|list|trigger|due|send|answer|scores|drivers``.

Every command acts as ``recrm --as ROLE[:STAFF_ID]`` (``current_actor``) and passes
that actor to the service, which applies who sees what (see ``service``): partners
are refused invitations and answers, analysts read no free text or link tokens,
partners and analysts change nothing, and only an admin sends.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from recrm_core import CRM, Actor, InvalidInput
from recrm_core.cli import current_actor, emit_json, info, local_time, pass_crm, table
from recrm_core.cli.customers import bad_value
from recrm_core.regularfile import open_regular
from recrm_core.tomlfile import read_toml

from . import service
from .scores import PERIODS
from .scores import drivers as score_drivers
from .scores import scores as score_table
from .settings import NAME

_JSON = click.option("--json", "as_json", is_flag=True, help="Print one line of JSON.")
_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _actor() -> Actor:
    """Who runs the command: ``--as ROLE[:STAFF_ID]`` (or ``RECRM_AS``)."""
    return current_actor()


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


def _text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse undecodable command-line bytes (lone surrogates) before they reach SQL."""
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise click.BadParameter("not valid UTF-8 text") from None
    return value


@click.group(NAME)
def survey_group() -> None:
    """Surveys: NPS/CSAT, check-ins after handover, L3 loyalty, closing the loop."""


@survey_group.command("define")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_JSON
@pass_crm
def define_command(crm: CRM, file: Path, as_json: bool) -> None:
    """Store the survey defined in FILE (TOML, or JSON when it ends in .json)."""
    data: Any
    def refuse(why: str) -> click.BadParameter:
        return click.BadParameter(why, param_hint="FILE")

    if file.suffix.lower() != ".json":
        data = read_toml(file, refuse)
    else:
        try:
            # The TOML reader's file rule: a FIFO named FILE must not block.
            with open_regular(str(file), refuse) as fh:
                data = json.loads(fh.read().decode("utf-8-sig"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise click.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from None
        except RecursionError:  # the parser recurses per level of nesting
            raise click.BadParameter(f"cannot read {file}: nested too deeply",
                                     param_hint="FILE") from None
    # A file holding nothing (empty, only comments, {}) names no survey: the command
    # was given the wrong file (exit 2), not a definition the rules refuse (exit 1).
    if not isinstance(data, dict) or not data:
        raise click.BadParameter(f"{file} does not hold one survey definition"
                                 + ("" if data else " (it holds nothing)"),
                                 param_hint="FILE")
    definition = service.define_survey(crm, data, actor=_actor())
    if as_json:
        emit_json({"key": definition.key, "title": definition.title,
                   "questions": len(definition.questions)})
        return
    info(f"survey {definition.key} defined ({len(definition.questions)} questions)")


@survey_group.command("list")
@_JSON
@pass_crm
def list_command(crm: CRM, as_json: bool) -> None:
    """List the surveys: built-in, from recrm.toml and defined in the database."""
    surveys = service.list_surveys(crm, actor=_actor())
    if as_json:
        emit_json(surveys)
        return
    table("surveys", ["key", "title", "source", "questions", "roles", "invitations", "answers"],
          [(s.key, s.title, s.source, s.questions, ", ".join(s.roles), s.invitations,
            s.answers) for s in surveys])


@survey_group.command("trigger")
@click.option("--yearly", is_flag=True, help="Invite every owner to the yearly survey.")
@click.option("--year", type=click.IntRange(2000, 2100), help="Year of --yearly (default: now).")
@click.option("--customer", "customer_id", type=int, help="Invite one customer.")
@click.option("--survey", "survey_key", callback=_text,
              help="Survey key (default: the yearly survey).")
@click.option("--project", callback=_text,
              help="Project the invitation is about (with --customer).")
@_JSON
@pass_crm
def trigger_command(crm: CRM, yearly: bool, year: int | None, customer_id: int | None,
                    survey_key: str | None, project: str | None, as_json: bool) -> None:
    """Create invitations: --yearly for every owner (once a year), or --customer ID
    --survey KEY for one customer."""
    if yearly == (customer_id is not None):
        raise click.UsageError("give exactly one of --yearly and --customer")
    if yearly:
        if project is not None:
            raise click.UsageError("--project goes with --customer")
        result = service.trigger_yearly(crm, year=year, survey=survey_key, actor=_actor())
        if as_json:
            emit_json(result.model_dump(exclude={"invitation_ids"}))
            return
        info(f"{result.survey}: invited {result.invited}, already invited {result.already}, "
             f"left out for consent {result.no_consent}")
        return
    if survey_key is None:
        raise click.UsageError("--customer needs --survey")
    if year is not None:
        raise click.UsageError("--year goes with --yearly")
    assert customer_id is not None
    invitation = service.invite(crm, customer_id, survey_key, project=project, actor=_actor())
    if as_json:
        emit_json(invitation)
        return
    info(f"invitation {invitation.id} for customer {invitation.customer_id} "
         f"({invitation.survey}), due {local_time(invitation.due_at, crm.config.zone)}")


def _invitation_rows(crm: CRM, items: list[service.Invitation]) -> list[tuple[Any, ...]]:
    zone = crm.config.zone
    return [(i.id, i.customer_id, i.survey, i.trigger, i.project, i.channel,
             local_time(i.due_at, zone), local_time(i.expires_at, zone)) for i in items]


@survey_group.command("due")
@click.option("--limit", type=click.IntRange(1, service.MAX_LIMIT), metavar="N",
              help="Only the N due first (default: all).")
@_JSON
@pass_crm
def due_command(crm: CRM, limit: int | None, as_json: bool) -> None:
    """List invitations due for sending now."""
    items = service.due(crm, limit=limit, actor=_actor())
    if as_json:
        emit_json(items)
        return
    table("due survey invitations",
          ["id", "customer", "survey", "trigger", "project", "channel", "due", "expires"],
          _invitation_rows(crm, items))


@survey_group.command("send")
@click.option("--limit", type=click.IntRange(1, service.MAX_LIMIT), help="Send at most this many.")
@_JSON
@pass_crm
def send_command(crm: CRM, limit: int | None, as_json: bool) -> None:
    """Send the due invitations through the message transports, each exactly once."""
    result = service.send_due(crm, limit=limit, actor=_actor())
    if as_json:
        emit_json(result.model_dump(exclude={"invitation_ids"}))
        return
    info(f"sent {result.sent}, failed {result.failed}, cancelled {result.cancelled}, "
         f"expired {result.expired}, taken by another sender {result.skipped}")


def _pairs(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        question, sep, value = item.partition("=")
        if not sep or not question.strip():
            raise click.BadParameter(f"{item!r} is not QUESTION=VALUE", param_hint="--answer")
        out[question.strip()] = value.strip()
    return out


@survey_group.command("answer")
@click.argument("invitation", callback=_text)
@click.option("-a", "--answer", "pairs", multiple=True, metavar="QUESTION=VALUE",
              help="One answer; repeat it. Multiple choices are comma-separated.")
@click.option("--answers", "answers_json", metavar="JSON",
              help='All answers as a JSON object, e.g. \'{"nps": 9}\'.')
@_JSON
@pass_crm
def answer_command(crm: CRM, invitation: str, pairs: tuple[str, ...],
                   answers_json: str | None, as_json: bool) -> None:
    """Record the answer to INVITATION (its id or its link token)."""
    values: dict[str, Any] = {}
    if answers_json is not None:
        try:
            parsed = json.loads(answers_json)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--answers") from None
        except RecursionError:
            raise click.BadParameter("not JSON: nested too deeply",
                                     param_hint="--answers") from None
        if not isinstance(parsed, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--answers")
        values.update(parsed)
    values.update(_pairs(pairs))
    if not values:
        raise click.UsageError("give the answers with --answer QUESTION=VALUE or --answers JSON")
    result = service.answer(crm, invitation, values, actor=_actor())
    if as_json:
        emit_json(result)
        return
    loop = f"; opened case {result.case_id}" if result.case_id is not None else ""
    info(f"answer {result.id} recorded for invitation {result.invitation_id}{loop}")


_FILTERS = [
    click.option("--survey", "survey_key", callback=_text, help="Only this survey."),
    click.option("--project", callback=_text, help="Only this project (code)."),
    # --from/--to/--by are the spelling every report command uses (issue 20);
    # --since/--until/--period, the first spelling, stay as aliases.
    click.option("--from", "--since", "since", type=_DATE,
                 help="From this day (YYYY-MM-DD; --since is an alias)."),
    click.option("--to", "--until", "until", type=_DATE,
                 help="Up to and including this day (--until is an alias)."),
]


def _with_filters(f: Any) -> Any:
    for option in reversed(_FILTERS):
        f = option(f)
    return f


def _show(value: float | int | None, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and suffix == "":
        return f"{value:+d}"
    return f"{value}{suffix}"


@survey_group.command("scores")
@_with_filters
@click.option("--by", "--period", "period", type=click.Choice(PERIODS), default="quarter",
              show_default=True, metavar="PERIOD",
              help="The period of each line: " + ", ".join(PERIODS)
              + " (--period is an alias).")
@_JSON
@pass_crm
def scores_command(crm: CRM, survey_key: str | None, project: str | None,
                   since: dt.datetime | None, until: dt.datetime | None, period: str,
                   as_json: bool) -> None:
    """NPS, CSAT and the L3 loyalty index per survey, project and period, with counts."""
    try:
        rows = score_table(crm, survey=survey_key, project=project, period=period,
                           since=_date(since), until=_date(until), actor=_actor())
    except InvalidInput as exc:
        raise bad_value(exc) from None
    if as_json:
        emit_json(rows)
        return
    table("survey scores",
          ["survey", "project", "period", "answers", "NPS", "promoters/passives/detractors",
           "CSAT", "satisfied/rated", "L3", "loyal/respondents"],
          [(r.survey, r.project or "-", r.period, r.answers, _show(r.nps),
            f"{r.promoters}/{r.passives}/{r.detractors}", _show(r.csat, "%"),
            f"{r.satisfied}/{r.csat_answers}", _show(r.l3, "%"),
            f"{r.loyal}/{r.l3_respondents}") for r in rows])


@survey_group.command("drivers")
@_with_filters
@_JSON
@pass_crm
def drivers_command(crm: CRM, survey_key: str | None, project: str | None,
                    since: dt.datetime | None, until: dt.datetime | None,
                    as_json: bool) -> None:
    """Which factors move overall satisfaction: Pearson's r with the number of answers."""
    try:
        rows = score_drivers(crm, survey=survey_key, project=project, since=_date(since),
                             until=_date(until), actor=_actor())
    except InvalidInput as exc:
        raise bad_value(exc) from None
    if as_json:
        emit_json(rows)
        return
    table("drivers of overall satisfaction", ["factor", "r", "answers"],
          [(d.factor, "-" if d.r is None else f"{d.r:.3f}", d.n) for d in rows])


__all__ = ["survey_group"]
