"""``recrm newsletter ...``: segments, lists, campaigns, the magazine, suppressions,
bounces and the sender (``run``).

Conventions of the core's CLI: ``--json`` prints one compact JSON line on stdout; human
messages go to stderr; a refused operation exits 1 with one line, a bad value 2.
Every command acts as ``recrm --as ROLE[:STAFF_ID]``.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

import click

from recrm_core import CRM, InvalidInput, Refused
from recrm_core.cli import (
    current_actor,
    echo,
    emit_json,
    info,
    local_moment,
    local_time,
    pass_crm,
    show_rejections,
    table,
)
from recrm_core.cli.customers import bad_value, load_segment_argument
from recrm_core.regularfile import open_regular
from recrm_core.terminal import printable

from .content import sms_length
from .models import SendReport
from .outbox import Sender
from .service import Newsletter

#: unreadable bounce reports `bounces` prints; --json holds them all
SHOWN_UNREADABLE = 20

json_option = click.option("--json", "as_json", is_flag=True, help="Print one line of JSON.")
channel_option = click.option("--channel", type=click.Choice(["email", "sms"]), required=True,
                              help="Send by email or by SMS.")
segment_option = click.option("--segment", metavar="NAME",
                              help="Send to this saved segment (or give --list).")
list_option = click.option("--list", "list_name", metavar="NAME",
                           help="Send to this static list (or give --segment).")
subject_option = click.option("--subject", metavar="TEMPLATE",
                              help="The email subject, a template with merge fields.")
html_option = click.option("--html", "html_file", type=click.Path(dir_okay=False),
                           metavar="FILE", help="The HTML body template (UTF-8 file).")
text_option = click.option("--text", "text_file", type=click.Path(dir_okay=False),
                           metavar="FILE",
                           help="The text body template (UTF-8 file): the SMS text, or the "
                                "email's plain-text part.")


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A bad value is a usage error (exit 2) naming its option, as in the core's CLI;
    a template's problem (a syntax error, an unknown field, too much output or work)
    names the template."""
    try:
        return fn(*args, **kwargs)
    except InvalidInput as exc:
        if exc.field == "template":
            raise click.BadParameter(f"the template: {exc.reason}") from None
        raise bad_value(exc) from None


def _read(path: str | None, option: str) -> str | None:
    """A template file's text; a FIFO or a device named FILE is refused (the core's
    regular-file rule) instead of blocking or reading without end."""
    if path is None:
        return None
    with open_regular(path, lambda why: click.BadParameter(why, param_hint=option)) as fh:
        data = fh.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.BadParameter(f"cannot read {path!r}: not UTF-8 text",
                                 param_hint=option) from None


def _time(value: str | None, crm: CRM, option: str) -> dt.datetime | None:
    return local_moment(value, crm.config.zone, option)


def _news(crm: CRM) -> Newsletter:
    return Newsletter(crm)


def _show_report(crm: CRM, report: SendReport, as_json: bool) -> None:
    if as_json:
        emit_json(report)
        return
    s = report.send
    skipped = ", ".join(f"{k} {v}" for k, v in report.skipped.items()) or "none"
    echo(f"{s.name} ({s.kind}, {s.channel}, {s.purpose}): {s.state}"
         + (f" — {s.note}" if s.note else ""))
    echo(f"  audience {report.audience}, sent {report.sent}, failed {report.failed}, "
         f"pending {report.pending}, bounced {report.bounced}, "
         f"unsubscribed {report.unsubscribed}")
    echo(f"  skipped: {skipped}")
    if s.finished_at:
        echo(f"  finished {local_time(s.finished_at, crm.config.zone)}")


@click.group("newsletter")
def newsletter_group() -> None:
    """Campaigns and the owners' magazine (一份报) to consented customers."""


# -- segments ------------------------------------------------------------------------------


@newsletter_group.group("segment")
def segment_group() -> None:
    """Saved segments: a name for a JSON segment definition."""


@segment_group.command("save")
@click.argument("name")
@click.argument("definition", metavar="JSON_OR_FILE")
@pass_crm
def segment_save(crm: CRM, name: str, definition: str) -> None:
    """Save (or replace) a segment definition under NAME."""
    _call(_news(crm).save_segment, name, load_segment_argument(definition),
          actor=current_actor())
    info(f"segment {name} saved")


