"""``recrm report ...``: list the registered reports, run any of them, the dashboard.

Reports are registered at run time (``recrm_reports``), so ``recrm report NAME`` is
resolved when it runs: :class:`ReportGroup` builds the command of a report from its
:class:`~recrm_core.reports.ReportSpec` — the standard options it takes (``--project``,
``--from``, ``--to``, ``--by``), its own options as ``--name value``, and the outputs.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from ..errors import InvalidInput, NotFound
from ..listexport import OUT_FIELD
from ..reports.model import BY_CHOICES
from ..reports.registry import RESERVED_OPTIONS
from . import cli, current_actor, get_crm
from .customers import bad_value, json_option
from .output import cell, console, echo, emit_json, info

if TYPE_CHECKING:
    from ..reports import Report, ReportRequest, ReportSpec

day_type = click.DateTime(formats=["%Y-%m-%d"])
#: the output options of every report command: option -> (format, what it writes)
OUTPUTS = {"csv": "the table as CSV (UTF-8, Excel opens it)",
           "xlsx": "the table as an Excel workbook (typed cells)",
           "svg": "the chart as SVG (text stays text)",
           "png": "the chart as PNG (needs a CJK font: [reports] font, or Debian's "
                  "fonts-wqy-microhei)"}
#: ``--by``: what its rows are split by (the choices are hidden behind ``PERIOD``)
BY_HELP = "The period each row covers: " + ", ".join(BY_CHOICES) + "."
#: the fixed sub-commands; every other name is a report's
FIXED = ("list", "dashboard")


class ReportGroup(click.Group):
    """``list`` and ``dashboard``, and a command for every registered report."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        try:
            spec = get_crm(ctx).reports.get(cmd_name)
        except NotFound as exc:
            raise click.UsageError(str(exc), ctx) from None
        return report_command(spec)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_commands(ctx, formatter)
        with formatter.section("Reports"):
            formatter.write_text("recrm report list shows them; recrm report NAME --help "
                                 "shows a report's options.")


def _standard_params(standard: tuple[str, ...]) -> list[click.Parameter]:
    params: list[click.Parameter] = []
    if "project" in standard:
        params.append(click.Option(["--project"], metavar="CODE", help="Only this project."))
    if "from" in standard:
        params.append(click.Option(["--from", "start"], type=day_type, metavar="DAY",
                                   help="From this day (YYYY-MM-DD, included)."))
    if "to" in standard:
        params.append(click.Option(["--to", "end"], type=day_type, metavar="DAY",
                                   help="To this day (YYYY-MM-DD, included)."))
    if "by" in standard:
        params.append(click.Option(["--by"], type=click.Choice(BY_CHOICES), default="all",
                                   show_default=True, metavar="PERIOD", help=BY_HELP))
    return params


def _request(actor: Any, params: dict[str, Any],
             options: dict[str, str] | None = None) -> ReportRequest:
    from ..reports import ReportRequest

    start, end = params.get("start"), params.get("end")
    return ReportRequest(actor=actor, project=params.get("project"),
                         start=start.date() if start else None,
                         end=end.date() if end else None,
                         by=params.get("by") or "all", options=options or {})


def report_command(spec: ReportSpec) -> click.Command:
    """The command running ``spec``."""
    params = _standard_params(spec.standard)
    own = {o.name: f"--{o.name.replace('_', '-')}" for o in spec.options}
    for option in spec.options:
        kind = click.Choice(option.choices) if option.kind == "choice" else None
        default = f" (default: {option.default})" if option.default is not None else ""
        # a choice's values in its help, not in a [a|b|c] metavar that pushes the
        # option list's help column past 80
        values = f": {', '.join(option.choices)}" if kind else ""
        params.append(click.Option([own[option.name], f"own_{option.name}"], type=kind,
                                   metavar=(option.name if kind else option.kind).upper(),
                                   help=f"{option.help}{values}{default}"))
    params.append(click.Option(["--option", "raw_options"], multiple=True, metavar="K=V",
                               help="An option of the report, as NAME=VALUE (repeatable)."))
    params.append(click.Option(["--json", "as_json"], is_flag=True,
                               help="Print the report as one line of JSON."))
    for name, help_text in OUTPUTS.items():
        params.append(click.Option([f"--{name}", name], metavar="FILE",
                                   type=click.Path(dir_okay=False), help=f"Write {help_text}."))

    def run(**given: Any) -> None:
        options = {name[4:]: str(value) for name, value in given.items()
                   if name.startswith("own_") and value is not None}
        hints = dict(own)
        for raw in given["raw_options"]:
            key, sep, value = raw.partition("=")
            name = key.strip().replace("-", "_")
            if not sep or not name:
                raise click.BadParameter(f"{raw!r} is not NAME=VALUE", param_hint="--option")
            if name in RESERVED_OPTIONS:
                # a standard option or an output has its own flag; --option is for the
                # report's own ones
                raise click.BadParameter(f"{name!r} is not an option of the report's own: "
                                         f"give it as --{name}", param_hint="--option")
            options[name] = value
            hints.setdefault(name, "--option")
        crm = get_crm()
        try:
            report = crm.reports.run(spec.name, _request(current_actor(), given, options))
        except InvalidInput as exc:
            raise bad_value(exc, hints) from None
        files = {name: given[name] for name in OUTPUTS if given.get(name)}
        if given["as_json"]:
            emit_json(report)
        elif not files:
            show_report(report)
        for name, path in files.items():
            write_output(crm, report, name, path)

    return click.Command(spec.name, params=params, callback=run,
                         help=f"{spec.title}: {spec.description}.",
                         short_help=spec.title)


