"""``recrm demo``: build a demo developer company and show what it holds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click
from rich.panel import Panel
from rich.table import Table

from ..crm import CRM
from ..demo import (
    DEFAULT_CUSTOMERS,
    DEFAULT_SEED,
    DEMO_DB_FILE,
    DEMO_REPORTS,
    PROJECTS,
    DemoSummary,
    demo_request,
    run_demo,
    write_demo_dashboard,
)
from ..errors import Refused
from ..plugins import describe_installed, disabled_by_env
from ..values import STAGES
from . import CliContext, cli
from .output import cell, console, emit_json, info
from .reports import show_report
from .setup import provide_key_file

STAGE_LABELS = {"prospect": "意向 prospect", "visitor": "来访 visitor",
                "subscriber": "认购 subscriber", "buyer": "签约 buyer", "owner": "交房 owner"}
CATEGORY_LABELS = {"repair": "报修 repair", "complaint": "投诉 complaint",
                   "inquiry": "咨询 inquiry"}


def _remove_demo_file(path: Path) -> None:
    # SQLite in WAL mode keeps two companions; a stale -wal would replay old pages.
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _demo_plugins() -> list[str]:
    """Every installed plugin that loads; a broken one is reported and skipped."""
    names: list[str] = []
    for plugin in describe_installed([]):
        if plugin.name in disabled_by_env():
            continue
        if plugin.error:
            info(f"warning: plugin {plugin.name!r} left out of the demo: {plugin.error}")
            continue
        names.append(plugin.name)
    return names


def _build_crm(ctx: click.Context, obj: CliContext) -> tuple[CRM, str]:
    """The demo's CRM and how to point other commands at it (``--db ...``)."""
    if obj.crm_factory is not None:  # tests inject their CRM, with its plugins
        crm = obj.crm()
        return crm, crm.engine.url.render_as_string(hide_password=True)
    if obj.db is not None:
        url = obj.db
    else:
        path = Path.cwd() / DEMO_DB_FILE
        _remove_demo_file(path)
        url = f"sqlite:///{DEMO_DB_FILE}"
    # Settings come only from an explicit --config: a recrm.toml in the working
    # directory describes the user's own CRM, not the demo's.
    crm = CRM(database_url=url, plugins=_demo_plugins(), config_path=obj.config_path,
              create_schema=True, settings=_demo_key_setting(url, obj.config_path))
    ctx.call_on_close(crm.close)
    return crm, url


def _demo_key_setting(url: str, config_path: str | None) -> dict[str, str]:
    """A server database (PostgreSQL) has no file to put the key file beside: without
    --config or RECRM_KEY_FILE the demo keeps it in the working directory, where the
    SQLite demo puts its database and key file."""
    from ..keys import KEY_FILE_ENV, KEY_FILE_NAME, default_key_path

    if config_path is not None or os.environ.get(KEY_FILE_ENV) \
            or default_key_path(None, url) is not None:
        return {}
    return {"key_file": str(Path.cwd() / KEY_FILE_NAME)}


def _key_prefix(crm: CRM) -> str:
    """What the demo's "try next" commands need before ``recrm`` to find its key file
    when it is not in its default place (beside the SQLite file)."""
    from ..keys import default_key_path

    path = crm.key_file
    if path is None or path == default_key_path(crm.config_file, crm.config.database_url) \
            or crm.config_file is not None:
        return ""
    return f"RECRM_KEY_FILE={path} "


@cli.command()
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
              help="Random seed: the same seed builds the same company.")
@click.option("--customers", "customer_count", type=click.IntRange(1, 1_000_000),
              default=DEFAULT_CUSTOMERS, show_default=True, help="How many customers.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one line of JSON.")
@click.pass_context
def demo(ctx: click.Context, seed: int, customer_count: int, as_json: bool) -> None:
    """Build a demo developer company and print what it holds.

    Writes two projects, customers moving through the sales funnel, visits, calls,
    contracts, handovers, consents and service cases, and lets every installed
    plugin add its part, into ./recrm-demo.db (recreated on each run) or into the
    empty database given with `recrm --db URL demo`.
    """
    obj = ctx.find_object(CliContext)
    assert obj is not None
    from ..reports.drawing import ChartWorker

    # Started first, so the worker loads matplotlib while this process seeds (and a
    # forked one holds no connection of the CRM built next).
    charts = ChartWorker()
    ctx.call_on_close(charts.close)
    crm, url = _build_crm(ctx, obj)
    existing = crm.customers.count()
    if existing:
        raise Refused(
            f"the database already holds {existing} customers; the demo needs an empty one "
            f"(run it without --db to use ./{DEMO_DB_FILE})"
        )
    # The database is empty, so a key file created now is the one it records
    # (an existing one at the path is used as it is).
    provide_key_file(crm, anywhere=True)
    started = time.perf_counter()
    info(f"building the demo company (seed {seed}, {customer_count} customers) in {url} ...")
    summary = run_demo(crm, seed=seed, customers=customer_count,
                       progress=lambda step: info(f"  {step}"))
    info(f"done in {time.perf_counter() - started:.1f} s")
    dashboard = write_demo_dashboard(crm, charts)
    charts.close()
    if as_json:
        emit_json(summary)
        info(f"dashboard: {dashboard}")
        return
    render(summary, url, _key_prefix(crm))
    for name in DEMO_REPORTS:
        show_report(crm.reports.run(name, demo_request(crm, name)))
    info(f"dashboard (every report, charts and tables): {dashboard}")


def _cny(amount: int) -> str:
    """Amounts as people in the business say them: 亿 (10^8) and 万 (10^4) yuan."""
    if amount >= 100_000_000:
        return f"{amount / 100_000_000:,.2f}亿"
    return f"{amount / 10_000:,.0f}万"