@segment_group.command("list")
@json_option
@pass_crm
def segment_list(crm: CRM, as_json: bool) -> None:
    """The saved segments."""
    found = _news(crm).segments()
    if as_json:
        emit_json(found)
        return
    import json

    table(None, ["name", "definition"],
          [(k, json.dumps(v, ensure_ascii=False)) for k, v in found.items()])


@segment_group.command("count")
@click.argument("name")
@json_option
@pass_crm
def segment_count(crm: CRM, name: str, as_json: bool) -> None:
    """How many customers the saved segment matches now (before consent)."""
    n = _call(_news(crm).count_segment, name, actor=current_actor())
    emit_json({"segment": name, "count": n}) if as_json else echo(str(n))


# -- lists ----------------------------------------------------------------------------------


@newsletter_group.group("list")
def list_group() -> None:
    """Static lists imported from CSV or XLSX (by mobile or ID card)."""


@list_group.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--errors", "errors_path", metavar="OUT", type=click.Path(dir_okay=False),
              help="Write rejected rows (row,field,reason[,sheet_row]; UTF-8 with BOM) "
                   "to OUT.")
@click.option("--sheet", metavar="NAME",
              help="The workbook's sheet to read (default: the first visible one).")
@click.option("--encoding", metavar="E",
              help="CSV encoding (default: BOM => UTF-8, else UTF-8 or GB18030 by content).")
@json_option
@pass_crm
def list_import(crm: CRM, name: str, file: str, errors_path: str | None,
                sheet: str | None, encoding: str | None, as_json: bool) -> None:
    """Add the customers FILE names to list NAME (every row is counted: added, naming
    nobody, rejected with its number and reason for an invalid mobile or ID card,
    already on the list, or repeated in the file)."""
    try:
        counts = _news(crm).import_list(name, file, actor=current_actor(),
                                        errors_path=errors_path, encoding=encoding,
                                        sheet=sheet)
    except InvalidInput as exc:
        raise bad_value(exc, {"file": "'FILE'", "list name": "'NAME'"}) from None
    if as_json:
        emit_json(counts)
        return
    info(f"list {name}: {counts['added']} added from {counts['rows']} row(s); "
         f"{counts['unknown']} named nobody, {counts['rejected']} rejected, "
         f"{counts['already']} already on the list, {counts['repeated']} repeated in the"
         " file"
         + ("; ignored column(s): " + ", ".join(counts["ignored_columns"])
            if counts["ignored_columns"] else ""))
    show_rejections(counts["rejections"], counts["rejected"], errors_path)


@list_group.command("show")
@click.argument("name")
@json_option
@pass_crm
def list_show(crm: CRM, name: str, as_json: bool) -> None:
    """How many customers are on list NAME."""
    n = _news(crm).list_size(name)
    emit_json({"list": name, "members": n}) if as_json else echo(f"{name}: {n} member(s)")


# -- campaigns ------------------------------------------------------------------------------


@newsletter_group.group("campaign")
def campaign_group() -> None:
    """One-off campaigns: create, preview, test, schedule, send, pause, resume, cancel."""


@campaign_group.command("create")
@click.argument("name")
@channel_option
@segment_option
@list_option
@click.option("--purpose", default="marketing", show_default=True,
              help="The consent purpose it is sent under (checked at send time).")
@subject_option
@html_option
@text_option
@json_option
@pass_crm
def campaign_create(crm: CRM, name: str, channel: str, segment: str | None,
                    list_name: str | None, purpose: str, subject: str | None,
                    html_file: str | None, text_file: str | None, as_json: bool) -> None:
    """Create a draft campaign to a saved segment or a list."""
    send = _call(_news(crm).create_campaign, name, channel=channel, segment=segment,
                 list_name=list_name, purpose=purpose, subject=subject,
                 html=_read(html_file, "--html"), text=_read(text_file, "--text"),
                 actor=current_actor())
    emit_json(send) if as_json else info(f"campaign {send.name} created (draft)")


@campaign_group.command("preview")
@click.argument("name")
@click.argument("customer_id", type=int)
@json_option
@pass_crm
def campaign_preview(crm: CRM, name: str, customer_id: int, as_json: bool) -> None:
    """The message CUSTOMER_ID would get (nothing is sent)."""
    message = _call(_news(crm).preview, name, customer_id, actor=current_actor())
    if as_json:
        emit_json(message)
        return
    echo(f"To: {message.to}")
    if message.subject is not None:
        echo(f"Subject: {message.subject}")
    for key, value in message.headers.items():
        echo(f"{key}: {value}")
    echo("")
    echo(message.body)
    if message.channel == "sms":
        length = sms_length(message.body)
        echo(f"({length.characters} characters, {length.segments} segment(s), "
             f"{length.encoding})")


