"""The exceptions the public API raises. The CLI maps them to exit codes."""

from __future__ import annotations


class RecrmError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with (1: refused by data/state)."""

    exit_code = 1


class NotFound(RecrmError):
    """No such customer, project or case."""


class UnknownProject(NotFound):
    """A project code that names no project; ``known`` lists the existing codes when
    there are few enough to read (ten or fewer), else it is None."""

    def __init__(self, code: str, known: list[str] | None = None) -> None:
        message = f"no such project {code!r}"
        if known is not None:
            message += f" (known: {', '.join(known)})" if known else " (there are no projects)"
        super().__init__(message)
        self.code = code
        self.known = known


class Refused(RecrmError):
    """The state refuses the operation (a backward stage, a bad case transition)."""


class IdentityConflict(RecrmError):
    """A record's keys point to two different customers, or to another ID card."""

    def __init__(self, message: str, customer_ids: list[int] | None = None) -> None:
        super().__init__(message)
        self.customer_ids = customer_ids or []


class InvalidInput(RecrmError):
    """Input failed validation; ``field`` names the first failing field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


class ConfigError(RecrmError):
    """The configuration (``recrm.toml``, settings, plugin names) is unusable."""

    exit_code = 2


class PluginError(RecrmError):
    """A plugin failed (raised in a hook, or could not load); names the plugin."""

    def __init__(self, plugin: str, hook: str, error: BaseException) -> None:
        super().__init__(f"plugin {plugin!r} failed in {hook}: {type(error).__name__}: {error}")
        self.plugin = plugin
        self.hook = hook
        self.error = error
