"""``recrm customers import`` forks its validation worker before it builds the CRM
(recrm_core.importrows.validating_early): the import claims it only for the file and
settings it was forked for, and imports, reports and refuses exactly as without it."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from recrm_core import CRM, importrows
from recrm_core.cli import CliContext, cli
from recrm_core.cli import importing as command
from recrm_core.idcards import decrypt, match_value
from recrm_core.identity import id_card_check_character
from recrm_core.tables import IdentityRow

# a title row, then per copy: a row created, one merged into it, two refused (mobile,
# birth date); the email repeats across copies
ROWS = ("客户名单\n"
        "name,mobile,email,birth_date,project\n"
        "王伟,13812345678,WW@X.cn,1980-01-01,A\n"
        ",13812345678,,,B\n"
        "坏,1234,,,A\n"
        "张三,13712345678,,2999-01-01,\n")


def write(path: Path, copies: int = 40) -> Path:
    lines = ROWS.splitlines(keepends=True)
    body = [lines[0], lines[1]]
    for n in range(copies):  # distinct mobiles per copy
        body += [line.replace("138123", f"138{n:03d}").replace("137123", f"137{n:03d}")
                 for line in lines[2:]]
    path.write_text("".join(body), encoding="utf-8")
    return path


def config_for(tmp_path: Path, url: str, name: str = "recrm.toml",
               key_file: str | None = None) -> Path:
    config = tmp_path / name
    keys = f"key_file = {json.dumps(key_file)}\n" if key_file else ""
    config.write_text(f"database_url = {json.dumps(url)}\nimport_batch_size = 7\n{keys}",
                      encoding="utf-8")
    return config


def recrm(*args: str) -> Any:
    """The CLI in this process, building its own CRM as a terminal's ``recrm`` does."""
    return CliRunner().invoke(cli, list(args), obj=CliContext(), catch_exceptions=False)


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Every file is worth a worker; notes each early worker forked and what the
    import claimed, and whether the worker was forked before the CRM was built."""
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 0)
    # The CLI runs here inside the test process, where earlier tests may have left
    # threads running: only threads started from now on count, as in a fresh `recrm`.
    already = threading.active_count()
    monkeypatch.setattr(importrows, "start_method",
                        lambda: "fork" if threading.active_count() <= already else "forkserver")
    notes: dict[str, list[Any]] = {"forked": [], "claimed": [], "before_crm": []}
    fork, claim = importrows._fork_early, importrows.claim_early

    def forking(*args: Any) -> Any:
        early = fork(*args)
        notes["forked"].append(early)
        return early

    def claiming(*args: Any) -> Any:
        early = claim(*args)
        notes["claimed"].append(early)
        return early

    original = CRM.__init__

    def building(self: CRM, *args: Any, **kwargs: Any) -> None:
        notes["before_crm"].append(importrows._early is not None)
        original(self, *args, **kwargs)

    monkeypatch.setattr(importrows, "_fork_early", forking)
    monkeypatch.setattr(importrows, "claim_early", claiming)
    monkeypatch.setattr("recrm_core.importing.service.claim_early", claiming)
    monkeypatch.setattr(CRM, "__init__", building)
    return notes


def _ended(notes: dict[str, list[Any]]) -> None:
    for early in notes["forked"]:
        if early is not None:
            assert not early.process.is_alive()
    assert not multiprocessing.active_children()


def test_the_worker_is_forked_before_the_crm_and_imports_as_in_process(
    crm: CRM, tmp_path: Path, forked: dict[str, list[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write(tmp_path / "in.csv")
    errors = tmp_path / "errors.csv"
    result = recrm("--config", str(config_for(tmp_path, crm.config.database_url)),
                   "customers", "import", str(path), "--errors", str(errors), "--json")
    assert result.exit_code == 0, result.stderr
    [early] = forked["forked"]
    assert early is not None and forked["before_crm"] == [True]
    assert forked["claimed"] == [early]  # and it read the file
    _ended(forked)

    # The same file, validated in this process, into a database of its own.
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 10**12)
    other = CRM(database_url=f"sqlite:///{tmp_path / 'other.db'}", create_schema=True)
    other.close()
    errors_in_process = tmp_path / "errors-in-process.csv"
    again = recrm("--config", str(config_for(tmp_path, other.config.database_url, "o.toml")),
                  "customers", "import", str(path), "--errors", str(errors_in_process),
                  "--json")
    assert forked["forked"][1:] == [None]
    assert (again.exit_code, again.stdout, again.stderr) == \
        (result.exit_code, result.stdout, result.stderr)
    assert json.loads(result.stdout) == {"rows": 160, "created": 40, "merged": 40,
                                         "rejected": 80, "suspected_duplicates": 40}
    assert errors.read_bytes() == errors_in_process.read_bytes()


@pytest.mark.parametrize("problem", ["database", "header", "encoding", "actor", "fifo"])
def test_an_import_that_fails_before_its_first_batch_says_what_it_said_and_ends_the_worker(
    problem: str, crm: CRM, tmp_path: Path, forked: dict[str, list[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write(tmp_path / "in.csv")
    url = crm.config.database_url
    args = ["customers", "import", str(path)]
    if problem == "database":
        url = f"sqlite:///{tmp_path / 'no such directory' / 'x.db'}"
    elif problem == "header":
        path.write_text(path.read_text(encoding="utf-8").replace("project", "colour"),
                        encoding="utf-8")
    elif problem == "encoding":
        args += ["--encoding", "klingon"]
    elif problem == "actor":
        args = ["--as", "analyst", *args]
    else:  # opening a FIFO would wait for a writer: refused, never opened
        path.unlink()
        os.mkfifo(path)
    config = str(config_for(tmp_path, url))
    early = recrm("--config", config, *args)
    assert early.exit_code in (1, 2)
    assert [e is not None for e in forked["forked"]] == [problem != "fifo"]
    _ended(forked)
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 10**12)
    late = recrm("--config", config, *args)
    assert forked["forked"][1:] == [None]
    assert (early.exit_code, early.stdout, early.stderr) == \
        (late.exit_code, late.stdout, late.stderr)
    assert crm.customers.count() == 0


def test_a_file_replaced_after_the_fork_is_read_by_a_worker_of_its_own(
    crm: CRM, tmp_path: Path, forked: dict[str, list[Any]],
) -> None:
    """The worker forked early read the file that was there; the import reads the one
    that is there when it opens it."""
    path = write(tmp_path / "in.csv")
    size, region = crm.config.import_batch_size, crm.config.default_region
    with importrows.validating_early(str(path), None, size, region):
        [early] = forked["forked"]
        assert early is not None
        replacement = write(tmp_path / "new.csv", copies=3)
        os.replace(replacement, path)
        result = crm.importer.import_file(str(path))
    assert forked["claimed"] == [None] and not early.process.is_alive()
    assert (result.rows, result.created) == (12, 3)


@pytest.mark.parametrize("differs", ["size", "region", "encoding"])
def test_a_worker_forked_for_other_settings_is_not_used(
    differs: str, crm: CRM, tmp_path: Path, forked: dict[str, list[Any]],
) -> None:
    path = write(tmp_path / "in.csv")
    size, region = crm.config.import_batch_size, crm.config.default_region
    encoding = None
    if differs == "size":
        size += 1
    elif differs == "region":
        region = "HK"
    else:
        encoding = "gb18030"
    with importrows.validating_early(str(path), encoding, size, region):
        result = crm.importer.import_file(str(path))
    assert forked["claimed"] == [None]
    _ended(forked)
    assert (result.rows, result.created, result.merged, result.rejected) == (160, 40, 40, 80)


def test_a_terminal_import_reads_in_the_worker_forked_before_its_progress_bar(
    crm: CRM, tmp_path: Path, forked: dict[str, list[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a terminal the progress bar runs a thread, so a worker forked then would come
    from a fork server and the file would be read in the importing process; the one
    forked before the bar started reads it (measured: the importing process's CPU at
    200k rows 11.0-11.3 s before, 8.9-9.0 s after)."""
    @contextmanager
    def bar(enabled: bool) -> Any:
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait)
        thread.start()
        try:
            yield None
        finally:
            stop.set()
            thread.join()

    used: list[str] = []
    for name in ("_in_worker", "_read_in_worker"):
        original = getattr(importrows, name)

        def noted(*args: Any, name: str = name, original: Any = original) -> Any:
            used.append(name)
            return original(*args)

        monkeypatch.setattr(importrows, name, noted)
    monkeypatch.setattr(command, "_progress_bar", bar)
    path = write(tmp_path / "in.csv")
    result = recrm("--config", str(config_for(tmp_path, crm.config.database_url)),
                   "customers", "import", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    assert used == ["_read_in_worker"] and forked["claimed"][0] is not None
    assert json.loads(result.stdout)["created"] == 40
    _ended(forked)


def test_id_numbers_are_hashed_with_the_keys_the_import_loads_later(
    crm: CRM, tmp_path: Path, forked: dict[str, list[Any]],
) -> None:
    """The worker forked before the CRM has no keys: it gets them from the import once
    loaded, as a worker forked later does; what is stored is the importer's hash and
    encryption of each number."""
    lines = ["name,mobile,id_card"]
    for n in range(60):
        body = f"110105198001{n % 28 + 1:02d}{n:03d}"
        lines.append(f"客户{n},139{n:08d},{body + id_card_check_character(body)}")
    path = tmp_path / "cards.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = config_for(tmp_path, crm.config.database_url, key_file=crm.config.key_file)
    result = recrm("--config", str(config), "customers", "import", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    assert forked["claimed"][0] is not None
    assert json.loads(result.stdout)["created"] == 60
    keys = crm.keys
    with crm.engine.connect() as conn:
        stored = dict(conn.execute(select(IdentityRow.value, IdentityRow.display)
                                   .where(IdentityRow.kind == "id_card")).all())
    numbers = [line.rsplit(",", 1)[1] for line in lines[1:]]
    assert {match_value(keys, n) for n in numbers} == set(stored)
    assert sorted(decrypt(keys, d) for d in stored.values()) == sorted(numbers)
    _ended(forked)
