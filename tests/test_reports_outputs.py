"""The report registry's front-ends and outputs, driven through a plugin's report
(``tests/report_plugin.py``): ``recrm report list``, running a report with the
standard and its own options, the table, JSON, CSV, XLSX, SVG and PNG outputs, the
refusals, and the charts of every kind. Expected figures are counted by hand from the
six customers in ``report_plugin.PEOPLE``; each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from report_plugin import ALL_ROWS, NOTE, TITLE, LeadStats, seed

from recrm_core import CRM, ConfigError, Forbidden, InvalidInput, PluginError, hookimpl
from recrm_core.reports import (
    Chart,
    Column,
    Report,
    ReportOption,
    ReportRequest,
    ReportSpec,
    Series,
)
from recrm_core.reports import charts as charts_module
from recrm_core.testing import REQUIRE_BROWSER_ENV, RecrmCliRunner

Register = Callable[..., str]
NAME = "leadstats.sources"


@pytest.fixture
def leads(crm: CRM, register_plugin: Register) -> CRM:
    register_plugin(LeadStats())
    seed(crm)
    return crm


def cjk_font_or_skip() -> None:
    """Skip where no CJK font is installed (CI installs one: then it must be found)."""
    try:
        charts_module.find_cjk_font(None)
    except charts_module.NoCjkFont as exc:
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{exc} ({REQUIRE_BROWSER_ENV}=1)")
        pytest.skip(str(exc))


# -- the hook ----------------------------------------------------------------------------


def test_hook_recrm_reports(crm: CRM, register_plugin: Register) -> None:
    assert NAME not in crm.reports.specs()
    register_plugin(LeadStats())
    seed(crm)
    spec = crm.reports.get(NAME)
    assert (spec.plugin, spec.title) == ("leadstats", "Lead sources (plugin)")
    # the core's first, then the plugin's
    assert list(crm.reports.specs())[-1] == NAME
    assert {"funnel", "sources", "cases", "staff", "scorecard"} <= set(crm.reports.specs())
    report = crm.reports.run(NAME)
    assert report.rows == ALL_ROWS
    # its own option's default was filled in, and what it ran with is recorded
    assert report.parameters == {"min_customers": "1"}
    only = crm.reports.run(NAME, ReportRequest(options={"min_customers": "2"}))
    assert [r["source"] for r in only.rows] == ["抖音", "老带新"]


def test_periods_projects_and_inclusive_days(leads: CRM) -> None:
    run = leads.reports.run
    by_month = run(NAME, ReportRequest(by="month", start=dt.date(2026, 1, 1),
                                       end=dt.date(2026, 2, 28))).rows
    assert [(r["period"], r["source"], r["customers"], r["visited"]) for r in by_month] == [
        ("2026-01", "抖音", 2, 1), ("2026-02", "中介", 1, 1), ("2026-02", "抖音", 1, 0)]
    by_quarter = run(NAME, ReportRequest(by="quarter", project="XL2")).rows
    assert [(r["period"], r["source"], r["customers"]) for r in by_quarter] == [
        ("2026-Q1", "抖音", 2), ("2026-Q1", "老带新", 2), ("2026-Q1", "中介", 1)]
    # --to is included: 李娜, first seen on 2026-01-20, counts
    to_20 = run(NAME, ReportRequest(end=dt.date(2026, 1, 20))).rows
    assert [(r["source"], r["customers"]) for r in to_20] == [("抖音", 2)]
    with pytest.raises(InvalidInput, match="ends"):
        run(NAME, ReportRequest(start=dt.date(2026, 2, 1), end=dt.date(2026, 1, 1)))


def test_values_have_one_type_whatever_the_database() -> None:
    report = Report(name="t", title="t",
                    columns=[Column(key="n", title="n", kind="int"),
                             Column(key="r", title="r", kind="percent")],
                    rows=[{"n": Decimal("3"), "r": Decimal("0.25")}, {"n": 4.0, "r": None}])
    assert report.rows == [{"n": 3, "r": 0.25}, {"n": 4, "r": None}]
    assert type(report.rows[0]["n"]) is int and type(report.rows[0]["r"]) is float
    assert json.loads(report.model_dump_json())["rows"][0] == {"n": 3, "r": 0.25}
    with pytest.raises(ValueError, match="chart names 'nope'"):
        Report(name="t", title="t", columns=[Column(key="n", title="n")],
               chart=Chart(kind="bar", x="nope"))
    with pytest.raises(ValueError, match="a row holds 'x'"):
        Report(name="t", title="t", columns=[Column(key="n", title="n")], rows=[{"x": 1}])


# -- the command line --------------------------------------------------------------------


def test_list(leads: CRM, cli_runner: RecrmCliRunner) -> None:
    shown = cli_runner.invoke("report", "list")
    assert shown.exit_code == 0, shown.stderr
    assert NAME in shown.stdout and "leadstats" in shown.stdout and "core" in shown.stdout
    listed = cli_runner.invoke("report", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    by_name = {r["name"]: r for r in listed.json()}
    assert by_name[NAME]["plugin"] == "leadstats"
    assert by_name[NAME]["options"] == [{"name": "min_customers", "kind": "int",
                                         "help": "leave out sources with fewer customers",
                                         "choices": [], "default": "1"}]
    assert by_name["funnel"]["plugin"] is None
    assert by_name["funnel"]["standard"] == ["project", "from", "to", "by"]


def test_run_as_a_table_with_notes(leads: CRM, cli_runner: RecrmCliRunner) -> None:
    shown = cli_runner.invoke("report", NAME)
    assert shown.exit_code == 0, shown.stderr
    out = shown.stdout
    assert TITLE in out and "来源 source" in out and NOTE in out
    lines = [line for line in out.splitlines() if "抖音" in line]
    assert len(lines) == 1 and "33.3%" in lines[0] and " 3 " in lines[0]
    assert out.index("抖音") < out.index("老带新") < out.index("中介") < out.index(NOTE)


def test_run_as_json_with_options(leads: CRM, cli_runner: RecrmCliRunner) -> None:
    whole = cli_runner.invoke("report", NAME, "--json")
    assert whole.exit_code == 0, whole.stderr
    assert whole.json()["rows"] == ALL_ROWS and whole.json()["notes"] == [NOTE]
    assert whole.json()["chart"]["kind"] == "bar"
    monthly = cli_runner.invoke("report", NAME, "--by", "month", "--from", "2026-01-01",
                                "--to", "2026-02-28", "--json")
    assert [(r["period"], r["source"]) for r in monthly.json()["rows"]] == [
        ("2026-01", "抖音"), ("2026-02", "中介"), ("2026-02", "抖音")]
    assert monthly.json()["parameters"] == {"from": "2026-01-01", "to": "2026-02-28",
                                            "by": "month", "min_customers": "1"}
    own = cli_runner.invoke("report", NAME, "--project", "XL2", "--min-customers", "2",
                            "--json")
    assert [(r["source"], r["customers"]) for r in own.json()["rows"]] == [("抖音", 2),
                                                                          ("老带新", 2)]
    raw = cli_runner.invoke("report", NAME, "--option", "min_customers=3", "--json")
    assert [r["source"] for r in raw.json()["rows"]] == ["抖音"]


@pytest.mark.parametrize(("args", "says"), [
    (("report", "nope"), "no report named 'nope'"),
    (("report", NAME, "--from", "2026-02-30"), "--from"),
    (("report", NAME, "--by", "week"), "--by"),
    (("report", NAME, "--from", "2026-02-01", "--to", "2026-01-01"), "before it starts"),
    (("report", NAME, "--min-customers", "many"), "--min-customers"),
    (("report", NAME, "--option", "colour=red"), "no option 'colour'"),
    (("report", NAME, "--option", "just-text"), "NAME=VALUE"),
    (("report", NAME, "--csv", "/no/such/dir/x.csv"), "--csv"),
    (("report", "dashboard"), "--html"),
])
def test_usage_errors_exit_2_in_one_line(leads: CRM, cli_runner: RecrmCliRunner,
                                         args: tuple[str, ...], says: str) -> None:
    done = cli_runner.invoke(*args)
    assert done.exit_code == 2, (done.stdout, done.stderr)
    assert says in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_partner_may_not_run_the_reports(leads: CRM, cli_runner: RecrmCliRunner) -> None:
    done = cli_runner.invoke("--as", "partner:agent1", "report", NAME)
    assert done.exit_code == 1 and "role partner may not run the report" in done.stderr
    assert leads.reports.available(leads_actor("partner")) == []
    with pytest.raises(Forbidden):
        leads.reports.run(NAME, ReportRequest(actor=leads_actor("sales")))
    assert leads.reports.run(NAME, ReportRequest(actor=leads_actor("analyst"))).rows


def leads_actor(role: str) -> Any:
    from recrm_core import Actor

    return Actor(staff_id=f"{role}1", role=role)


def test_csv(leads: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    path = tmp_path / "sources.csv"
    done = cli_runner.invoke("report", NAME, "--csv", str(path))
    assert done.exit_code == 0, done.stderr
    assert done.stdout == "" and f"wrote {path}" in done.stderr
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # Excel's UTF-8, CRLF
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows == [["期间 period", "来源 source", "客户 customers", "来访 visited",
                     "来访率 visit rate"],
                    ["all", "抖音", "3", "1", str(1 / 3)],
                    ["all", "老带新", "2", "1", "0.5"],
                    ["all", "中介", "1", "1", "1.0"]]


def test_xlsx_keeps_types(leads: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    path = tmp_path / "sources.xlsx"
    done = cli_runner.invoke("report", NAME, "--xlsx", str(path))
    assert done.exit_code == 0, done.stderr
    book = load_workbook(path)
    assert book.sheetnames == [NAME, "notes"]
    sheet = book[NAME]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0] == ["期间 period", "来源 source", "客户 customers", "来访 visited",
                         "来访率 visit rate"]
    assert values[1:] == [["all", "抖音", 3, 1, pytest.approx(1 / 3)],
                          ["all", "老带新", 2, 1, 0.5], ["all", "中介", 1, 1, 1]]
    assert isinstance(sheet["C2"].value, int) and sheet["C2"].number_format == "#,##0"
    assert sheet["E2"].data_type == "n" and sheet["E2"].number_format == "0.0%"
    assert book["notes"]["A1"].value == NOTE


def test_svg_keeps_chinese_as_text(leads: CRM, cli_runner: RecrmCliRunner,
                                   tmp_path: Path) -> None:
    path = tmp_path / "sources.svg"
    done = cli_runner.invoke("report", NAME, "--svg", str(path))
    assert done.exit_code == 0, done.stderr
    svg = path.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    # the title and the sources are <text>, not glyph outlines
    for text in ("线索来源", "抖音", "老带新", "中介"):
        assert text in svg, text
    assert "<text" in svg and 'id="DejaVuSans-' not in svg
    assert "font-family: 'WenQuanYi Micro Hei'" in svg and "sans-serif" in svg
    # the same report draws the same bytes (no date in the file)
    again = tmp_path / "again.svg"
    cli_runner.invoke("report", NAME, "--svg", str(again))
    assert again.read_bytes() == path.read_bytes()


def test_png_with_a_cjk_font(leads: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    cjk_font_or_skip()
    path = tmp_path / "sources.png"
    done = cli_runner.invoke("report", NAME, "--png", str(path), "--svg",
                             str(tmp_path / "s.svg"))
    assert done.exit_code == 0, done.stderr
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    assert (tmp_path / "s.svg").exists()


@pytest.fixture
def no_cjk_font(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without any CJK font."""
    monkeypatch.setattr(charts_module, "CJK_FAMILIES", ())
    monkeypatch.setattr(charts_module, "CJK_FONT_FILES", ())


