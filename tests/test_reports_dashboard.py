"""The dashboard: one self-contained HTML page with every report's chart and table,
from ``recrm report dashboard`` and ``write_dashboard``, on SQLite and PostgreSQL; a
failing report shows its error in its section; and the page in headless Chromium
(Debian's, as ``tests/test_pages_browser.py`` drives it), loading nothing from
anywhere, with its screenshot kept (under the test's tmp_path, and in
``$RECRM_ARTIFACTS`` when set) for a person to look at."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from report_plugin import NOTE, LeadStats, seed

from recrm_core import CRM, hookimpl
from recrm_core.reports import Column, Report, ReportRequest, ReportSpec, charts, drawing
from recrm_core.reports.dashboard import write_dashboard
from recrm_core.reports.drawing import ChartWorker, Drawer
from recrm_core.testing import RecrmCliRunner, save_screenshot

Register = Callable[..., str]
ARTIFACTS_ENV = "RECRM_ARTIFACTS"
NOW = dt.datetime(2026, 4, 1, 9, 30, tzinfo=dt.UTC)


def _broken(crm: CRM, request: ReportRequest) -> Report:
    raise RuntimeError("the plugin's database view is missing")


def _hostile(crm: CRM, request: ReportRequest) -> Report:
    return Report(name="shaky.hostile", title="<script>alert(1)</script>标题",
                  columns=[Column(key="a", title="<b>a</b>")],
                  rows=[{"a": '<img src="http://evil.example/x.png">'}])


class Shaky:
    """A plugin with a report that fails and one whose text is markup."""

    name = "shaky"

    @hookimpl
    def recrm_reports(self, register: Callable[[ReportSpec], None]) -> None:
        register(ReportSpec(name="shaky.broken", title="坏报表 Broken", description="fails",
                            run=_broken))
        register(ReportSpec(name="shaky.hostile", title="Hostile", description="markup",
                            run=_hostile))


@pytest.fixture
def leads(crm: CRM, register_plugin: Register) -> CRM:
    register_plugin(LeadStats())
    register_plugin(Shaky())
    seed(crm)
    return crm


def section(html: str, name: str) -> str:
    anchor = "report-" + re.sub(r"[^a-z0-9_-]", "-", name)
    found = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert found, name
    return found.group(1)


def test_dashboard_from_the_command_line(leads: CRM, cli_runner: RecrmCliRunner,
                                         tmp_path: Path) -> None:
    path = tmp_path / "dashboard.html"
    done = cli_runner.invoke("report", "dashboard", "--html", str(path), "--project", "XL2")
    assert done.exit_code == 0, done.stderr
    assert "warning: report shaky.broken: plugin 'shaky' failed" in done.stderr
    assert f"wrote {path}" in done.stderr
    html = path.read_text(encoding="utf-8")
    assert "project XL2" in html
    mine = section(html, "leadstats.sources")
    assert "<svg" in mine and "线索来源" in mine and NOTE in mine
    # XL2's rows as the table reads them: 抖音 2 of which 1 visited, 老带新 2/1, 中介 1/1
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", mine)
    assert cells == ["all", "抖音", "2", "1", "50.0%", "all", "老带新", "2", "1", "50.0%",
                     "all", "中介", "1", "1", "100.0%"]
    broken = section(html, "shaky.broken")
    assert "RuntimeError: the plugin&#39;s database view is missing" in broken
    assert "<svg" not in broken and "<table" not in broken
    # a report's text is shown, never run
    hostile = section(html, "shaky.hostile")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;标题" in hostile
    assert "&lt;img src=&#34;http://evil.example/x.png&#34;&gt;" in hostile
    assert "<script" not in html and "<img" not in html
    # nothing is fetched from anywhere: no source or link outside the page
    assert not re.findall(r'(?:src|href)="(?!#)[^"]*"', html)
    assert "default-src 'none'" in html


def test_write_dashboard_sdk(leads: CRM, tmp_path: Path) -> None:
    found = write_dashboard(leads, tmp_path / "d.html", ReportRequest(by="month"))
    by_name = {s.spec.name: s for s in found}
    assert by_name["leadstats.sources"].error is None
    assert by_name["leadstats.sources"].report is not None
    assert [r["period"] for r in by_name["leadstats.sources"].report.rows] == [
        "2026-01", "2026-02", "2026-02", "2026-03"]
    assert by_name["shaky.broken"].error is not None
    assert "plugin 'shaky'" in by_name["shaky.broken"].error
    html = (tmp_path / "d.html").read_text(encoding="utf-8")
    assert "by month" in html


def test_a_partner_gets_an_empty_dashboard(leads: CRM, cli_runner: RecrmCliRunner,
                                           tmp_path: Path) -> None:
    path = tmp_path / "p.html"
    done = cli_runner.invoke("--as", "partner:agent1", "report", "dashboard", "--html",
                             str(path))
    assert done.exit_code == 0, done.stderr
    assert "0 report(s)" in done.stderr
    assert "<section" not in path.read_text(encoding="utf-8")


def test_the_dashboard_in_chromium(leads: CRM, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    path = tmp_path / "dashboard.html"
    write_dashboard(leads, path, ReportRequest(by="quarter"))
    browser.set_window_size(1100, 900)
    browser.get(path.as_uri())
    assert "管理报表" in browser.find_element(By.TAG_NAME, "h1").text
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "线索来源 Lead sources" in body and "老带新" in body and "坏报表 Broken" in body
    assert "plugin 'shaky' failed" in body
    # the chart's Chinese is text the browser laid out, not pictures of it
    texts = browser.execute_script(
        "return Array.from(document.querySelectorAll('#report-leadstats-sources svg text'))"
        ".map(t => t.textContent)")
    assert "线索来源 Lead sources" in texts and "抖音" in texts
    width = browser.execute_script(
        "const t = Array.from(document.querySelectorAll('#report-leadstats-sources svg text'))"
        ".find(t => t.textContent === '老带新'); return t.getBBox().width")
    assert width > 10  # drawn with a font that has the characters
    # nothing was fetched besides the page itself
    assert browser.execute_script(
        "return performance.getEntriesByType('resource').length") == 0
    shot = save_screenshot(browser, tmp_path / "dashboard.png")
    assert shot.stat().st_size > 10_000
    artifacts = os.environ.get(ARTIFACTS_ENV)
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        kept = Path(artifacts) / f"reports-dashboard-{leads.engine.dialect.name}.png"
        shutil.copyfile(shot, kept)
        print(f"screenshot kept: {kept}")


def test_the_demo_prints_reports_and_writes_its_dashboard(
        crm: CRM, register_plugin: Register, cli_runner: RecrmCliRunner, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import recrm_core.cli.demo as demo_cli
    from recrm_core.demo import DASHBOARD_FILE

    register_plugin(LeadStats())
    monkeypatch.chdir(tmp_path)  # PostgreSQL has no file to write beside
    # The demo prints the core's funnel and scorecard; here a plugin's report stands in
    # for them, so the test does not depend on their figures.
    monkeypatch.setattr(demo_cli, "DEMO_REPORTS", ("leadstats.sources",))
    done = cli_runner.invoke("demo", "--customers", "30")
    assert done.exit_code == 0, done.stderr
    assert "线索来源 Lead sources" in done.stdout and NOTE in done.stdout
    where = (Path(str(crm.engine.url.database)).resolve().parent
             if crm.engine.dialect.name == "sqlite" else tmp_path)
    page = where / DASHBOARD_FILE
    assert f"dashboard (every report, charts and tables): {page}" in done.stderr
    assert "线索来源" in page.read_text(encoding="utf-8")


def test_a_dashboard_of_an_unknown_project_is_refused(leads: CRM, cli_runner: RecrmCliRunner,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "nope.html"
    done = cli_runner.invoke("report", "dashboard", "--html", str(path), "--project", "NOPE")
    # as `report funnel --project NOPE` says it: one line, no page, no warnings
    assert done.exit_code == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: no such project 'NOPE' (known: HP1, XL2)"]
    assert not path.exists()
    from recrm_core.errors import UnknownProject

    with pytest.raises(UnknownProject):
        write_dashboard(leads, path, ReportRequest(project="NOPE"))


def test_report_list_shows_what_the_actor_may_run(leads: CRM,
                                                  cli_runner: RecrmCliRunner) -> None:
    import json

    def names(*who: str) -> list[str]:
        done = cli_runner.invoke(*who, "report", "list", "--json")
        assert done.exit_code == 0, done.stderr
        return [r["name"] for r in json.loads(done.stdout)]

    assert names("--as", "partner:agent1") == []  # GET /v1/reports lists none either
    assert names("--as", "sales:li.na") == ["funnel", "sources", "staff"]
    assert names() == ["funnel", "sources", "cases", "staff", "scorecard",
                       "leadstats.sources", "shaky.broken", "shaky.hostile"]


def test_a_standard_option_given_as_option_names_its_flag(leads: CRM,
                                                          cli_runner: RecrmCliRunner) -> None:
    done = cli_runner.invoke("report", "funnel", "--option", "project=XL2")
    assert done.exit_code == 2
    assert ("Invalid value for --option: 'project' is not an option of the report's own: "
            "give it as --project") in done.stderr
    done = cli_runner.invoke("report", "leadstats.sources", "--option", "nope=1")
    assert done.exit_code == 2
    assert "Invalid value for --option: report 'leadstats.sources' has no option 'nope'" \
        in done.stderr


def _page(crm: CRM, path: Path, drawer: Drawer | None = None) -> str:
    write_dashboard(crm, path, ReportRequest(by="month"), now=NOW, drawer=drawer)
    return path.read_text(encoding="utf-8")


def _undrawable(crm: CRM, request: ReportRequest) -> Report:
    # text between two $ is data, not mathematics for matplotlib (which refuses this)
    return Report(name="undrawable.chart", title="Undrawable",
                  columns=[Column(key="a", title="a"), Column(key="n", title="n", kind="int")],
                  rows=[{"a": "$\\nosuch$", "n": 1}])


def _refusing(draw: Callable[[Report], Any]) -> Callable[[Report], Any]:
    """``charts.draw`` failing for the undrawable report alone (a worker forked after
    the patch inherits it)."""
    def patched(report: Report) -> Any:
        if report.name == "undrawable.chart":
            raise ValueError("this chart cannot be drawn")
        return draw(report)
    return patched


def test_dollar_signs_in_labels_are_text(tmp_path: Path) -> None:
    svg = charts.render(_undrawable(None, ReportRequest()), "svg").decode()  # type: ignore[arg-type]
    assert "$\\nosuch$" in svg


class Undrawable:
    """A report that runs, and whose chart cannot be drawn."""

    name = "undrawable"

    @hookimpl
    def recrm_reports(self, register: Callable[[ReportSpec], None]) -> None:
        register(ReportSpec(name="undrawable.chart", title="Undrawable", description="x",
                            run=_undrawable))


@pytest.mark.skipif(sys.platform != "linux" or (os.cpu_count() or 1) < 2,
                    reason="a chart worker runs on Linux with two cores")
def test_a_chart_worker_draws_the_same_page(leads: CRM, register_plugin: Register,
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    register_plugin(Undrawable())
    with monkeypatch.context() as patched:
        # Patched here only: a worker started by a fork server (as when the process
        # runs threads) would not inherit the patch.
        patched.setattr(charts, "draw", _refusing(charts.draw))
        refused = _page(leads, tmp_path / "refused.html")
    # a chart that cannot be drawn shows the error alone, as a report that fails to run
    failed = section(refused, "undrawable.chart")
    assert "internal error: ValueError" in failed
    assert "<svg" not in failed and "<table" not in failed
    assert "<svg" in section(refused, "leadstats.sources")
    here = _page(leads, tmp_path / "here.html")
    assert "<svg" in section(here, "undrawable.chart")  # "$...$" drawn as text
    with ChartWorker() as worker:
        assert worker.running  # this machine has the two cores it needs
        assert _page(leads, tmp_path / "worker.html", worker) == here
    # a worker that died: every chart is drawn here
    with ChartWorker() as worker:
        assert worker.running
        worker._pool.submit(os._exit, 1)  # type: ignore[union-attr]
        assert _page(leads, tmp_path / "died.html", worker) == here
    # on one core (or without fork) no worker is started
    monkeypatch.setattr(drawing, "_worthwhile", lambda: False)
    with ChartWorker() as worker:
        assert not worker.running
        assert _page(leads, tmp_path / "one.html", worker) == here


@pytest.mark.skipif(sys.platform != "linux" or (os.cpu_count() or 1) < 2,
                    reason="a chart worker runs on Linux with two cores")
def test_the_chart_worker_ends_with_its_caller() -> None:
    # a caller killed (here: gone without closing it) leaves no worker behind
    script = ("import os, time\n"
              "from recrm_core.reports.drawing import ChartWorker\n"
              "worker = ChartWorker()\n"
              "time.sleep(0.5)\n"
              "print(*worker._pool._processes, flush=True)\n"
              "os._exit(0)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    (pid,) = map(int, done.stdout.split())
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)  # not left behind by a failing test either
        pytest.fail("the chart worker outlived its caller")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # an ended child of the script's process is reaped by init, not left a zombie
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
