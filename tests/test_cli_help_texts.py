"""Every command of the ``recrm`` tree says what it does, and so does every option.

The tree is walked as ``recrm --help`` finds it: the core's commands
(:data:`~recrm_core.cli.CORE_COMMANDS`) and the command groups the five first-party
plugins name in the ``recrm.commands`` entry points. A command needs a short help
(its docstring's first sentence), an option a ``help=`` of a few words; each
offender is named by its full command line. The option list of every ``--help``
must also read in 80 columns: click puts an option's help on the line below when
its name and metavar pass 30 columns, which is what long metavars do.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from importlib.metadata import entry_points

import click
import pytest
from click.testing import CliRunner

from recrm_core import CRM
from recrm_core.cli import COMMANDS_ENTRY_POINT_GROUP, cli, load_core_commands
from recrm_core.cli.reports import report_command
from recrm_core.plugins import declared_commands

#: the first-party plugins' command groups (entry-point name -> plugin)
FIRST_PARTY = {"channel": "channels", "member": "membership", "newsletter": "newsletter",
               "sales": "sales", "survey": "survey"}
#: click's widest first column in an option list (``HelpFormatter.write_dl``)
COLUMN = 30
#: the fewest words a help may have ("Only this project.")
FEWEST_WORDS = 3


def plugin_groups() -> dict[str, click.Command]:
    """The first-party groups, loaded from the entry points ``recrm --help`` reads."""
    declared = declared_commands(COMMANDS_ENTRY_POINT_GROUP)
    assert {name: declared.get(name) for name in FIRST_PARTY} == FIRST_PARTY
    return {ep.name: ep.load() for ep in entry_points(group=COMMANDS_ENTRY_POINT_GROUP)
            if ep.name in FIRST_PARTY}


def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    """``(command line, command)`` for ``command`` and everything under it."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            if not sub.hidden:
                yield from walk(sub, f"{path} {name}")


def core_tree() -> list[tuple[str, click.Command]]:
    load_core_commands()
    return list(walk(cli, "recrm"))


def whole_tree() -> list[tuple[str, click.Command]]:
    found = core_tree()
    for name, group in sorted(plugin_groups().items()):
        found.extend(walk(group, f"recrm {name}"))
    return found


def options(command: click.Command) -> Iterator[click.Option]:
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            yield param


def offenders(tree: list[tuple[str, click.Command]]) -> list[str]:
    """One line per command without a short help and per option without a help of
    at least :data:`FEWEST_WORDS` words."""
    found: list[str] = []
    for path, command in tree:
        if not command.get_short_help_str(limit=1000).strip():
            found.append(f"{path}: no help")
        for option in options(command):
            words = (option.help or "").split()
            if len(words) < FEWEST_WORDS:
                found.append(f"{path} {option.opts[0]}: "
                             + (f"help {option.help!r} says too little" if words
                                else "no help="))
    return found


def test_every_command_and_option_says_what_it_does() -> None:
    found = offenders(whole_tree())
    assert not found, f"{len(found)} without a help:\n" + "\n".join(found)


def test_the_guard_names_what_it_finds() -> None:
    """A command without a docstring and options without or with a bare help are named."""
    @click.group("probe", help="A group that says what it is.")
    def probe() -> None:
        pass

    @probe.command("bare")
    @click.option("--when")
    @click.option("--id", "ident", help="The id.")
    @click.option("--quiet", is_flag=True, help="Print nothing on success.")
    def bare(when: str | None, ident: str | None, quiet: bool) -> None:
        pass

    assert offenders(list(walk(probe, "recrm probe"))) == [
        "recrm probe bare: no help",
        "recrm probe bare --when: no help=",
        "recrm probe bare --id: help 'The id.' says too little",
    ]


