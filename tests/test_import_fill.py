"""An import filling a matched customer's empty fields: what it writes, and (on SQLite)
that it assigns only those fields, so that an index on a field it does not fill is
not rewritten for each merged row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from recrm_core import CRM

M1, M2, M3 = "13812345678", "13912345678", "13712345678"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def updates_of_customers(crm: CRM) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE CUSTOMERS "):
            seen.append(" ".join(statement.split()))

    event.listen(crm.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(crm.engine, "before_cursor_execute", note)


def test_matched_customers_get_their_empty_fields_filled(
    crm: CRM, tmp_path: Path, recrm_backend: str
) -> None:
    crm.importer.import_csv(write(
        tmp_path, "first.csv",
        f"name,mobile,email,birth_date\n王伟,{M1},,\n李娜,{M2},li@x.cn,\n张三,{M3},,\n"))
    before = {m: crm.customers.find(mobile=m)[0] for m in (M1, M2, M3)}
    with updates_of_customers(crm) as updates:
        result = crm.importer.import_csv(write(
            tmp_path, "second.csv",
            "name,mobile,email,birth_date\n"
            f"别名,{M1},wang@x.cn,\n"           # fills the email only
            f"别名,{M2},other@x.cn,1990-05-06\n"  # fills the birth date only
            f",{M3},,1985-01-02\n"               # fills the birth date only
            f",{M3},zhang@x.cn,\n"))             # and a later row its email
    assert (result.rows, result.created, result.merged) == (4, 0, 4)
    after = {m: crm.customers.find(mobile=m)[0] for m in (M1, M2, M3)}
    assert (after[M1].name, after[M1].email, after[M1].birth_date) == ("王伟", "wang@x.cn", None)
    assert (after[M2].name, after[M2].email, after[M2].birth_date) == (
        "李娜", "li@x.cn", dt.date(1990, 5, 6))
    assert (after[M3].email, after[M3].birth_date) == ("zhang@x.cn", dt.date(1985, 1, 2))
    assert all(after[m].updated_at >= before[m].updated_at for m in (M1, M2, M3))
    if recrm_backend == "sqlite":
        # One statement per set of fields filled: ``name`` (the index-free field every
        # row had already) is assigned by none, ``email`` (indexed) only where filled.
        assert len(updates) == 3
        assert not any("name=" in u for u in updates)
        assert sum("email=" in u for u in updates) == 2
        assert all("updated_at=" in u for u in updates)
