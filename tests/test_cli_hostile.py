"""Hostile values and failures on a terminal (issue 7): markup and control characters
in values print as written, internal errors print one line without SQL or personal
data (``--debug`` adds the traceback), error lines are capped, a plugin's
``SystemExit`` is a plugin error and Ctrl-C exits 130 with one line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from recrm_core import CRM, Customer, ImportInterrupted, PluginError, UnitOfWork, hookimpl
from recrm_core.testing import CliResult, RecrmCliRunner

Register = Callable[..., str]

MOBILE = "13812345678"
STORED_MOBILE = "+86" + MOBILE
MARKUP = "[/bold]x"
LINK = "[link=http://evil.example/]click[/link]"
# clear the screen, set the window title (OSC 0 ... BEL), a C1 CSI, a bidi override
CONTROLS = "a\x1b[2J\x1b]0;pwned\x07b\x9b31mc\u202ed"
RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e")


def one_error_line(result: CliResult, code: int) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def recrm_command() -> list[str]:
    script = Path(sys.executable).with_name("recrm")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from recrm_core.cli import main; main()"]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RECRM_DATABASE_URL", "RECRM_DEBUG")}
    env.update(extra)
    return env


def run(cwd: Path, *args: str, **env: str) -> CliResult:
    proc = subprocess.run([*recrm_command(), *args], cwd=cwd, env=environment(**env),
                          capture_output=True, text=True, timeout=120)
    return CliResult(proc.returncode, proc.stdout, proc.stderr, None)  # type: ignore[arg-type]


def break_identities(url: str) -> None:
    """Rename a column the lookups need: every find then fails inside the database
    with the statement and the looked-up mobile in the driver's error."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE identities RENAME COLUMN value TO value_gone"))
    finally:
        engine.dispose()


# -- markup and control characters in values --------------------------------------------


@pytest.mark.parametrize("name", [MARKUP, LINK])
def test_markup_in_a_name_is_printed_as_written(
    crm: CRM, cli_runner: RecrmCliRunner, name: str
) -> None:
    cid = crm.customers.add({"name": name, "mobiles": [MOBILE]}).customer.id
    shown = cli_runner.invoke("customers", "show", str(cid))
    assert shown.exit_code == 0, shown.stderr
    assert name in shown.stdout  # not a MarkupError, not a live link swallowing it
    found = cli_runner.invoke("customers", "find", "--mobile", MOBILE)
    assert found.exit_code == 0, found.stderr
    assert name in found.stdout


def test_control_characters_print_as_visible_escapes(
    crm: CRM, cli_runner: RecrmCliRunner
) -> None:
    cid = crm.customers.add({"name": CONTROLS, "mobiles": [MOBILE], "source": "ad",
                             "project": "XL2"}).customer.id
    for args in (("customers", "show", str(cid)), ("customers", "find", "--mobile", MOBILE)):
        result = cli_runner.invoke(*args)
        assert result.exit_code == 0, result.stderr
        for raw in RAW_CONTROLS:
            assert raw not in result.stdout
        assert r"a\x1b[2J\x1b]0;pwned\x07b\x9b31mc\u202ed" in result.stdout
    # a code (here a staff id) cannot hold a control character: refused, never echoed raw
    refused = cli_runner.invoke("customers", "reassign", "\x1b[2Jzhang", "li")
    assert refused.exit_code == 2, refused.stderr
    assert "\x1b" not in refused.stderr and "control character (U+001B)" in refused.stderr


def test_json_output_stays_exact_json_without_raw_controls(
    crm: CRM, cli_runner: RecrmCliRunner
) -> None:
    crm.customers.add({"name": CONTROLS, "mobiles": [MOBILE]})
    result = cli_runner.invoke("customers", "find", "--mobile", MOBILE, "--json")
    assert result.exit_code == 0, result.stderr
    for raw in RAW_CONTROLS:
        assert raw not in result.stdout
    assert result.stdout.count("\n") == 1
    assert result.json()[0]["name"] == CONTROLS  # the same value, escaped as JSON