def write_output(crm: Any, report: Report, output: str, path: str) -> None:
    """One output file of ``report``; a path that cannot be written is a usage error
    naming its option."""
    from ..reports.files import write_chart, write_csv, write_xlsx

    try:
        if output == "csv":
            write_csv(report, path)
        elif output == "xlsx":
            write_xlsx(report, path)
        else:
            write_chart(report, path, "png" if output == "png" else "svg",
                        crm.config.reports.font)
    except InvalidInput as exc:
        raise bad_value(exc, {OUT_FIELD: f"--{output}"}) from None
    info(f"wrote {path}")


def show_report(report: Report) -> None:
    """The report as a rich table (numbers on the right), its notes under it."""
    from rich.table import Table

    from ..reports.cells import NUMERIC, show

    table = Table(title=cell(report.title), title_justify="left", title_style="bold")
    for column in report.columns:
        table.add_column(cell(column.title),
                         justify="right" if column.kind in NUMERIC else "left")
    for row in report.rows:
        table.add_row(*(cell(show(row.get(c.key), c.kind)) for c in report.columns))
    console().print(table)
    for note in report.notes:
        echo(note)


@cli.group(cls=ReportGroup)
def report() -> None:
    """Management reports: list, run one (table, JSON, CSV, XLSX, SVG, PNG), dashboard."""


@report.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """The reports you may run (as `--as` says): the core's, then each enabled
    plugin's."""
    specs = get_crm().reports.available(current_actor())
    if as_json:
        from ..reports import ReportInfo

        emit_json([ReportInfo.of(spec) for spec in specs])
        return
    from rich.table import Table

    table = Table()
    for title in ("name", "title", "description", "plugin"):
        table.add_column(title)
    for spec in specs:
        table.add_row(cell(spec.name), cell(spec.title), cell(spec.description),
                      cell(spec.plugin or "core"))
    console().print(table)


@report.command("dashboard")
@click.option("--html", "path", required=True, metavar="FILE",
              type=click.Path(dir_okay=False), help="Where to write the page.")
@click.option("--project", metavar="CODE", help="Only this project.")
@click.option("--from", "start", type=day_type, metavar="DAY",
              help="From this day (YYYY-MM-DD, included).")
@click.option("--to", "end", type=day_type, metavar="DAY",
              help="To this day (YYYY-MM-DD, included).")
@click.option("--by", type=click.Choice(BY_CHOICES), default="all", show_default=True,
              metavar="PERIOD", help=BY_HELP)
def dashboard_cmd(path: str, project: str | None, start: dt.datetime | None,
                  end: dt.datetime | None, by: str) -> None:
    """One self-contained HTML page with every report's chart and table (no network)."""
    from ..reports.dashboard import write_dashboard

    request = _request(current_actor(), {"project": project, "start": start, "end": end,
                                         "by": by})
    try:
        found = write_dashboard(get_crm(), path, request)
    except InvalidInput as exc:
        raise bad_value(exc, {OUT_FIELD: "--html"}) from None
    for section in found:
        if section.error is not None:
            info(f"warning: report {section.spec.name}: {section.error}")
    failed = sum(section.error is not None for section in found)
    info(f"wrote {path}: {len(found) - failed} report(s)"
         + (f", {failed} failed (their sections say why)" if failed else ""))
