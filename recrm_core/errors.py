"""The exceptions the public API raises. The CLI maps them to exit codes."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

#: the top-level packages of the database drivers the core runs on
_DRIVER_PACKAGES = frozenset({"sqlite3", "psycopg", "psycopg2"})


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


class Forbidden(Refused):
    """The actor's role may not do this (docs/access.md): the operation itself may be
    fine for another role. The HTTP API answers 403, other refusals 409."""


class SchemaMismatch(RecrmError):
    """The database is not at the revisions the code expects (behind, ahead, or made
    before migrations): ``recrm db upgrade`` (or newer software) is needed."""

    exit_code = 2


class IdentityConflict(RecrmError):
    """A record's keys point to two different customers, or to another ID card."""

    def __init__(self, message: str, customer_ids: list[int] | None = None,
                 field: str = "") -> None:
        super().__init__(message)
        self.customer_ids = customer_ids or []
        #: the input field(s) holding the conflicting keys, e.g. ``mobile,id_card``
        self.field = field


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
        what = database_failure(error) or f"{type(error).__name__}: {error}"
        super().__init__(f"plugin {plugin!r} failed in {hook}: {what}")
        self.plugin = plugin
        self.hook = hook
        self.error = error


def database_failure(error: BaseException) -> str | None:
    """``database error (IntegrityError)`` for an error of SQLAlchemy or a database
    driver, else None. Their text holds the SQL, its parameters (customers' mobiles)
    and the row a constraint refused, so a message shows only the kind."""
    kind = type(error)
    if isinstance(error, SQLAlchemyError) or kind.__module__.split(".")[0] in _DRIVER_PACKAGES:
        return f"database error ({kind.__name__})"
    return None


def undecodable_text(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps) is an encoder refusing a lone surrogate: text
    that came from undecodable bytes (a command line typed in a GBK terminal, a JSON
    ``"\\ud800"``), which no database can store. The fields that validate refuse it
    themselves (``values.check_storable``); this tells the CLI's and the API's last
    nets a bad value from an internal error."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, UnicodeEncodeError) and "surrogate" in seen.reason:
            return True
        seen = seen.__cause__ or seen.__context__ or getattr(seen, "orig", None)
    return False