def test_png_without_a_cjk_font_exits_2_naming_the_package(
        leads: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, no_cjk_font: None) -> None:
    path = tmp_path / "sources.png"
    done = cli_runner.invoke("report", NAME, "--png", str(path))
    assert done.exit_code == 2, (done.stdout, done.stderr)
    assert "fonts-wqy-microhei" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not path.exists()


@pytest.mark.parametrize("font", ["/no/such/font.ttc", "No Such Family",
                                  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"])
def test_png_font_setting_must_have_chinese(crm_factory: Callable[..., CRM], tmp_path: Path,
                                            font: str) -> None:
    if font.endswith("DejaVuSans.ttf") and not Path(font).exists():
        pytest.skip("no DejaVu Sans here")
    crm = crm_factory(plugins=[LeadStats()], settings={"reports": {"font": font}})
    assert crm.config.reports.font == font
    seed(crm)
    done = RecrmCliRunner(crm).invoke("report", NAME, "--png", str(tmp_path / "x.png"))
    assert done.exit_code == 2, done.stderr
    assert "[reports] font" in done.stderr and "fonts-wqy-microhei" in done.stderr


def test_font_setting_names_a_file(tmp_path: Path) -> None:
    cjk_font_or_skip()
    found = charts_module.find_cjk_font(None)
    named = charts_module.find_cjk_font(found.path)
    assert named == found
    assert charts_module.find_cjk_font(found.family).family == found.family


def test_terminal_values_are_escaped(crm: CRM, register_plugin: Register,
                                     cli_runner: RecrmCliRunner) -> None:
    class Hostile:
        name = "hostile"

        @hookimpl
        def recrm_reports(self, register: Callable[[ReportSpec], None]) -> None:
            register(ReportSpec(name="hostile.r", title="t\x1b[2J", description="d",
                                run=lambda crm, request: Report(
                                    name="hostile.r", title="红\x1b]8;;http://x\x07",
                                    columns=[Column(key="a", title="[bold]a")],
                                    rows=[{"a": "\x1b[31mred"}], notes=["\x9bnote"])))

    register_plugin(Hostile())
    done = cli_runner.invoke("report", "hostile.r")
    assert done.exit_code == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x9b" not in done.stdout
    assert "[bold]a" in done.stdout and "red" in done.stdout
    listed = cli_runner.invoke("report", "list")
    assert "\x1b" not in listed.stdout


# -- what plugins may register -------------------------------------------------------------


def plugin_registering(name: str, *specs: ReportSpec) -> object:
    class Plugin:
        @hookimpl
        def recrm_reports(self, register: Callable[[ReportSpec], None]) -> None:
            for spec in specs:
                register(spec)

    Plugin.name = name  # type: ignore[attr-defined]
    return Plugin()


def spec(name: str, **extra: Any) -> ReportSpec:
    return ReportSpec(name=name, title="x", description="x",
                      run=lambda crm, request: Report(name=name, title="x", columns=[]),
                      **extra)


@pytest.mark.parametrize(("specs", "says"), [
    ((spec("other.x"),), "must start with 'prefixed.'"),
    ((spec("x"),), "must start with 'prefixed.'"),
    ((spec("prefixed.x"), spec("prefixed.x")), "registered twice: by prefixed and by "
                                               "prefixed"),
    ((spec("prefixed.x", options=(ReportOption(name="project", help="h"),)),),
     "standard ones or outputs"),
])
def test_refused_registrations(crm: CRM, register_plugin: Register,
                               cli_runner: RecrmCliRunner, specs: tuple[ReportSpec, ...],
                               says: str) -> None:
    register_plugin(plugin_registering("prefixed", *specs))
    with pytest.raises(ConfigError, match=says):
        crm.reports.specs()
    done = cli_runner.invoke("report", "list")
    assert done.exit_code == 2 and says.split(":")[0] in done.stderr


def test_a_failing_plugin_report_names_the_plugin(crm: CRM, register_plugin: Register,
                                                  cli_runner: RecrmCliRunner) -> None:
    def broken(crm: CRM, request: ReportRequest) -> Report:
        raise ZeroDivisionError("division by zero")

    register_plugin(plugin_registering("shaky", spec("shaky.r").model_copy(
        update={"run": broken})))
    with pytest.raises(PluginError, match="plugin 'shaky' failed in recrm_reports"):
        crm.reports.run("shaky.r")
    done = cli_runner.invoke("report", "shaky.r")
    assert done.exit_code == 1 and "plugin 'shaky'" in done.stderr


# -- charts -----------------------------------------------------------------------------


def _chart_report(kind: str, group: str | None = None) -> Report:
    rows = [{"stage": s, "dept": d, "n": n, "rate": n / 100, "status": st}
            for s, n, st in (("意向", 100, "ok"), ("来访", 40, "behind"), ("签约", 10, "none"))
            for d in ("客服部", "销售部")]
    return Report(name=f"chart.{kind}", title=f"图 {kind}",
                  columns=[Column(key="stage", title="阶段"), Column(key="dept", title="部门"),
                           Column(key="n", title="人数", kind="int"),
                           Column(key="rate", title="比率", kind="percent"),
                           Column(key="status", title="状态")],
                  rows=rows if group else rows[::2],
                  chart=Chart(kind=kind, x="stage", group=group,  # type: ignore[arg-type]
                              series=(Series(column="n"),) if kind == "funnel" else
                              (Series(column="n"), Series(column="rate", label="比率"))))


@pytest.mark.parametrize(("kind", "group"), [("funnel", None), ("bar", None), ("bar", "dept"),
                                             ("line", None), ("line", "dept"),
                                             ("grid", None), ("grid", "dept")])
def test_every_chart_kind_draws_chinese_as_text(kind: str, group: str | None) -> None:
    svg = charts_module.render(_chart_report(kind, group), "svg").decode("utf-8")
    assert f"图 {kind}" in svg and "意向" in svg and "签约" in svg
    if group is not None:
        assert "客服部" in svg and "销售部" in svg
    if kind == "grid":
        # the scorecard's cells are coloured by status
        for colour in charts_module.STATUS_COLOURS.values():
            assert colour in svg, colour
    if kind == "funnel":
        assert "(40%)" in svg and "(25%)" in svg  # each stage's share of the one above


def test_a_report_without_rows_or_chart_still_draws() -> None:
    empty = Report(name="e", title="空 empty", columns=[Column(key="a", title="a")])
    assert "no data" in charts_module.render(empty, "svg").decode("utf-8")
    plain = Report(name="p", title="p", columns=[Column(key="a", title="a"),
                                                 Column(key="n", title="数", kind="int")],
                   rows=[{"a": "甲", "n": 2}])
    assert charts_module.chart_of(plain) == Chart(kind="bar", x="a",
                                                  series=(Series(column="n"),))
    assert "甲" in charts_module.render(plain, "svg").decode("utf-8")


# -- charts of several projects and periods (the review's defects 1-3) -----------------


def _axes_texts(ax: Any) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _funnels(projects: dict[str, dict[str, tuple[int, ...]]]) -> Report:
    rows = [{"project": p, "period": per, "stage": stage, "customers": n}
            for p, periods in projects.items() for per, counts in periods.items()
            for stage, n in zip(("意向", "来访", "签约"), counts, strict=True)]
    return Report(name="f", title="漏斗", rows=rows,
                  columns=[Column(key="project", title="Project"),
                           Column(key="period", title="Period"),
                           Column(key="stage", title="Stage"),
                           Column(key="customers", title="Customers", kind="int")],
                  chart=Chart(kind="funnel", x="stage", series=(Series(column="customers"),),
                              facets=("project", "period")))


def test_a_funnel_per_project_and_period_with_shares_within_it() -> None:
    report = _funnels({"XL2": {"2026-Q1": (100, 40, 10), "2026-Q2": (50, 25, 5)},
                       "YH1": {"2026-Q1": (200, 20, 20), "2026-Q2": (10, 5, 1)}})
    figure = charts_module.draw(report)
    drawn = {ax.get_title(loc="left"): _axes_texts(ax) for ax in figure.axes
             if ax.get_title(loc="left")}
    # hand-computed: each stage over the one above in the same funnel; the first stage
    # of a funnel has no share (YH1's 200 is not 2000% of XL2's 10)
    assert drawn == {"XL2 · 2026-Q1": ["100", "40  (40%)", "10  (25%)"],
                     "XL2 · 2026-Q2": ["50", "25  (50%)", "5  (20%)"],
                     "YH1 · 2026-Q1": ["200", "20  (10%)", "20  (100%)"],
                     "YH1 · 2026-Q2": ["10", "5  (50%)", "1  (20%)"]}
    for ax in figure.axes:
        if ax.get_title(loc="left"):
            assert [t.get_text() for t in ax.get_yticklabels()] == ["意向", "来访", "签约"]
    svg = charts_module.render(report, "svg").decode("utf-8")
    for title in drawn:
        assert title in svg


def test_funnels_beyond_the_cap_are_left_to_the_table() -> None:
    from recrm_core.reports.layout import MAX_FACETS

    report = _funnels({f"P{i:02d}": {"all": (10, 5, 1)} for i in range(MAX_FACETS + 2)})
    figure = charts_module.draw(report)
    titles = [ax.get_title(loc="left") for ax in figure.axes if ax.get_title(loc="left")]
    assert titles == [f"P{i:02d} · all" for i in range(MAX_FACETS)]
    assert "and 2 more in the table" in charts_module.render(report, "svg").decode("utf-8")


def _periods_report(kind: str, x: str, group: str | None, period: str | None,
                    rows: list[tuple[str, str, float, float]]) -> Report:
    return Report(name="p", title="p", columns=[
        Column(key="project", title="Project"), Column(key="period", title="Period"),
        Column(key="amount", title="Amount", kind="money"),
        Column(key="hours", title="Hours", kind="hours")],
        rows=[{"project": p, "period": per, "amount": a, "hours": h} for p, per, a, h in rows],
        chart=Chart(kind=kind, x=x, group=group, period=period,  # type: ignore[arg-type]
                    series=(Series(column="amount"),)))


def _lines_of(figure: Any) -> dict[str, list[str]]:
    """Each drawn line's label and the x labels of its points, left to right."""
    found = {}
    for ax in figure.axes:
        ticks = {round(t): label.get_text() for t, label in
                 zip(ax.get_xticks(), ax.get_xticklabels(), strict=True)}
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                found[line.get_label()] = [ticks[round(x)] for x in line.get_xdata()]
    return found


def test_trend_lines_run_in_time_order() -> None:
    # rows as PostgreSQL may hand them over: not in time order
    rows = [("XL2", "2026-Q4", 4, 0), ("XL2", "2026-Q1", 1, 0), ("YH1", "2025-Q3", 9, 0),
            ("XL2", "2026-Q2", 2, 0), ("YH1", "2026-Q1", 8, 0), ("XL2", "2026-Q3", 3, 0)]
    figure = charts_module.draw(_periods_report("line", "period", "project", None, rows))
    assert _lines_of(figure) == {"XL2": ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"],
                                 "YH1": ["2025-Q3", "2026-Q1"]}
    (ax,) = figure.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "2025-Q3", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    line = {ln.get_label(): ln for ln in ax.get_lines()}["XL2"]
    assert list(line.get_ydata()) == [1, 2, 3, 4]
    # months and years sort in time as text too; other categories keep their order
    from recrm_core.reports.layout import in_time_order

    assert in_time_order(["2026-10", "2026-02", "2025-12"]) == ["2025-12", "2026-02",
                                                                "2026-10"]
    assert in_time_order(["2027", "2026"]) == ["2026", "2027"]
    assert in_time_order(["销售部", "工程部", "all"]) == ["销售部", "工程部", "all"]


def _bar_positions(figure: Any) -> list[tuple[float, float]]:
    from matplotlib.patches import Rectangle

    return [(round(p.get_x(), 6), round(p.get_x() + p.get_width(), 6))
            for ax in figure.axes for p in ax.patches if isinstance(p, Rectangle)]


def test_bars_of_the_same_category_stand_side_by_side() -> None:
    # sales.deals with --by all: every row's x is the period "all", one per project
    rows = [("XL2", "all", 100, 1), ("YH1", "all", 300, 2)]
    figure = charts_module.draw(_periods_report("bar", "period", "project", "period", rows))
    (ax,) = figure.axes
    spans = sorted(_bar_positions(figure))
    assert len(spans) == 2 and spans[0][1] <= spans[1][0]  # none drawn over another
    assert [round(p.get_height()) for p in ax.patches] == [100, 300]
    # one period: the projects are the categories (not a legend over one "all" bar)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["XL2", "YH1"]
    # several series and several projects of one period: a bar each, side by side
    two = _periods_report("bar", "period", "project", "period", rows).model_copy(
        update={"chart": Chart(kind="bar", x="period", group="project", period="period",
                               series=(Series(column="amount"), Series(column="hours")))})
    two = two.model_copy(update={"columns": [
        c.model_copy(update={"kind": "money"}) if c.key == "hours" else c
        for c in two.columns]})  # one kind: one panel, two series per project
    figure = charts_module.draw(two)
    (ax,) = figure.axes
    spans = sorted(_bar_positions(figure))
    assert len(spans) == 4 and all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Amount", "Hours"]
    # a chart naming no group: the rows' other text column still tells them apart
    plain = _periods_report("bar", "period", None, None, rows)
    spans = sorted(_bar_positions(charts_module.draw(plain)))
    assert len(spans) == 2 and spans[0][1] <= spans[1][0]


def test_bars_of_several_periods_become_a_trend() -> None:
    rows = [("XL2", "2026-Q2", 5, 0), ("XL2", "2026-Q1", 4, 0), ("YH1", "2026-Q1", 7, 0)]
    figure = charts_module.draw(_periods_report("bar", "project", None, "period", rows))
    assert _bar_positions(figure) == []
    assert _lines_of(figure) == {"XL2": ["2026-Q1", "2026-Q2"], "YH1": ["2026-Q1"]}


def test_series_of_different_kinds_get_an_axis_each() -> None:
    # the staff chart: customers contacted (~250) and hours (0-1) never share an axis
    report = Report(name="s", title="s", columns=[
        Column(key="staff", title="Staff"), Column(key="period", title="Period"),
        Column(key="contacted", title="Customers contacted", kind="int"),
        Column(key="hours", title="Contact hours", kind="hours")],
        rows=[{"staff": "li.na", "period": "all", "contacted": 250, "hours": 0.5},
              {"staff": "wang.fang", "period": "all", "contacted": 240, "hours": 1.0}],
        chart=Chart(kind="bar", x="staff", period="period",
                    series=(Series(column="contacted"), Series(column="hours"))))
    figure = charts_module.draw(report)
    assert [ax.get_title(loc="left") for ax in figure.axes] == ["Customers contacted",
                                                               "Contact hours"]
    heights = [[p.get_height() for p in ax.patches] for ax in figure.axes]
    assert heights == [[250, 240], [0.5, 1.0]]
    assert figure.axes[1].get_ylim()[1] < 2  # hours on their own scale


def test_xlsx_formula_like_text_is_quoted_by_style_not_by_an_apostrophe(
        tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from recrm_core.reports.files import write_xlsx

    report = Report(name="x", title="x", columns=[Column(key="a", title="A")],
                    rows=[{"a": '=HYPERLINK("http://evil.example","点我")'}, {"a": "-12.5"},
                          {"a": "王芳"}])
    write_xlsx(report, tmp_path / "x.xlsx")
    cells = [row[0] for row in load_workbook(tmp_path / "x.xlsx")["x"].iter_rows(min_row=2)]
    assert [(c.value, c.data_type, bool(c.quotePrefix)) for c in cells] == [
        ('=HYPERLINK("http://evil.example","点我")', "s", True), ("-12.5", "s", False),
        ("王芳", "s", False)]
