"""``PartialIndex``: PostgreSQL's predicate is there for whatever reads it, though
declaring the index imported no PostgreSQL module (``tests/test_startup.py``)."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Index, Integer, MetaData, String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex

from recrm_core.partialindex import PartialIndex


def declared() -> PartialIndex:
    table = Table("notes", MetaData(), Column("id", Integer, primary_key=True),
                  Column("email", String(40)))
    index = PartialIndex("ix_notes_email", table.c.email, where="email IS NOT NULL")
    table.append_constraint(index)
    return index


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_the_ddl_is_partial_on_both_backends(dialect: object) -> None:
    ddl = str(CreateIndex(declared()).compile(dialect=dialect))  # type: ignore[arg-type]
    assert ddl.endswith("WHERE email IS NOT NULL"), ddl


def test_listing_the_options_names_postgresql_first_asked() -> None:
    """A copy (``to_metadata``, as ``db check`` makes) and Alembic's rendering list
    the options rather than ask for one: PostgreSQL's predicate is among them."""
    index = declared()
    assert set(index.dialect_kwargs) == {"sqlite_where", "postgresql_where"}
    copy = next(iter(index.table.to_metadata(MetaData()).indexes))
    assert str(copy.dialect_options["postgresql"]["where"]) == "email IS NOT NULL"
    assert str(copy.dialect_options["sqlite"]["where"]) == "email IS NOT NULL"


def test_the_options_are_postgresqls_own() -> None:
    """The dialect's other options keep their defaults, and it still refuses a
    keyword it does not know."""
    index, plain = declared(), Index("ix_plain", "email")
    assert set(index.dialect_options["postgresql"]) == set(plain.dialect_options["postgresql"])
    assert str(index.dialect_options["postgresql"]["where"]) == "email IS NOT NULL"
    with pytest.raises(Exception, match="not accepted"):
        PartialIndex("ix_x", "email", where="email IS NOT NULL", postgresql_wher="x")


def test_without_sqlalchemys_deferral_the_index_is_a_plain_partial_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a SQLAlchemy release drop what the deferral relies on, the index takes
    ``postgresql_where`` as any index does, and reads the same."""
    from recrm_core import partialindex

    monkeypatch.setattr(partialindex, "_DEFERRABLE", False)
    index = declared()
    assert str(index.dialect_options["postgresql"]["where"]) == "email IS NOT NULL"
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        ddl = str(CreateIndex(index).compile(dialect=dialect))  # type: ignore[arg-type]
        assert ddl.endswith("WHERE email IS NOT NULL"), ddl


def test_this_sqlalchemy_defers() -> None:
    from recrm_core import partialindex

    assert partialindex._DEFERRABLE