@campaign_group.command("test")
@click.argument("name")
@click.argument("address")
@click.option("--customer", "customer_id", type=int, metavar="ID",
              help="Fill the merge fields from this customer (default: the fallbacks).")
@pass_crm
def campaign_test(crm: CRM, name: str, address: str, customer_id: int | None) -> None:
    """Send the message to ADDRESS only (recorded nowhere)."""
    result = _call(_news(crm).test_send, name, address, customer_id, actor=current_actor())
    if not result.ok:
        raise click.ClickException(f"the {result.transport} transport refused it: "
                                   f"{result.detail}")
    info(f"test message sent through {result.transport}")


@campaign_group.command("schedule")
@click.argument("name")
@click.option("--at", "at", metavar="DATETIME",
              help="When to start, YYYY-MM-DD[THH:MM] local time (default: now).")
@pass_crm
def campaign_schedule(crm: CRM, name: str, at: str | None) -> None:
    """Schedule a draft; `recrm newsletter run` starts it when due."""
    send = _call(_news(crm).schedule, name, _time(at, crm, "--at"), actor=current_actor())
    info(f"{send.name} scheduled for {local_time(send.scheduled_at, crm.config.zone)}")


@campaign_group.command("send")
@click.argument("name")
@json_option
@pass_crm
def campaign_send(crm: CRM, name: str, as_json: bool) -> None:
    """Schedule NAME now (if a draft) and send it; prints its report."""
    news = _news(crm)
    actor = current_actor()
    # the name it is stored under: the sender selects by it (ｓｐｒｉｎｇ is spring)
    send = _call(news.get, name)
    name, state = send.name, send.state
    if state in ("sent", "cancelled"):
        raise Refused(f"{name} is {state}: it cannot be sent again")
    if state == "paused":
        raise Refused(f"{name} is paused: resume it first (campaign resume)")
    if state == "draft":
        _call(news.schedule, name, actor=actor)
    _run(crm, name, None, as_json=False, quiet=as_json)
    _show_report(crm, news.report(name), as_json)


def _state_command(verb: str) -> click.Command:
    @click.argument("name")
    @pass_crm
    def command(crm: CRM, name: str) -> None:
        send = _call(getattr(_news(crm), verb), name, actor=current_actor())
        info(f"{send.name}: {send.state}")

    command.__doc__ = f"{verb.capitalize()} a send."
    return click.command(verb)(command)


for _verb in ("pause", "resume", "cancel"):
    campaign_group.add_command(_state_command(_verb))


@campaign_group.command("status")
@click.argument("name")
@json_option
@pass_crm
def campaign_status(crm: CRM, name: str, as_json: bool) -> None:
    """A send's report: audience, skipped by reason, sent, failed, bounced, unsubscribed."""
    _show_report(crm, _news(crm).report(name), as_json)


# -- the magazine ---------------------------------------------------------------------------


@newsletter_group.group("magazine")
def magazine_group() -> None:
    """Publications with numbered issues (the owners' magazine)."""


@magazine_group.command("create")
@click.argument("code")
@click.option("--title", required=True,
              help="The publication's title (at most 200 characters).")
@channel_option
@pass_crm
def magazine_create(crm: CRM, code: str, title: str, channel: str) -> None:
    """Create publication CODE."""
    _call(_news(crm).create_publication, code, title, channel, actor=current_actor())
    info(f"publication {code} created")


@magazine_group.command("issue")
@click.argument("code")
@click.option("--number", type=int, required=True,
              help="The issue's number, 1 to 999999 (the issue is named CODE#NUMBER).")
@segment_option
@list_option
@subject_option
@html_option
@text_option
@json_option
@pass_crm
def magazine_issue(crm: CRM, code: str, number: int, segment: str | None,
                   list_name: str | None, subject: str | None, html_file: str | None,
                   text_file: str | None, as_json: bool) -> None:
    """Create issue NUMBER of CODE as a draft (send it as `campaign send CODE#N`)."""
    send = _call(_news(crm).create_issue, code, number, segment=segment, list_name=list_name,
                 subject=subject, html=_read(html_file, "--html"),
                 text=_read(text_file, "--text"), actor=current_actor())
    emit_json(send) if as_json else info(f"issue {send.name} created (draft)")