def _table(title: str, columns: list[str], right_from: int = 1) -> Table:
    table = Table(title=cell(title), title_justify="left", title_style="bold")
    for i, col in enumerate(columns):
        table.add_column(col, justify="right" if i >= right_from else "left")
    return table


def render(summary: DemoSummary, url: str, prefix: str = "") -> None:
    """The summary for a person: funnel, sales, cases, consents, plugins, next steps."""
    out = console()
    known = {p.code: p for p in PROJECTS}
    legend = "\n".join(
        f"  {p.code}  {p.name}" + (f"  {known[p.code].english}" if p.code in known else "")
        for p in summary.projects
    )
    out.print(Panel.fit(
        f"[bold]recrm demo[/bold]: a developer company built from seed {summary.seed}\n"
        f"{summary.customers:,} customers; {summary.at_two_projects} of them are known at "
        f"two projects\nprojects:\n{legend}",
        border_style="cyan",
    ))

    codes = [p.code for p in summary.projects]
    funnel = _table("Sales funnel: customers at each stage now", ["stage", *codes, "company"])
    for stage in STAGES:
        per_project = (str(p.funnel.get(stage, 0)) for p in summary.projects)
        funnel.add_row(STAGE_LABELS[stage], *per_project, str(summary.stages.get(stage, 0)))
    funnel.add_section()
    funnel.add_row("total", *(str(p.customers) for p in summary.projects), str(summary.customers),
                   style="bold")
    funnel.caption = "company: each customer once, at the furthest stage over all projects"
    out.print(funnel)

    sales = _table("Sales", ["project", "contracts", "contract value (CNY)", "handovers"])
    for p in summary.projects:
        sales.add_row(p.code, str(p.contracts), _cny(p.contract_value), str(p.handovers))
    out.print(sales)

    sources = _table("Lead sources: where each project's customers came from", ["source", *codes])
    names = sorted({s for p in summary.projects for s in p.sources},
                   key=lambda s: -sum(p.sources.get(s, 0) for p in summary.projects))
    for name in names:
        sources.add_row(cell(name), *(str(p.sources.get(name, 0)) for p in summary.projects))
    out.print(sources)

    timeline = ", ".join(f"{kind} {n}" for kind, n in summary.interactions.items())
    out.print(f"[bold]Timeline[/bold] (interactions by kind): {timeline}\n")

    cases = summary.cases
    by_status = ", ".join(f"{s} {n}" for s, n in cases.by_status.items() if n)
    table = _table(f"Service cases: {cases.open} open, of which {cases.overdue} overdue",
                   ["category", "priority", "cases", "open", "overdue"], right_from=2)
    for row in cases.breakdown:
        overdue = f"[red]{row.overdue}[/red]" if row.overdue else "0"
        table.add_row(CATEGORY_LABELS.get(row.category, row.category), row.priority,
                      str(row.total), str(row.open), overdue)
    table.caption = f"{cases.total} cases in all: {by_status}"
    out.print(table)
    levels = ", ".join(f"{name} {n}" for name, n in cases.by_level.items())
    intake = ", ".join(f"{name} {n}" for name, n in cases.by_channel.items())
    out.print(f"[bold]Escalation[/bold] (cases by level): {cell(levels)}")
    out.print(f"[bold]Intake[/bold] (cases by channel): {cell(intake)}\n")

    consents = _table("Consents: customers who may be contacted", ["channel", "purpose",
                                                                   "opted in"], right_from=2)
    for c in summary.consents:
        consents.add_row(c.channel, c.purpose, str(c.customers))
    out.print(consents)
    if summary.suspected_duplicates:
        out.print(f"{summary.suspected_duplicates} e-mail addresses are shared by several "
                  "customers (families): suspected duplicates to review, never merged "
                  "automatically.\n")

    follow = summary.followups
    tasks = _table(f"Follow-up tasks: {follow.open} open, of which {follow.overdue} overdue "
                   "(due before today)", ["consultant", "open", "overdue"])
    for person in follow.by_consultant:
        tasks.add_row(cell(person.staff), str(person.open),
                      f"[red]{person.overdue}[/red]" if person.overdue else "0")
    tasks.caption = f"{follow.done} done; calls after a first visit come from the visit rule"
    out.print(tasks)
    pool = _table("Public pool (公海)", ["project", "in the pool", "released", "claimed"])
    for counted in follow.pool:
        pool.add_row(counted.project, str(counted.in_pool), str(counted.released),
                     str(counted.claimed))
    out.print(pool)

    for section in summary.plugins:
        t = _table(section.title, ["", ""])
        t.show_header = False
        for label, value in section.rows:  # a plugin's figures, shown as written
            t.add_row(cell(label), cell(value))
        out.print(t)
    if not summary.plugins:
        out.print("No plugin added a section (plugins add one through the recrm_demo hook).\n")

    db = f"{prefix}recrm --db {url}"
    segment = '\'{"all": [{"field": "stage", "op": "eq", "value": "owner"}]}\''
    out.print("[bold]Try next[/bold]")
    for line in (
        f"{db} customers show 1",
        f"{db} --as partner:agent.xu customers show 1      # what an agency sees",
        f"{db} --as manager:li.na customers disclose 1 --reason 投诉升级   # audited",
        f"{db} cases list --overdue",
        f"{db} tasks list --overdue",
        f"{db} pool list --project XL2",
        f"{db} customers duplicates",
        f"{db} customers count --segment {segment}",
    ):
        out.print(f"  {line}", markup=False, highlight=False)
    if summary.plugins:
        # Plugin commands need the plugins enabled in a recrm.toml; the demo enabled
        # them only for itself.
        out.print(f"  {db} init      # then: recrm plugins list, recrm <plugin> --help",
                  markup=False, highlight=False)
