"""pytest fixtures for plugin authors (registered through the ``pytest11`` entry point).

Every test that uses ``crm`` runs once per database backend: SQLite (a file in the
test's tmp dir) and PostgreSQL (a fresh schema per test, dropped afterwards)::

    import pytest
    from recrm_core import hookimpl

    @pytest.mark.recrm_plugins("membership")
    def test_owner_is_enrolled(crm):
        ...

    def test_with_a_plugin_object(crm, register_plugin, cli_runner):
        class Tagger:
            @hookimpl
            def recrm_customer_created(self, uow, customer): ...
        register_plugin(Tagger())
        result = cli_runner.invoke("customers", "add", "--mobile", "13812345678")
        assert result.exit_code == 0

Options: ``--recrm-backends=sqlite,postgresql`` (or ``RECRM_TEST_BACKENDS``), and
``RECRM_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).

Also here: :func:`run_together` (:mod:`.races`: race tests, several processes released
together), the browser fixtures (:mod:`.browser`: ``live_server``, ``browser``) and
:mod:`.clock` (``set_clock``: the same work run at another time of day).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ..crm import CRM
from ..db import UnitOfWork
from ..hooks import hookimpl, specs
from ..plugins import plugin_name
from ..plugins import register_plugin as checked_register
from .browser import (
    CHROMEDRIVER,
    CHROMIUM,
    PHONE,
    REQUIRE_BROWSER_ENV,
    browser,
    browser_missing,
    live_port,
    live_server,
    save_screenshot,
    submit_and_wait,
)
from .races import RACE_TIMEOUT, RaceFailed, StartLine, run_together

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("recrm")
    group.addoption(
        "--recrm-backends",
        default=os.environ.get("RECRM_TEST_BACKENDS", ",".join(BACKENDS)),
        help="comma-separated database backends for the crm fixture (sqlite,postgresql)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "recrm_plugins(*plugins): plugins (names or objects) for the crm fixture"
    )
    config.addinivalue_line(
        "markers", "recrm_settings(**sections): settings passed to the crm fixture"
    )


def _backends(config: pytest.Config) -> list[str]:
    chosen = [b.strip() for b in str(config.getoption("--recrm-backends")).split(",") if b.strip()]
    unknown = set(chosen) - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(f"--recrm-backends: unknown {sorted(unknown)}")
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "recrm_backend" in metafunc.fixturenames:
        metafunc.parametrize("recrm_backend", _backends(metafunc.config), scope="function")


def postgres_url() -> str:
    return os.environ.get("RECRM_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@pytest.fixture
def recrm_database_url(recrm_backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of the test's backend."""
    if recrm_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'recrm-test.db'}"
        return
    base = make_url(postgres_url())
    try:
        base.get_dialect().import_dbapi()
    except ImportError as exc:
        # Not a failure of the plugin under test: say what to install, in one line.
        pytest.skip(f"PostgreSQL tests need the {exc.name or base.drivername} driver: "
                    "pip install 'recrm[test]' (or pass --recrm-backends=sqlite)")
    schema = f"recrm_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # a missing server must fail loudly, not skip
        admin.dispose()
        raise RuntimeError(f"PostgreSQL at {base.render_as_string()} unusable: {exc}") from exc
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def recrm_plugins(request: pytest.FixtureRequest) -> list[str | object]:
    """Plugins for ``crm``: from ``@pytest.mark.recrm_plugins(...)``; override to change."""
    marker = request.node.get_closest_marker("recrm_plugins")
    return list(marker.args) if marker else []