@magazine_group.command("archive")
@click.argument("code")
@json_option
@pass_crm
def magazine_archive(crm: CRM, code: str, as_json: bool) -> None:
    """Every issue of CODE with its figures."""
    reports = _news(crm).archive(code)
    if as_json:
        emit_json(reports)
        return
    table(None, ["issue", "state", "subject", "audience", "sent", "finished"],
          [(r.send.issue_number, r.send.state, r.send.subject, r.audience, r.sent,
            local_time(r.send.finished_at, crm.config.zone) if r.send.finished_at else "")
           for r in reports])


# -- suppressions and bounces ---------------------------------------------------------------


@newsletter_group.group("suppress")
def suppress_group() -> None:
    """Addresses nothing is sent to (kept as keyed hashes)."""


@suppress_group.command("add")
@click.argument("channel", type=click.Choice(["email", "sms"]))
@click.argument("address")
@pass_crm
def suppress_add(crm: CRM, channel: str, address: str) -> None:
    """Suppress ADDRESS on CHANNEL (manual)."""
    added = _call(_news(crm).suppress, channel, address, actor=current_actor())
    info("suppressed" if added else "already suppressed")


@suppress_group.command("list")
@click.option("--channel", type=click.Choice(["email", "sms"]),
              help="Only this channel's suppressions (default: both).")
@json_option
@pass_crm
def suppress_list(crm: CRM, channel: str | None, as_json: bool) -> None:
    """The suppressions (hashes, reasons, times)."""
    found = _news(crm).suppressions(channel)
    if as_json:
        emit_json(found)
        return
    table(None, ["channel", "hash", "reason", "at"],
          [(s.channel, s.address_hash, s.reason, local_time(s.at, crm.config.zone))
           for s in found])


@newsletter_group.group("bounce")
def bounce_group() -> None:
    """Bounce and complaint reports."""


@bounce_group.command("ingest")
@click.argument("path", type=click.Path(exists=True))
@json_option
@pass_crm
def bounce_ingest(crm: CRM, path: str, as_json: bool) -> None:
    """Read RFC 3464 reports (mbox or a directory of .eml) or JSON lines."""
    from .inbound import ingest

    try:
        result = ingest(crm, path)
    except InvalidInput as exc:
        raise bad_value(exc, {"path": "'PATH'"}) from None
    if as_json:
        emit_json(result)
    else:
        info(f"{result.reports} report(s), {result.suppressed} newly suppressed, "
             f"{result.unreadable} unreadable, {result.already_read} already read")
        for bad in result.unreadable_reports[:SHOWN_UNREADABLE]:
            info(f"{bad.where}: {bad.reason}")
        if result.unreadable > SHOWN_UNREADABLE:
            info(f"… and {result.unreadable - SHOWN_UNREADABLE} more (all in --json)")


# -- the sender -----------------------------------------------------------------------------


def _on_terminal() -> bool:
    return sys.stderr.isatty()


def _run(crm: CRM, only: str | None, now: dt.datetime | None, *, as_json: bool,
         quiet: bool = False) -> None:
    progress = None
    bar: Any = None
    if not quiet and not as_json and _on_terminal():
        # A bar on a terminal only (rich, imported here: cron and pipes never pay for it).
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                       console=Console(stderr=True), transient=True)
        tasks: dict[str, Any] = {}

        def progress(name: str, done: int, skipped: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=None)
            shown = escape(printable(name))
            bar.update(tasks[name],
                       description=f"{shown}: {done} sent or failed, {skipped} skipped")

        bar.start()
    try:
        result = Sender(crm, actor=current_actor(), progress=progress).run(now=now, only=only)
    finally:
        if bar is not None:
            bar.stop()
    if as_json:
        emit_json(result)
    elif not quiet:
        info(f"started {len(result.started)}, sent {result.sent}, failed {result.failed}, "
             f"skipped {result.skipped}"
             + "".join(f"; waiting: {w}" for w in result.waiting))


@newsletter_group.command("run")
@click.option("--loop", is_flag=True, help="Keep running (Ctrl-C stops).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=60, show_default=True,
              help="Seconds between runs with --loop.")
@json_option
@pass_crm
def run(crm: CRM, loop: bool, interval: float, as_json: bool) -> None:
    """Start the sends that are due and continue those sending (once, for cron)."""
    import time

    while True:
        _run(crm, None, None, as_json=as_json)
        if not loop:
            return
        time.sleep(interval)
