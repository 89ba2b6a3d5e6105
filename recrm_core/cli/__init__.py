"""The reference command line, ``recrm``.

Exit codes: 0 success; 1 the data or state refused it; 2 a usage error. Errors are
one line on stderr, never a traceback. ``--json`` puts exactly one compact JSON
document on stdout. Plugins add sub-commands through ``recrm_register_commands``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import click
from sqlalchemy.exc import DatabaseError, OperationalError

from ..config import CONFIG_FILE, load_settings
from ..crm import CRM
from ..errors import ConfigError, RecrmError
from ..plugins import Hooks, installed_entry_points, load_plugins, new_plugin_manager
from .output import cell, echo, echo_error, emit_json, info, local_time, table

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
    _crm: CRM | None = field(default=None, repr=False)

    def crm(self) -> CRM:
        if self._crm is None:
            factory = self.crm_factory or default_crm_factory
            self._crm = factory(self)
        return self._crm

    def close(self) -> None:
        if self._crm is not None and self.crm_factory is None:
            self._crm.close()


def default_crm_factory(ctx: CliContext) -> CRM:
    crm = CRM(
        database_url=ctx.db,
        config_path=ctx.config_path,
        search_cwd=ctx.config_path is None,
    )
    try:
        crm.create_schema()
    except DatabaseError as exc:
        crm.close()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if isinstance(exc, OperationalError):  # unreachable, locked, no such directory
            raise RecrmError(f"cannot use the database: {reason}") from None
        raise ConfigError(f"{crm.config.database_url!r} is not a usable database: {reason}") \
            from None
    return crm


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


class RecrmGroup(click.Group):
    """Root group that adds the enabled plugins' commands once options are parsed."""

    def _plugin_group(self, ctx: click.Context) -> click.Group:
        cached = ctx.meta.get("recrm.plugin_commands")
        if cached is not None:
            return cast(click.Group, cached)
        scratch = click.Group("plugins")
        obj = ctx.find_object(CliContext)
        try:
            if obj is not None and obj.crm_factory is not None:
                obj.crm().hooks.register_commands(scratch)
            else:
                config = ctx.params.get("config_path")
                settings = load_settings(config, search_cwd=config is None)
                pm = new_plugin_manager()
                load_plugins(pm, settings.plugins)
                Hooks(pm).register_commands(scratch)
        except RecrmError as exc:
            # A broken plugin must not take the CLI down; commands that need the CRM
            # report the error themselves, and `recrm plugins list` shows it.
            ctx.meta["recrm.plugin_error"] = str(exc)
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
        except click.exceptions.Abort:
            echo_error("aborted")
            sys.exit(1)
        except click.ClickException as exc:
            echo_error(exc.format_message())
            sys.exit(exc.exit_code)
        except RecrmError as exc:
            echo_error(str(exc))
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            echo_error("interrupted")
            sys.exit(130)
        except Exception as exc:  # last resort: one line, not a traceback
            if os.environ.get("RECRM_DEBUG"):
                raise
            echo_error(f"internal error: {type(exc).__name__}: {exc} (RECRM_DEBUG=1 shows more)")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(self._plugin_group(ctx).list_commands(ctx))
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        command = self._plugin_group(ctx).get_command(ctx, cmd_name)
        broken = ctx.meta.get("recrm.plugin_error")
        if command is None and broken:
            # The command may belong to the plugin that failed: say so, not just "no such".
            raise click.UsageError(f"no command {cmd_name!r}; plugin commands failed: {broken}")
        if command is None:
            owner = _disabled_plugin_with_command(cmd_name)
            if owner is not None:
                raise click.UsageError(
                    f"{cmd_name!r} comes from the plugin {owner!r}, which is not enabled: add it"
                    " to plugins in recrm.toml (`recrm init` writes one enabling every"
                    " installed plugin)"
                )
        return command


def _disabled_plugin_with_command(cmd_name: str) -> str | None:
    """The installed, not enabled plugin that would add ``cmd_name``, if any."""
    for name, ep in sorted(installed_entry_points().items()):
        scratch = click.Group("probe")
        try:
            pm = new_plugin_manager()
            pm.register(ep.load(), name=name)
            Hooks(pm).register_commands(scratch)
        except Exception:  # a broken plugin simply adds no hint
            continue
        if cmd_name in scratch.commands:
            return name
    return None


@click.group(cls=RecrmGroup)
@click.option("--db", "db", metavar="URL", help="Database URL (default: RECRM_DATABASE_URL, "
              f"then {CONFIG_FILE}, then sqlite:///recrm.db).")
@click.option("--config", "config_path", metavar="PATH", type=click.Path(dir_okay=False),
              help=f"Configuration file (default: ./{CONFIG_FILE}).")
@click.version_option(package_name="recrm")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config_path: str | None) -> None:
    """recrm — a customer-relationship system for real-estate developers."""
    obj = ctx.ensure_object(CliContext)
    if db is not None:
        obj.db = db
    if config_path is not None:
        obj.config_path = config_path
    ctx.call_on_close(obj.close)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="recrm")


# Register the core's command groups (imported for their side effect on ``cli``).
from . import cases, consent, customers, demo, importing, interactions, setup  # noqa: E402,F401

__all__ = [
    "CliContext",
    "cell",
    "cli",
    "echo",
    "emit_json",
    "get_crm",
    "info",
    "local_time",
    "main",
    "pass_crm",
    "table",
]
