"""The reference command line, ``recrm``.

Exit codes: 0 success; 1 the data or state refused it (or an internal error); 2 a
usage error; 130 interrupted (Ctrl-C); 141, silently, when the reader of stdout went
away (``recrm ... | head``), as a shell shows a pipe closed early. Errors are one line
on stderr, never a traceback unless ``--debug`` (or ``RECRM_DEBUG=1``) asks for one. ``--json`` puts
exactly one compact JSON document on stdout. Plugins add sub-commands through
``recrm_register_commands``.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from .. import collector
from ..config import CONFIG_FILE, load_settings
from ..errors import ConfigError, RecrmError, database_failure, undecodable_text
from ..terminal import printable
from .output import (
    cell,
    confirm_or_refuse,
    echo,
    echo_error,
    emit_json,
    info,
    local_time,
    on_terminal,
    show_rejections,
    show_warning,
    table,
)

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from ..config import CoreSettings
    from ..crm import CRM
    from ..models import Actor

#: the core's commands: name -> (the module defining it, its one-line help). Each is
#: imported when it runs, so ``recrm --help`` and ``recrm customers count`` do not pay
#: for the importer, the demo or Faker; ``tests/test_cli.py`` checks the help here
#: against the commands' own.
CORE_COMMANDS: dict[str, tuple[str, str]] = {
    "cases": ("cases", "Service cases: open, route, transfer, escalate, sweep, resolve, ..."),
    "incidents": ("incidents", "Incidents behind many cases: open, link, show, list, close."),
    "consent": ("consent", "Consent by channel and purpose; the newest record decides."),
    "db": ("db",
           "Schema migrations: upgrade, downgrade, current, history, check, sql; rotate-key."),
    "customers": ("customers",
                  "Customers: add, import, find, show, disclose, export-list, merge, ..."),
    "demo": ("demo", "Build a demo developer company and print what it holds."),
    "init": ("setup", "Write a starter recrm.toml (if none exists) and create the schema."),
    "interactions": ("interactions", "The interaction timeline."),
    "plugins": ("setup", "Installed plugins."),
    "projects": ("projects", "Projects (楼盘): add, list, rename."),
    "staff": ("directory", "The staff directory: add, list, leave."),
    "tasks": ("tasks", "Follow-up tasks: add, list, done, cancel; sweep (cron), report."),
    "pool": ("pool", "The public pool (公海): sweep (cron), list, claim, history, report."),
    "departments": ("directory", "Departments and the projects they serve: add, list."),
    "audit": ("audit", "The audit log: list, prune."),
    "privacy": ("privacy", "Privacy: retention sweep (export and erase: recrm customers)."),
    "serve": ("api", "Serve the HTTP API (needs recrm[api]): /v1, /docs, /openapi.json, /healthz."),
    "apikey": ("api", "API keys: create, list, revoke (admin)."),
    "report": ("reports", "Management reports: list, run one (table, JSON, CSV, XLSX, SVG, "
                          "PNG), dashboard."),
    "webhook": ("webhooks",
                "Webhooks: add, list, remove, events, deliveries (admin); deliver (cron)."),
}

#: entry-point group where a plugin may name its command groups, so that listing them
#: (``recrm --help``) imports no plugin: ``member = "recrm_membership.cli:member"``
COMMANDS_ENTRY_POINT_GROUP = "recrm.commands"


def load_core_commands() -> None:
    """Import every core command module (for tools that walk the whole CLI)."""
    import importlib

    for module, _ in CORE_COMMANDS.values():
        importlib.import_module(f"{__name__}.{module}")


F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliContext:
    """What sub-commands share: the options of the ``recrm`` group and a lazy CRM.

    Tests (and ``recrm_core.testing``) pass their own ``crm_factory`` so a command
    runs against the test's CRM with the test's plugin objects.
    """

    db: str | None = None
    config_path: str | None = None
    crm_factory: Callable[[CliContext], CRM] | None = None
    #: whether the database must be at the code's revisions (``recrm db`` turns it off)
    check_schema: bool = True
    #: ``--as ROLE[:STAFF_ID]`` (or ``RECRM_AS``), as given
    acting_as: str | None = None
    _crm: CRM | None = field(default=None, repr=False)
    _actors: dict[str | None, Actor] = field(default_factory=dict, repr=False)
    #: the settings read, and the (--config, --db) they were read for
    _settings: tuple[tuple[str | None, str | None], CoreSettings] | None = \
        field(default=None, repr=False)

    def settings(self) -> CoreSettings:
        """The configuration the command runs with (``--config`` or ``./recrm.toml``,
        ``RECRM_DATABASE_URL``, ``--db``), read once: finding the plugins' commands,
        the import's early worker and the CRM built for the command all use it.
        Raises ``ConfigError`` (each time asked) when it cannot be read."""
        given = (self.config_path, self.db)
        if self._settings is None or self._settings[0] != given:
            read = load_settings(self.config_path, {"database_url": self.db},
                                 search_cwd=self.config_path is None)
            self._settings = (given, read)
        return self._settings[1]

    def crm(self) -> CRM:
        if self._crm is None:
            factory = self.crm_factory or default_crm_factory
            with collector.held():
                self._crm = factory(self)
        return self._crm

    def close(self) -> None:
        if self._crm is not None and self.crm_factory is None:
            self._crm.close()


def default_crm_factory(ctx: CliContext) -> CRM:
    from sqlalchemy.exc import DatabaseError, OperationalError

    from ..crm import CRM

    crm = CRM(
        config=ctx.settings(),
        config_path=ctx.config_path,
        search_cwd=ctx.config_path is None,
    )
    misplaced = _sqlite_path_problem(crm)
    if misplaced:  # SQLite would say only "unable to open database file", on every path
        crm.close()
        raise ConfigError(misplaced)
    try:
        if ctx.check_schema:
            from ..schema import ensure_current

            ensure_current(crm)
    except RecrmError:
        crm.close()
        raise
    except DatabaseError as exc:
        crm.close()
        reason = _driver_reason(exc)
        if isinstance(exc, OperationalError):  # unreachable, locked
            raise RecrmError(f"cannot use the database: {reason}") from None
        raise ConfigError(f"{crm.config.database_url!r} is not a usable database: {reason}") \
            from None
    return crm


#: the longest file or directory name, in bytes, of the file systems in use (ext4,
#: XFS, Btrfs, APFS; NTFS counts UTF-16 units)
_NAME_MAX = 255
#: the longest path SQLite opens (its Unix VFS's MAX_PATHNAME)
_SQLITE_PATH_MAX = 512


def _sqlite_path_problem(crm: CRM) -> str | None:
    """Why a SQLite database file cannot be where its URL says (a name too long, no
    such directory, a directory), naming the path; None when the path is not the
    trouble."""
    import os

    url = crm.engine.url
    path = url.database
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:" or \
            url.query.get("uri"):
        return None
    # SQLite would say "unable to open database file"; it adds "-journal" to the name
    full = os.path.abspath(path)
    *folders, name = full.split(os.sep)
    limits = [("a name in it", len(os.fsencode(n)), _NAME_MAX) for n in folders] + [
        ("its name", len(os.fsencode(name)), _NAME_MAX - len("-journal")),
        ("its full path", len(os.fsencode(full)), _SQLITE_PATH_MAX - len("-journal"))]
    for what, size, limit in limits:
        if size > limit:
            return (f"database file {path[:60]!r}{'…' if len(path) > 60 else ''}: {what} is "
                    f"{size} bytes long, longer than the {limit} bytes it may have (--db, "
                    "RECRM_DATABASE_URL or database_url in recrm.toml)")
    if os.path.isdir(path):
        return f"database file {path!r} is a directory"
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return f"database file {path!r}: no directory {parent!r}"
    return None


def _driver_reason(exc: Any) -> str:
    """What the driver said about an unusable database, without SQL or parameters:
    the primary message (PostgreSQL's, without its DETAIL of row values), else the
    driver's first line; SQLAlchemy's own text carries the statement, never used."""
    orig = exc.orig
    primary = getattr(getattr(orig, "diag", None), "message_primary", None)
    if isinstance(primary, str) and primary.strip():
        return primary.strip()
    lines = str(orig).strip().splitlines() if orig is not None else []
    return lines[0] if lines else type(orig or exc).__name__


AS_ENV = "RECRM_AS"
STAFF_ENV = "RECRM_STAFF"


def current_actor(staff: str | None = None, option: str = "--actor") -> Actor:
    """Who runs this command: ``--as ROLE[:STAFF_ID]`` (or ``RECRM_AS``), with the staff
    id of a command's own ``--actor STAFF`` (``option``) when given. Without a role the
    directory's role of the staff member is taken, else ``admin``; without a staff id,
    ``RECRM_STAFF``, else the operating-system user. A role the directory contradicts
    is refused (an admin of the directory may act in any role, to see what it sees)."""
    ctx = click.get_current_context()
    obj = cast(CliContext, ctx.find_object(CliContext))
    if staff in obj._actors:
        return obj._actors[staff]
    actor = _resolve_actor(obj, staff, option)
    obj._actors[staff] = actor
    return actor


def _resolve_actor(obj: CliContext, staff: str | None, option: str) -> Actor:
    import getpass

    from pydantic import ValidationError

    from ..errors import Refused
    from ..models import Actor, first_error
    from ..roles import parse_role

    role: str | None = None
    given_staff: str | None = None
    if obj.acting_as is not None and obj.acting_as.strip():
        role_text, _, given_staff = obj.acting_as.partition(":")
        try:
            role = parse_role(role_text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--as") from None
        given_staff = given_staff.strip() or None
    staff_id = staff or given_staff or os.environ.get(STAFF_ENV, "").strip() or None
    if staff_id is None:
        try:
            staff_id = getpass.getuser()
        except (KeyError, OSError):  # no user name for the uid (a bare container)
            staff_id = "cli"
    try:
        probe = Actor(staff_id=staff_id, role=role or "admin", channel="cli")
    except ValidationError as exc:
        hint = option if staff else ("--as" if given_staff else STAFF_ENV)
        raise click.BadParameter(first_error(exc)[1], param_hint=hint) from None
    listed = obj.crm().directory.role_of(probe.staff_id)
    if role is None:
        role = listed or "admin"
    elif listed is not None and listed not in (role, "admin"):
        raise Refused(f"staff {probe.staff_id!r} is {listed} in the directory, not {role}")
    return probe.model_copy(update={"role": role})


def get_crm(ctx: click.Context | None = None) -> CRM:
    """The CRM of the running ``recrm`` command (honours ``--db``/``--config``)."""
    ctx = ctx or click.get_current_context()
    return cast(CliContext, ctx.find_object(CliContext)).crm()


def pass_crm(f: F) -> F:
    """Decorator: pass the command's CRM as the first argument."""

    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return ctx.invoke(f, get_crm(ctx), *args, **kwargs)

    return cast(F, functools.update_wrapper(wrapper, f))


DEBUG_ENV = "RECRM_DEBUG"


class Failure(click.ClickException):
    """An error no command handled, already put into its one line; ``__cause__`` is
    the original exception."""


class UsageFailure(Failure):
    """A value on the command line that no command could use (exit 2)."""

    exit_code = 2


class Interrupted(Failure):
    """Ctrl-C: the shell's convention for a process ended by SIGINT."""

    exit_code = 130


def _debug_from_env() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _operation(exc: BaseException) -> str:
    """The command that was running, e.g. ``customers import``: the innermost click
    context the exception passed through (the command's own context is gone by
    the time the root group sees the exception)."""
    leaf: click.Context | None = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        found = frame.f_locals.get("ctx")
        if isinstance(found, click.Context):
            leaf = found
    names: list[str] = []
    while leaf is not None and leaf.parent is not None:
        names.append(leaf.info_name or "")
        leaf = leaf.parent
    return " ".join(reversed(names)) or "recrm"


def failure(exc: BaseException, debug: bool) -> Failure:
    """The one line for an exception no command handled: the operation and the kind
    of failure only. Its text may hold SQL, parameters and personal data (a
    constraint's refused row), so it is shown only by ``--debug``, with the traceback."""
    from ..importing import ImportInterrupted

    operation = _operation(exc)
    if isinstance(exc, ImportInterrupted):
        at_least = "" if exc.exact else "at least "
        return Interrupted(
            f"{operation} interrupted: {at_least}{exc.committed_rows} row(s) were committed"
            "; running the same import again is safe and finishes the rest")
    if isinstance(exc, KeyboardInterrupt | click.exceptions.Abort):  # Abort: at a prompt
        return Interrupted(f"{operation} interrupted")
    if debug:
        text = "".join(traceback.format_exception(exc))
        click.echo(printable(text, lines=True), err=True, nl=False)
    if undecodable_text(exc):
        # Bytes a terminal that is not UTF-8 (GBK) put on the command line reach Python
        # as lone surrogates, which no database can store; the fields that validate say
        # so themselves (values.check_storable), this is the net for any other.
        return UsageFailure(f"{operation}: a value given is not valid text (undecodable "
                            "bytes: was it typed in a terminal that is not UTF-8?); nothing "
                            "was changed")
    kind = database_failure(exc) or type(exc).__name__
    hint = "" if debug else f" (--debug or {DEBUG_ENV}=1 shows the traceback)"
    return Failure(f"{operation}: internal error: {kind}{hint}")


#: the exit code when stdout's reader went away (128 + SIGPIPE, as a shell reports it)
PIPE_CLOSED = 141


class RecrmGroup(click.Group):
    """Root group that adds the enabled plugins' commands once options are parsed."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, RecrmError):
            raise
        except click.exceptions.Abort as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):  # Ctrl-C at a prompt
                raise failure(exc, False) from exc
            raise
        except BrokenPipeError:
            # The reader (``| head``) took what it wanted: no error of ours. Stdout goes
            # to /dev/null so the interpreter's final flush does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(PIPE_CLOSED)
        except (Exception, KeyboardInterrupt) as exc:
            # Here, not in main(): click turns a KeyboardInterrupt reaching main() into
            # a blank line and "Aborted", and the --debug option is known only here.
            raise failure(exc, bool(ctx.params.get("debug")) or _debug_from_env()) from exc

    def _plugin_group(self, ctx: click.Context) -> click.Group:
        cached = ctx.meta.get("recrm.plugin_commands")
        if cached is not None:
            return cast(click.Group, cached)
        scratch = click.Group("plugins")
        obj = _cli_context(ctx)
        try:
            if obj.crm_factory is not None:
                obj.crm().hooks.register_commands(scratch)
            else:
                from ..plugins import Hooks, load_plugins, new_plugin_manager

                pm = new_plugin_manager()
                load_plugins(pm, obj.settings().plugins)
                Hooks(pm).register_commands(scratch)
        except RecrmError as exc:
            # A broken plugin must not take the CLI down; commands that need the CRM
            # report the error themselves, and `recrm plugins list` shows it.
            ctx.meta["recrm.plugin_error"] = exc
        ctx.meta["recrm.plugin_commands"] = scratch
        return scratch

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; in standalone mode map every error to one line and an exit code."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.Abort as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt):  # Ctrl-C while parsing
                echo_error("interrupted")
                sys.exit(Interrupted.exit_code)
            echo_error("aborted")
            sys.exit(1)
        except click.exceptions.NoArgsIsHelpError as exc:
            # A group run bare: click's help, which is no error line (exit 2, as click).
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            echo_error(exc.format_message())
            sys.exit(exc.exit_code)
        except RecrmError as exc:
            echo_error(str(exc))
            sys.exit(exc.exit_code)
        except (Exception, KeyboardInterrupt) as exc:  # outside a command: while parsing
            last = failure(exc, _debug_from_env())
            echo_error(last.format_message())
            sys.exit(last.exit_code)
        sys.exit(code if isinstance(code, int) else 0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx)) | set(CORE_COMMANDS)
        declared = self._declared_plugin_commands(ctx)
        if declared is not None:
            names.update(declared)
        else:
            names.update(self._plugin_group(ctx).list_commands(ctx))
        return sorted(names)

    def _declared_plugin_commands(self, ctx: click.Context) -> dict[str, str] | None:
        """Command name -> plugin, for the enabled plugins that name their commands in
        entry-point metadata; None when a plugin does not (it must be imported to
        know), or when the CLI runs against a given CRM (tests)."""
        if "recrm.declared_commands" not in ctx.meta:
            ctx.meta["recrm.declared_commands"] = self._read_declared_commands(ctx)
        return cast("dict[str, str] | None", ctx.meta["recrm.declared_commands"])

    @staticmethod
    def _read_declared_commands(ctx: click.Context) -> dict[str, str] | None:
        obj = _cli_context(ctx)
        if obj.crm_factory is not None:
            return None
        from ..plugins import declared_commands, disabled_by_env

        try:
            enabled = set(obj.settings().plugins)
        except RecrmError:
            return None  # the commands that need the configuration report it
        enabled -= disabled_by_env()
        declared = declared_commands(COMMANDS_ENTRY_POINT_GROUP)
        if not enabled <= set(declared.values()):
            return None
        return {name: plugin for name, plugin in declared.items() if plugin in enabled}

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, without importing the commands: the core's
        help comes from :data:`CORE_COMMANDS`, a declared plugin group's names its
        plugin."""
        declared = self._declared_plugin_commands(ctx) or {}
        helps: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                command: click.Command | None = self.commands[name]
            elif name in CORE_COMMANDS:
                helps.append((name, CORE_COMMANDS[name][1]))
                continue
            elif name in declared:
                helps.append((name, f"Commands of the {declared[name]} plugin."))
                continue
            else:
                command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                helps.append((name, command.get_short_help_str(limit=1000)))
        if helps:
            # click's own layout: each help cut to what fits beside the longest name
            limit = formatter.width - 6 - max(len(name) for name, _ in helps)
            with formatter.section("Commands"):
                formatter.write_dl([(name, _shortened(text, limit))
                                    for name, text in helps])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in CORE_COMMANDS and cmd_name not in self.commands:
            import importlib

            importlib.import_module(f"{__name__}.{CORE_COMMANDS[cmd_name][0]}")
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        command = self._plugin_group(ctx).get_command(ctx, cmd_name)
        broken: RecrmError | None = ctx.meta.get("recrm.plugin_error")
        if command is None and broken is not None:
            # The command may belong to the plugin that failed: say so, not just "no such",
            # with the failure's exit code (1: a plugin failed to load, 2: the configuration).
            failed = RecrmError(f"no command {cmd_name!r}; plugin commands failed: {broken}")
            failed.exit_code = broken.exit_code
            raise failed
        if command is None:
            owner = _disabled_plugin_with_command(cmd_name)
            if owner is not None:
                raise click.UsageError(
                    f"{cmd_name!r} comes from the plugin {owner!r}, which is not enabled: add it"
                    " to plugins in recrm.toml (`recrm init` writes one enabling every"
                    " installed plugin)"
                )
        return command


def _cli_context(ctx: click.Context) -> CliContext:
    """The command's :class:`CliContext`, holding the ``recrm`` group's ``--db`` and
    ``--config``: also while the sub-command is looked up, which click does before the
    group's own callback runs."""
    obj = ctx.ensure_object(CliContext)
    for option in ("db", "config_path"):
        value = ctx.params.get(option)
        if value is not None:
            setattr(obj, option, value)
    return obj


def _shortened(text: str, limit: int) -> str:
    """``text`` cut at a word to at most ``limit`` characters, as click lists commands."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 3, 1)].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "..."


def _disabled_plugin_with_command(cmd_name: str) -> str | None:
    """The installed, not enabled plugin that would add ``cmd_name``, if any."""
    from ..plugins import Hooks, installed_entry_points, new_plugin_manager

    for name, ep in sorted(installed_entry_points().items()):
        scratch = click.Group("probe")
        try:
            pm = new_plugin_manager()
            pm.register(ep.load(), name=name)
            Hooks(pm).register_commands(scratch)
        except (Exception, SystemExit):  # a broken plugin simply adds no hint
            continue
        if cmd_name in scratch.commands:
            return name
    return None


@click.group(cls=RecrmGroup)
@click.option("--db", "db", metavar="URL", help="Database URL (default: RECRM_DATABASE_URL, "
              f"then {CONFIG_FILE}, then sqlite:///recrm.db).")
@click.option("--config", "config_path", metavar="PATH", type=click.Path(dir_okay=False),
              help=f"Configuration file (default: ./{CONFIG_FILE}).")
@click.option("--debug", is_flag=True, help=f"On an internal error, also print the "
              f"traceback on stderr (also {DEBUG_ENV}=1).")
@click.option("--as", "acting_as", metavar="ROLE[:STAFF_ID]", envvar=AS_ENV,
              help="Act in this role (admin, manager, sales, service, partner, analyst), as "
              f"this staff id (default: {STAFF_ENV}, else the system user; the role: the "
              f"directory's, else admin). Also {AS_ENV}.")
@click.version_option(package_name="recrm")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config_path: str | None, debug: bool,
        acting_as: str | None) -> None:
    """recrm — a customer-relationship system for real-estate developers."""
    collector.release()  # the command is found; its CRM is built under collector.held()
    obj = _cli_context(ctx)
    if acting_as is not None:
        # Checked here, whether or not the command asks who acts: a misspelt role
        # must not pass quietly on the commands that happen not to look.
        from ..roles import parse_role

        try:
            parse_role(acting_as.partition(":")[0])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--as") from None
        obj.acting_as = acting_as
    ctx.call_on_close(obj.close)


def local_moment(value: str | None, zone: ZoneInfo, option: str) -> dt.datetime | None:
    """``2026-01-31`` or ``2026-01-31T08:00`` (or ``2026-01-31 08:00``) in the business
    time zone ``zone``, or with an offset, as UTC; None for None. A usage error (exit 2)
    names ``option`` when the text is no such moment or its day is outside the range
    of every entered day (:func:`~recrm_core.values.check_day`)."""
    if value is None:
        return None
    from ..values import FIRST_DAY, LAST_DAY, check_day  # not at every start

    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value[:40]!r} is not a date or date-time (e.g. 2026-01-31 or 2026-01-31T08:00)",
            param_hint=option) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    out_of_range = f"{value[:40]!r} is out of range ({FIRST_DAY} to {LAST_DAY})"
    try:
        check_day(parsed.date())
    except ValueError:
        raise click.BadParameter(out_of_range, param_hint=option) from None
    moment = parsed.astimezone(dt.UTC)
    try:
        # The services see UTC: the range's first hours east of UTC are the day before.
        check_day(moment.date())
    except ValueError:
        raise click.BadParameter(f"{out_of_range}: it is {moment:%Y-%m-%d %H:%M} UTC",
                                 param_hint=option) from None
    return moment


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    collector.hold()  # start-up's objects all live on (collector.py)
    warnings.showwarning = show_warning  # this process is the CLI: its own display
    cli.main(args=argv, prog_name="recrm")


__all__ = [
    "CORE_COMMANDS",
    "CliContext",
    "cell",
    "cli",
    "confirm_or_refuse",
    "current_actor",
    "echo",
    "emit_json",
    "get_crm",
    "info",
    "load_core_commands",
    "local_moment",
    "local_time",
    "main",
    "on_terminal",
    "pass_crm",
    "show_rejections",
    "table",
]