@pytest.fixture
def recrm_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for ``crm``: from ``@pytest.mark.recrm_settings(section={...})``."""
    marker = request.node.get_closest_marker("recrm_settings")
    return dict(marker.kwargs) if marker else {}


class SchemaTemplates:
    """Databases migrated once per test run and copied into each test's database, so
    the suite does not run the migrations per test: a SQLite file copied, on
    PostgreSQL the upgrade's SQL (Alembic's offline script) replayed in the test's
    fresh schema. One template per backend and set of migrated plugins."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sqlite: dict[tuple[str, ...], Path] = {}
        self._postgresql: dict[tuple[str, ...], str] = {}

    def copy_into(self, url: str, plugins: Sequence[str | object]) -> None:
        """Give the empty database at ``url`` the schema of the migrated ``plugins``
        (a database that already holds tables is left alone)."""
        from ..schema import installed_branches

        installed = installed_branches()
        names = tuple(sorted({p for p in plugins if isinstance(p, str) and p in installed}))
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            target = Path(parsed.database or "")
            if target.exists():
                return
            if names not in self._sqlite:
                self._sqlite[names] = self._migrated_file(names)
            shutil.copyfile(self._sqlite[names], target)
            return
        engine = create_engine(parsed)
        try:
            with engine.connect() as conn:
                if inspect(conn).get_table_names():
                    return
                if names not in self._postgresql:
                    self._postgresql[names] = self._offline_script(url, names)
                raw: Any = conn.connection.dbapi_connection
                with raw.cursor() as cursor:
                    cursor.execute(self._postgresql[names])
                raw.commit()
        finally:
            engine.dispose()

    def _migrated_file(self, names: tuple[str, ...]) -> Path:
        from ..migrating import upgrade

        path = self.directory / f"template-{'-'.join(names) or 'core'}.db"
        with CRM(database_url=f"sqlite:///{path}", plugins=list(names)) as crm:
            upgrade(crm)
        # closing the last connection checkpointed the WAL into the file: one file to copy
        return path

    def _offline_script(self, url: str, names: tuple[str, ...]) -> str:
        from ..migrating import upgrade_sql

        with CRM(database_url=url, plugins=list(names)) as crm:
            script = upgrade_sql(crm)
        # run as one transaction by the caller: drop the script's own BEGIN/COMMIT
        return "\n".join(line for line in script.splitlines()
                         if line.strip() not in ("BEGIN;", "COMMIT;"))


@pytest.fixture(scope="session")
def recrm_schema_templates(tmp_path_factory: pytest.TempPathFactory) -> SchemaTemplates:
    """The run's migrated templates (see :class:`SchemaTemplates`)."""
    return SchemaTemplates(tmp_path_factory.mktemp("recrm-templates"))