def columns(line: str) -> int:
    """The columns ``line`` takes on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def wide_options(command: click.Command, ctx: click.Context) -> list[str]:
    """The options whose ``--name METAVAR`` column passes :data:`COLUMN`."""
    wide: list[str] = []
    for option in options(command):
        record = option.get_help_record(ctx)
        if record is not None and columns(record[0]) > COLUMN:
            wide.append(record[0])
    return wide


def hidden_choices(tree: list[tuple[str, click.Command]]) -> list[str]:
    """The choices an option's help leaves out when a short metavar stands for them
    (``--state STATE``): click lists them only in the ``[a|b|c]`` it no longer shows."""
    found: list[str] = []
    for path, command in tree:
        for option in options(command):
            if isinstance(option.type, click.Choice) and option.metavar is not None:
                words = set((option.help or "").replace(",", " ").replace(":", " ")
                            .replace(".", " ").replace("(", " ").split())
                missing = [str(c) for c in option.type.choices if str(c) not in words]
                if missing:
                    found.append(f"{path} {option.opts[0]}: {', '.join(missing)}")
    return found


def test_an_option_with_a_short_metavar_lists_its_choices() -> None:
    found = hidden_choices(whole_tree())
    assert not found, "choices missing from the help:\n" + "\n".join(found)


def test_the_guard_finds_a_choice_missing_from_the_help() -> None:
    @click.command("probe", help="A command that says what it is.")
    @click.option("--state", type=click.Choice(["open", "closed"]), metavar="STATE",
                  help="Only those in this state: open.")
    def probe(state: str | None) -> None:
        pass

    assert hidden_choices([("recrm probe", probe)]) == ["recrm probe --state: closed"]


def test_the_guard_finds_a_wide_option() -> None:
    @click.command("probe", help="A command that says what it is.")
    @click.option("--state", type=click.Choice(["pending", "confirmed", "converted"]),
                  help="Only those in this state.")
    @click.option("--owner", metavar="STAFF", help="Only those this staff id owns.")
    def probe(state: str | None, owner: str | None) -> None:
        pass

    assert wide_options(probe, click.Context(probe)) == [
        "--state [pending|confirmed|converted]"]
    assert columns("交房 ok") == 7


def test_option_lists_fit_in_80_columns() -> None:
    found: list[str] = []
    for path, command in whole_tree():
        ctx = click.Context(command, info_name=path)
        found.extend(f"{path}: {text}" for text in wide_options(command, ctx))
    assert not found, "option columns wider than 30:\n" + "\n".join(found)


@pytest.mark.parametrize("group", ["", *sorted(FIRST_PARTY)])
def test_help_has_no_line_past_80_columns(group: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``recrm --help``, each plugin group's and every command's under them, as a
    terminal of 80 columns shows them (click wraps at 78 characters, counting a CJK
    character as one column where it takes two)."""
    monkeypatch.setenv("COLUMNS", "80")
    command: click.Command = cli if not group else plugin_groups()[group]
    done = CliRunner().invoke(command, ["--help"], prog_name=f"recrm {group}".strip())
    assert done.exit_code == 0, done.output
    long = [line for line in done.output.splitlines() if columns(line) > 80]
    for path, sub in core_tree() if not group else walk(command, f"recrm {group}"):
        ctx = click.Context(sub, info_name=path)
        long.extend(f"{path}: {line}" for line in sub.get_help(ctx).splitlines()
                    if columns(line) > 80)
    assert not long, "\n".join(long)


@pytest.mark.recrm_plugins("membership", "survey", "channels", "newsletter", "sales")
def test_every_report_command_reads_as_well(crm: CRM, monkeypatch: pytest.MonkeyPatch) -> None:
    """``recrm report NAME`` is built at run time from each registered report (the
    core's and the plugins'): the same rules for its options and its help."""
    monkeypatch.setenv("COLUMNS", "80")
    tree = [(f"recrm report {name}", report_command(spec))
            for name, spec in sorted(crm.reports.specs().items())]
    assert any(path.endswith("newsletter.sends") for path, _ in tree)
    found = offenders(tree) + hidden_choices(tree)
    for path, command in tree:
        ctx = click.Context(command, info_name=path)
        found.extend(f"{path}: {text}" for text in wide_options(command, ctx))
        found.extend(f"{path}: {line}" for line in command.get_help(ctx).splitlines()
                     if columns(line) > 80)
    assert not found, "\n".join(found)
