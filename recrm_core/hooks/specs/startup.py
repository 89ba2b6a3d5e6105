"""Hook specifications: configuration, start-up and the CLI's commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import hookspec

if TYPE_CHECKING:
    import click
    from pydantic import BaseModel

    from ...crm import CRM


# -- configuration and start-up ---------------------------------------------------


@hookspec
def recrm_register_settings(register: Callable[[str, type[BaseModel]], None]) -> None:
    """Declare the pydantic model for the plugin's section of ``recrm.toml``.

    Fires once while a :class:`~recrm_core.CRM` is built, before
    :func:`recrm_startup`; outside any transaction.

    :param register: call ``register(section, Model)``; the core validates the
        ``[section]`` table of the configuration (or ``CRM(settings={section: ...})``)
        against ``Model`` and reports a clear error on bad values. The validated
        instance is then available as ``crm.settings_for(section)``.

    Return value is ignored.
    """


@hookspec
def recrm_declare_tables() -> None:
    """Declare the plugin's tables on :class:`~recrm_core.Base`: import the modules
    that define them.

    For a plugin whose package does not import its tables when it is loaded (the
    recommended light entry point, ``docs/plugins.md``): fires when the core needs
    every enabled plugin's declared tables — ``recrm db check`` and ``recrm db
    revision --autogenerate``, the privacy scan after an erasure — and, for a plugin
    without a migration branch, before any command creates its missing tables. A
    plugin whose package imports its tables need not implement it. Outside any
    transaction; may fire more than once (importing twice is free).

    Return value is ignored.
    """


@hookspec
def recrm_startup(crm: CRM) -> None:
    """The CRM is built: plugins are loaded and settings validated.

    Fires once per :class:`~recrm_core.CRM` instance, after settings, outside any
    transaction. Use it to check settings or warm caches. Raising aborts building
    the CRM with a :class:`~recrm_core.errors.PluginError`.

    :param crm: the CRM being built.
    """


@hookspec
def recrm_register_commands(cli: click.Group) -> None:
    """Add sub-commands or sub-groups to the ``recrm`` command line.

    Fires for every enabled plugin when the CLI looks up a command that is not
    the core's (and for ``recrm --help`` when a plugin names no groups in its
    ``recrm.commands`` entry points), before a database is opened; outside any
    transaction. Inside a command, get the CRM with
    :func:`recrm_core.cli.get_crm` (or the ``@pass_crm`` decorator) so the
    ``--db``/``--config`` options apply.

    :param cli: the group collecting the plugins' commands, which ``recrm`` runs as
        its own; call ``cli.add_command(...)`` (the core's groups are not in it).
    """