def test_unknown_columns_are_listed_ten_and_counted(
    cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    # A header of thousands of columns (100,000 gave a 789 KB line), one of them
    # trying to set the terminal's title.
    names = ["na\x1b]0;pwned\x07me", *(f"x{i}" for i in range(4999))]
    path = tmp_path / "wide.csv"
    path.write_text(",".join(["mobile", *names]) + "\n" + MOBILE + "\n", encoding="utf-8")
    line = one_error_line(cli_runner.invoke("customers", "import", str(path)), 2)
    assert len(line) <= 600
    assert r"na\x1b]0;pwned\x07me, x0, x1" in line and "\x1b" not in line
    assert "x8, and" not in line and "x8 and 4990 more (5000 in all)" in line
    assert "known columns: name" in line


# -- internal errors --------------------------------------------------------------------


class Raising:
    """A plugin whose ``recrm_customer_created`` raises ``error``."""

    def __init__(self, name: str, error: BaseException) -> None:
        self.name = name
        self.error = error

    @hookimpl
    def recrm_customer_created(self, uow: UnitOfWork, customer: Customer) -> None:
        raise self.error


def test_an_internal_database_error_prints_one_line_without_sql_or_data(
    crm: CRM, cli_runner: RecrmCliRunner, recrm_database_url: str
) -> None:
    crm.customers.add({"name": "王伟", "mobiles": [MOBILE]})
    crm.engine.dispose()  # nothing of ours holds the table while it is altered
    break_identities(recrm_database_url)
    for args in (("customers", "find", "--mobile", MOBILE),
                 ("customers", "add", "--mobile", "13912345678", "--name", "李娜")):
        line = one_error_line(cli_runner.invoke(*args), 1)
        # the kind only: SQLAlchemy's OperationalError, or the driver's UndefinedColumn
        # where a hot read runs on the driver's cursor
        assert re.fullmatch(rf"error: {' '.join(args[:2])}: internal error: database error"
                            r" \(\w+\) \(--debug or RECRM_DEBUG=1 shows the traceback\)",
                            line), line
        for leak in (MOBILE, "13912345678", "李娜", "SELECT", "identities", "[SQL"):
            assert leak not in line


def test_a_plugin_database_error_names_the_plugin_not_the_sql(
    crm: CRM, cli_runner: RecrmCliRunner, register_plugin: Register
) -> None:
    class Snoop:
        name = "snoop"

        @hookimpl
        def recrm_customer_created(self, uow: UnitOfWork, customer: Customer) -> None:
            uow.session.execute(text("SELECT * FROM no_such_table WHERE v = :v"),
                                {"v": customer.mobiles[0]})

    register_plugin(Snoop())
    line = one_error_line(cli_runner.invoke("customers", "add", "--mobile", MOBILE), 1)
    assert line.startswith("error: plugin 'snoop' failed in recrm_customer_created: "
                           "database error (")
    assert STORED_MOBILE not in line and "no_such_table" not in line
    assert crm.customers.count() == 0


def test_every_error_line_is_capped(
    crm: CRM, cli_runner: RecrmCliRunner, register_plugin: Register
) -> None:
    register_plugin(Raising("shouter", RuntimeError("x" * 100_000 + " the end")))
    line = one_error_line(cli_runner.invoke("customers", "add", "--mobile", MOBILE), 1)
    assert len(line) <= len("error: ") + 500
    assert line.startswith("error: plugin 'shouter' failed in recrm_customer_created: ")
    assert line.endswith("x the end") and "characters left out" in line


@pytest.mark.parametrize("how", [("--debug",), ("RECRM_DEBUG",), ()])
def test_debug_adds_the_traceback(
    recrm_database_url: str, tmp_path: Path, how: tuple[str, ...]
) -> None:
    db = ["--db", recrm_database_url]
    added = run(tmp_path, *db, "customers", "add", "--mobile", MOBILE, "--json")
    assert added.exit_code == 0, added.stderr
    break_identities(recrm_database_url)
    options = [o for o in how if o.startswith("--")]
    env = {"RECRM_DEBUG": "1"} if "RECRM_DEBUG" in how else {}
    result = run(tmp_path, *db, *options, "customers", "find", "--mobile", MOBILE, **env)
    assert result.exit_code == 1, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: customers find: internal error: database error (")
    if how:
        assert result.stderr.startswith("Traceback (most recent call last):")
        # the missing column, as the database names it (the lookup aliases the table)
        assert re.search(r"value_gone|(identities|key)\.value", result.stderr)
        assert "--debug" not in last
    else:
        assert result.stderr.splitlines() == [last]


# -- SystemExit and KeyboardInterrupt in a hook ------------------------------------------


def test_a_hook_raising_systemexit_is_a_plugin_error(
    crm: CRM, cli_runner: RecrmCliRunner, register_plugin: Register
) -> None:
    register_plugin(Raising("quitter", SystemExit(3)))
    line = one_error_line(cli_runner.invoke("customers", "add", "--mobile", MOBILE), 1)
    assert line == "error: plugin 'quitter' failed in recrm_customer_created: SystemExit: 3"
    assert crm.customers.count() == 0  # the operation rolled back
    with pytest.raises(PluginError) as caught:
        crm.customers.add({"mobiles": [MOBILE]})
    assert caught.value.plugin == "quitter"


def test_a_segment_field_hook_raising_systemexit_is_a_plugin_error(crm: CRM) -> None:
    class Quitter:
        @hookimpl
        def recrm_segment_fields(self, register: Any) -> None:
            raise SystemExit(4)

    crm.pm.register(Quitter(), name="quitter")
    with pytest.raises(PluginError) as caught:
        crm.segments.count({"field": "stage", "op": "eq", "value": "owner"})
    assert caught.value.plugin == "quitter"


def test_a_keyboard_interrupt_exits_130_with_one_line(
    crm: CRM, cli_runner: RecrmCliRunner, register_plugin: Register
) -> None:
    register_plugin(Raising("quitter", KeyboardInterrupt()))
    result = cli_runner.invoke("customers", "add", "--mobile", MOBILE)
    assert (result.exit_code, result.stderr) == (130, "error: customers add interrupted\n")
    assert crm.customers.count() == 0


def customers_in(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM customers")).scalar_one())
    finally:
        engine.dispose()


def test_ctrl_c_during_an_import_says_how_many_rows_were_committed(
    recrm_database_url: str, tmp_path: Path
) -> None:
    rows = 200_000
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("name,mobile\n")
        fh.writelines(f"客户{i},139{i:08d}\n" for i in range(rows))
    config = tmp_path / "recrm.toml"
    config.write_text(f"database_url = {json.dumps(recrm_database_url)}\n"
                      "import_batch_size = 500\n", encoding="utf-8")
    ready = run(tmp_path, "--config", str(config), "customers", "count")
    assert ready.exit_code == 0, ready.stderr  # the schema exists: it can be counted
    proc = subprocess.Popen(
        [*recrm_command(), "--config", str(config), "customers", "import", str(path)],
        cwd=tmp_path, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while customers_in(recrm_database_url) == 0:  # some batches are committed
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert stdout == ""
    match = re.fullmatch(
        r"error: customers import interrupted: (\d+) row\(s\) were committed;"
        r" running the same import again is safe and finishes the rest\n", stderr)
    assert match, stderr
    committed = int(match.group(1))
    assert 0 < committed < rows
    assert committed == customers_in(recrm_database_url)  # each row a new customer


def interrupting_rows(count: int, signals_at: dict[int, int]) -> Iterator[dict[str, str]]:
    """Rows to import; before row ``n`` of ``signals_at`` this process gets that many
    SIGINTs, as from Ctrl-C at the terminal."""
    for i in range(count):
        for _ in range(signals_at.get(i, 0)):
            os.kill(os.getpid(), signal.SIGINT)
        yield {"name": f"客户{i}", "mobile": f"139{i:08d}"}


@pytest.mark.recrm_settings(import_batch_size=100)
def test_a_first_ctrl_c_stops_after_the_batch_being_written(crm: CRM) -> None:
    with pytest.raises(ImportInterrupted) as caught:
        crm.importer.import_rows(interrupting_rows(1000, {250: 1}))
    assert caught.value.exact and isinstance(caught.value, KeyboardInterrupt)
    # the batch of rows 201-300 was being read: it is written, counted, and no more
    assert caught.value.committed_rows == 300 == crm.customers.count()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.recrm_settings(import_batch_size=100)
def test_a_second_ctrl_c_stops_at_once(crm: CRM) -> None:
    with pytest.raises(ImportInterrupted) as caught:
        crm.importer.import_rows(interrupting_rows(1000, {250: 2}))
    assert not caught.value.exact
    assert caught.value.committed_rows == 200 == crm.customers.count()
    assert "at least 200 row(s)" in str(caught.value)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_reader_that_goes_away_is_no_internal_error(tmp_path: Path) -> None:
    """``recrm ... | head``: the pipe closes early; the command stops quietly."""
    import sys

    recrm = str(Path(sys.executable).with_name("recrm"))
    db = f"sqlite:///{tmp_path / 'pipe.db'}"
    for i in range(3):
        subprocess.run([recrm, "--db", db, "customers", "add", "--mobile", f"1381234567{i}",
                        "--name", "王伟"], check=True, capture_output=True)
    proc = subprocess.Popen([recrm, "--db", db, "customers", "find", "--mobile",
                             "13812345670", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # type: ignore[union-attr]
    err = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert proc.wait() in (0, 1, 141)
    assert "internal error" not in err and "Traceback" not in err


def test_undecodable_bytes_on_the_command_line_are_a_usage_error(
        crm: CRM, cli_runner: RecrmCliRunner) -> None:
    # A name typed in a GBK terminal reaches Python as lone surrogates, which no
    # database encodes: `apikey revoke` (a lookup by name, no validated field) printed
    # "internal error: UnicodeEncodeError".
    line = one_error_line(cli_runner.invoke("apikey", "revoke", "\udcc0\udcee"), 2)
    assert line == ("error: apikey revoke: a value given is not valid text (undecodable "
                    "bytes: was it typed in a terminal that is not UTF-8?); nothing was "
                    "changed")


@pytest.mark.recrm_plugins("newsletter", "membership", "channels")
@pytest.mark.parametrize("command", [
    ("newsletter", "campaign", "schedule", "spring", "--at"),
    ("member", "points", "--expire", "--yes", "--now"),
    ("channel", "visit", "--project", "XL2", "--mobile", MOBILE, "--at"),
])
def test_a_moment_outside_what_a_datetime_holds_is_a_usage_error(
        crm: CRM, cli_runner: RecrmCliRunner, command: tuple[str, ...]) -> None:
    # 0001-01-01 in Asia/Shanghai falls before year 1 in UTC: newsletter and channels
    # printed "internal error: OverflowError"; all three read --at/--now with one parser.
    line = one_error_line(cli_runner.invoke(*command, "0001-01-01"), 2)
    assert "'0001-01-01' is out of range" in line
    bad = one_error_line(cli_runner.invoke(*command, "soon"), 2)
    assert "'soon' is not a date or date-time (e.g. 2026-01-31 or 2026-01-31T08:00)" in bad