@pytest.fixture
def crm_factory(
    recrm_database_url: str, recrm_schema_templates: SchemaTemplates, tmp_path: Path
) -> Iterator[Callable[..., CRM]]:
    """Build CRMs on the test's database: ``crm_factory(plugins=[...], settings={...})``.

    Every CRM built shares the database. The first one copies the run's migrated
    template of its plugins into it (when it is still empty); each then brings the
    schema up to its own plugins (``create_schema``).
    """
    built: list[CRM] = []

    def factory(
        plugins: list[str | object] | None = None,
        settings: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> CRM:
        if not built:
            recrm_schema_templates.copy_into(recrm_database_url, plugins or [])
        settings = dict(settings or {})
        if "key_file" not in settings:
            # The test's own keys (PostgreSQL has no file to put them beside).
            from ..keys import ensure_key_file

            settings["key_file"] = str(tmp_path / "recrm-test.key")
            ensure_key_file(Path(settings["key_file"]))
        crm = CRM(
            database_url=recrm_database_url,
            plugins=plugins or [],
            settings=settings,
            create_schema=True,
            **kwargs,
        )
        built.append(crm)
        return crm

    yield factory
    for crm in built:
        crm.close()


@pytest.fixture
def crm(
    crm_factory: Callable[..., CRM],
    recrm_plugins: list[str | object],
    recrm_settings: dict[str, Any],
) -> CRM:
    """A CRM on a throwaway database (both backends), with the test's plugins."""
    return crm_factory(plugins=recrm_plugins, settings=recrm_settings)


def problem_of(response: Any, status: int) -> dict[str, Any]:
    """The problem document of an HTTP API ``response`` that must have ``status``:
    ``application/problem+json`` with a ``detail``, and nothing of a traceback or SQL
    in it (``assert problem_of(client.get("/v1/customers/9"), 404)["detail"]``)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"], body
    assert "Traceback" not in response.text and "SELECT " not in response.text, body
    return body


class ApiClients:
    """``api_client(role, staff=...)``: an HTTP client of the ``crm`` fixture's API
    (``recrm_core.api.create_app``, through httpx in-process), sending a new key of
    ``staff`` (added to the directory with ``role`` when missing) in ``role``. The app
    is built on the first call, so plugins registered before it serve their routes.
    ``api_client.app`` is the app; ``api_client(None)`` sends no key."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self._app: Any = None
        self._clients: list[Any] = []

    @property
    def app(self) -> Any:
        if self._app is None:
            from ..api import create_app

            self._app = create_app(self.crm)
        return self._app

    def key(self, role: str = "admin", staff: str | None = None) -> str:
        """A new API key of ``staff`` (default ``<role>1``) acting as ``role``."""
        from ..directory import NoSuchStaff

        staff_id = staff or f"{role}1"
        try:
            self.crm.directory.get(staff_id)
        except NoSuchStaff:
            self.crm.directory.add_staff({"id": staff_id, "name": staff_id, "role": role})
        return self.crm.apikeys.create(staff_id, role=role).key

    def __call__(self, role: str | None = "admin", staff: str | None = None,
                 *, raise_server_exceptions: bool = True) -> Any:
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
            from fastapi.testclient import TestClient

        headers = {"Authorization": f"Bearer {self.key(role, staff)}"} if role else {}
        client = TestClient(self.app, headers=headers,
                            raise_server_exceptions=raise_server_exceptions)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def api_client(crm: CRM) -> Iterator[ApiClients]:
    """Clients of the HTTP API of ``crm`` (needs ``recrm[api]``): ``api_client("sales",
    staff="s1").get("/v1/customers/1")``; see :class:`ApiClients`."""
    clients = ApiClients(crm)
    yield clients
    clients.close()


@pytest.fixture
def register_plugin(crm: CRM) -> Iterator[Callable[..., str]]:
    """Register a plugin object on ``crm`` for this test only; returns its name.

    Checked like ``CRM(plugins=[obj])`` checks it (a misspelt hook or argument is a
    ``PluginError`` naming it); its tables (declared on ``recrm_core.Base``) are
    created, and ``crm.settings_for`` gives its settings (the defaults, or the
    section from ``recrm_settings``).
    """
    names: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        # Named like CRM(plugins=[obj]) names it, so PluginError names it too.
        registered = name or plugin_name(plugin)
        checked_register(crm.pm, plugin, registered)
        names.append(registered)
        crm.create_schema()
        return registered

    yield register
    for name in names:
        crm.pm.unregister(name=name)


@dataclass
class CliResult:
    """What a command did: exit code, stdout, stderr, and stdout parsed as JSON."""

    exit_code: int
    stdout: str
    stderr: str
    result: Result = field(repr=False)

    def json(self) -> Any:
        import json

        return json.loads(self.stdout)


class RecrmCliRunner:
    """Runs ``recrm`` commands in-process against a given CRM."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def invoke(self, *args: str, input: str | None = None) -> CliResult:
        from ..cli import CliContext, cli

        obj = CliContext(crm_factory=lambda _ctx: self.crm)
        runner = CliRunner()
        result = runner.invoke(cli, list(args), obj=obj, input=input, catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr, result)


@pytest.fixture
def cli_runner(crm: CRM) -> RecrmCliRunner:
    """Run ``recrm ...`` against the ``crm`` fixture (with its plugins)."""
    return RecrmCliRunner(crm)


@dataclass
class HookCall:
    name: str
    kwargs: dict[str, Any]


class HookRecorder:
    """Records every hook call made on a CRM (like pytest's HookRecorder)."""

    def __init__(self, crm: CRM) -> None:
        self.calls: list[HookCall] = []

        def before(hook_name: str, _impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
            self.calls.append(HookCall(hook_name, dict(kwargs)))

        def after(*_args: Any) -> None:
            return None

        self._undo = crm.pm.add_hookcall_monitoring(before, after)

    def named(self, name: str) -> list[HookCall]:
        return [c for c in self.calls if c.name == name]

    def close(self) -> None:
        self._undo()


@pytest.fixture
def hook_recorder(crm: CRM) -> Iterator[HookRecorder]:
    """Every hook call made on ``crm`` during the test, in order."""
    recorder = HookRecorder(crm)
    yield recorder
    recorder.close()


@pytest.fixture
def sessions_made(monkeypatch: pytest.MonkeyPatch) -> list[UnitOfWork]:
    """Every unit of work that makes its ORM ``Session`` while the test runs: a plugin
    whose hooks read and write through ``uow.connection`` can show that an operation
    which does not concern it stays off the ORM (the core's operations make none)."""
    made: list[UnitOfWork] = []
    real: property = vars(UnitOfWork)["session"]

    def spied(uow: UnitOfWork) -> Session:
        if not uow.has_session:
            made.append(uow)
        session: Session = real.__get__(uow)
        return session

    monkeypatch.setattr(UnitOfWork, "session", property(spied))
    return made


__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "PHONE",
    "RACE_TIMEOUT",
    "REQUIRE_BROWSER_ENV",
    "ApiClients",
    "CliResult",
    "HookRecorder",
    "RaceFailed",
    "RecrmCliRunner",
    "SchemaTemplates",
    "StartLine",
    "browser",
    "browser_missing",
    "hookimpl",
    "live_port",
    "live_server",
    "postgres_url",
    "problem_of",
    "run_together",
    "save_screenshot",
    "specs",
    "submit_and_wait",
]

