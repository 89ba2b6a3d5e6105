"""ID-card numbers at rest (recrm_core.idcards): stored only as a keyed hash (matched
on) and an AES-GCM ciphertext (shown); never decrypted into a wrong number; the
core_0007 migration encrypts the numbers of existing databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from recrm_core import CRM, IdentityConflict
from recrm_core.idcards import decrypt, encrypt, key_id, match_value
from recrm_core.identity import id_card_check_character
from recrm_core.keys import KeyFileError, create_key_file, load_keys
from recrm_core.migrating import MigrationError, upgrade, upgrade_sql
from recrm_core.tables import CustomerRow, IdentityRow
from recrm_core.testing import RecrmCliRunner


def recrm(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``recrm`` command as a process in ``cwd`` (no RECRM_ variables)."""
    script = Path(sys.executable).with_name("recrm")
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "from recrm_core.cli import main; main()"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RECRM_")}
    return subprocess.run([*command, *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=120)


def card(body: str) -> str:
    return body + id_card_check_character(body)


CARD_A = card("11010519491231002")
CARD_B = card("11010519800101001")
CARD_C = card("44030119900215003")


def database_text(crm: CRM) -> str:
    """Every text value of the customers and identities tables, as one string."""
    with crm.engine.connect() as conn:
        rows = [*conn.execute(select(CustomerRow.__table__)),
                *conn.execute(select(IdentityRow.__table__))]
    return json.dumps([[str(v) for v in row] for row in rows], ensure_ascii=False)


def test_no_id_number_in_clear_after_add_and_import(crm: CRM, tmp_path: Path) -> None:
    crm.customers.add({"mobile": "13812345678", "id_card": CARD_A.lower(), "name": "王伟"})
    source = tmp_path / "in.csv"
    source.write_text(f"name,mobile,id_card\n李娜,13912345678,{CARD_B}\n", encoding="utf-8")
    assert crm.importer.import_csv(source).created == 1
    stored = database_text(crm)
    for number in (CARD_A, CARD_B):
        assert number not in stored and number.lower() not in stored
        assert number[6:14] not in stored  # not even the birth date part
    with crm.engine.connect() as conn:
        values = conn.execute(select(IdentityRow.value, IdentityRow.display)
                              .where(IdentityRow.kind == "id_card")).all()
    assert len(values) == 2
    for value, display in values:
        assert value.startswith("h1:") and display.startswith(f"v1:{key_id(crm.keys)}:")
    shown = {c.id_card for c in crm.customers.find(id_card=CARD_A)}
    assert shown == {CARD_A}


def test_matching_works_on_the_hash(crm: CRM, tmp_path: Path) -> None:
    first = crm.customers.add({"mobile": "13812345678", "id_card": CARD_A}).customer
    # the same card with another mobile: merged into the first, by the card
    again = crm.customers.add({"mobile": "13912345678", "id_card": CARD_A})
    assert not again.created and again.customer.id == first.id
    assert again.customer.mobiles == ["+8613812345678", "+8613912345678"]
    # a different card on a matched mobile: the conflict is still seen
    with pytest.raises(IdentityConflict, match="ID card differs"):
        crm.customers.add({"mobile": "13812345678", "id_card": CARD_B})
    # the import matches on the card too
    source = tmp_path / "in.csv"
    source.write_text(f"name,mobile,id_card\n王伟,13712345678,{CARD_A}\n"
                      f"张三,13812345678,{CARD_B}\n", encoding="utf-8")
    result = crm.importer.import_csv(source)
    assert (result.created, result.merged, result.rejected) == (0, 1, 1)
    [found] = crm.customers.find(id_card=CARD_A)
    assert found.id == first.id and "+8613712345678" in found.mobiles
    assert crm.customers.find(id_card=CARD_C) == []
    view = crm.customers.view(first.id)
    assert [(e.kind, e.value) for e in view.identities if e.kind == "id_card"] == [
        ("id_card", CARD_A)]


def test_merge_refuses_different_cards_and_keeps_one(crm: CRM) -> None:
    a = crm.customers.add({"mobile": "13812345678", "id_card": CARD_A}).customer
    b = crm.customers.add({"mobile": "13912345678", "id_card": CARD_B}).customer
    c = crm.customers.add({"mobile": "13712345678"}).customer
    with pytest.raises(IdentityConflict, match="different ID cards"):
        crm.customers.merge(a.id, b.id)
    merged = crm.customers.merge(a.id, c.id)
    assert merged.id_card == CARD_A


def test_segments_on_id_cards(crm: CRM) -> None:
    a = crm.customers.add({"mobile": "13812345678", "id_card": CARD_A}).customer
    b = crm.customers.add({"mobile": "13912345678", "id_card": CARD_B}).customer
    c = crm.customers.add({"mobile": "13712345678"}).customer

    def ids(definition: dict[str, Any]) -> set[int]:
        return set(crm.segments.iter_ids(definition))

    assert ids({"field": "id_card", "op": "eq", "value": CARD_A.lower()}) == {a.id}
    assert ids({"field": "id_card", "op": "in", "value": [CARD_A, CARD_B]}) == {a.id, b.id}
    assert ids({"field": "id_card", "op": "is_null", "value": True}) == {c.id}
    assert ids({"field": "id_card", "op": "is_null", "value": False}) == {a.id, b.id}


def test_a_database_without_id_numbers_needs_no_key_file(
    recrm_database_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "recrm.key"
    with CRM(database_url=recrm_database_url, settings={"key_file": str(missing)},
             create_schema=True) as crm:
        c = crm.customers.add({"mobile": "13812345678", "name": "王伟"}).customer
        source = tmp_path / "in.csv"
        source.write_text("name,mobile\n李娜,13912345678\n", encoding="utf-8")
        assert crm.importer.import_csv(source).created == 1
        assert crm.customers.get(c.id).id_card is None
        assert crm.customers.view(c.id).identities
        with pytest.raises(KeyFileError, match="not found"):
            crm.customers.add({"mobile": "13712345678", "id_card": CARD_A})


def test_decryption_never_gives_a_wrong_number(tmp_path: Path) -> None:
    mine = create_key_file(tmp_path / "mine.key")
    other = create_key_file(tmp_path / "other.key")
    sealed = encrypt(mine, CARD_A)
    assert decrypt(mine, sealed) == CARD_A
    assert encrypt(mine, CARD_A) != sealed  # a fresh nonce each time
    assert match_value(mine, CARD_A) == match_value(load_keys(mine.path), CARD_A)
    with pytest.raises(KeyFileError, match=r"other\.key"):
        decrypt(other, sealed)
    # the same key id but altered bytes (or another key claiming the id): refused
    tampered = sealed[:-6] + ("AAAAAA" if not sealed.endswith("AAAAAA") else "BBBBBB")
    with pytest.raises(KeyFileError, match=r"mine\.key"):
        decrypt(mine, tampered)


def test_a_wrong_key_file_exits_2_with_one_line(tmp_path: Path) -> None:
    assert recrm(tmp_path, "init").returncode == 0
    added = recrm(tmp_path, "customers", "add", "--mobile", "13812345678",
                  "--id-card", CARD_A)
    assert added.returncode == 0, added.stderr
    found = recrm(tmp_path, "customers", "find", "--id-card", CARD_A, "--json")
    assert found.returncode == 0 and CARD_A in found.stdout, found.stderr
    key = tmp_path / "recrm.key"
    key.unlink()
    create_key_file(key)
    for args in (("customers", "find", "--id-card", CARD_A),
                 ("customers", "find", "--mobile", "13812345678")):
        wrong = recrm(tmp_path, *args)
        assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1, wrong.stderr
        assert "recrm.key" in wrong.stderr and CARD_A not in wrong.stdout + wrong.stderr


def test_the_migration_encrypts_existing_numbers(
    recrm_database_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "migrate.key"
    create_key_file(key_file)
    with CRM(database_url=recrm_database_url, settings={"key_file": str(key_file)}) as crm:
        upgrade(crm, to="core_0006")
        with crm.engine.begin() as conn:
            ids = []
            for _ in range(2):
                ids.append(conn.execute(insert(CustomerRow).values(stage="prospect")
                                        .returning(CustomerRow.id)).scalar_one())
            for cid, (kind, value) in zip(ids * 2, [
                    ("id_card", CARD_A), ("id_card", CARD_B),
                    ("mobile", "13812345678"), ("mobile", "13912345678")], strict=True):
                conn.execute(insert(IdentityRow).values(customer_id=cid, kind=kind,
                                                        value=value, display=value))
        if crm.engine.dialect.name == "postgresql":
            # offline SQL cannot encrypt: refused, naming the way that can
            with pytest.raises(MigrationError, match="recrm db upgrade"):
                upgrade_sql(crm)
        assert upgrade(crm, to="core_0007") == ["core_0007"]
        stored = database_text(crm)
        assert CARD_A not in stored and CARD_B not in stored
        assert "13812345678" in stored  # mobiles stay as they are
        assert [c.id for c in crm.customers.find(id_card=CARD_B)] == [ids[1]]
        assert crm.customers.get(ids[0]).id_card == CARD_A
        # downgrading decrypts them back
        from recrm_core.migrating import downgrade

        assert downgrade(crm, "core", "core_0006") == ["core_0007"]
        assert CARD_A in database_text(crm)


def test_the_migration_needs_no_key_file_without_id_numbers(
    recrm_database_url: str, tmp_path: Path
) -> None:
    with CRM(database_url=recrm_database_url,
             settings={"key_file": str(tmp_path / "absent.key")}) as crm:
        upgrade(crm, to="core_0006")
        assert upgrade(crm, to="core_0007") == ["core_0007"]
        with crm.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM key_fingerprints")).scalar() == 0


def test_cli_shows_the_number_to_those_allowed(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    c = crm.customers.add({"mobile": "13812345678", "id_card": CARD_A}).customer
    shown = cli_runner.invoke("customers", "show", str(c.id), "--json")
    assert CARD_A in shown.stdout


class Crash(Exception):
    pass


def test_rotate_key_reencrypts_resumes_and_retires_the_old_key(
    crm: CRM, tmp_path: Path
) -> None:
    from recrm_core.idcards import stored_key_id
    from recrm_core.rotation import rotate_key

    cards = [card(f"11010519800101{i:03d}") for i in range(7)]
    ids = [crm.customers.add({"mobile": f"1381234{i:04d}", "id_card": number}).customer.id
           for i, number in enumerate(cards)]
    old = load_keys(crm.key_file)
    old_copy = tmp_path / "old-copy.key"
    old_copy.write_bytes(old.path.read_bytes())
    old_copy.chmod(0o600)
    staged = tmp_path / "recrm.key.new"

    def crash(done: int) -> None:
        raise Crash(done)

    # a crash after the first batch: some rows under the new key, the rest under the old
    with pytest.raises(Crash):
        rotate_key(crm, staged, batch_size=3, after_batch=crash)
    new = load_keys(staged)
    assert (new.hashing, new.signing) == (old.hashing, old.signing)
    with crm.engine.connect() as conn:
        kids = [stored_key_id(d) for d in conn.execute(
            select(IdentityRow.display).where(IdentityRow.kind == "id_card")).scalars()]
    assert sorted(kids).count(key_id(new)) == 3 and kids.count(key_id(old)) == 4
    # run again: finishes, and the configured key file is now the new one
    done = rotate_key(crm, staged, batch_size=3)
    assert done.reencrypted == 4 and not staged.exists()
    assert load_keys(crm.key_file).encryption == new.encryption
    with crm.engine.connect() as conn:
        stored = conn.execute(select(IdentityRow.display)
                              .where(IdentityRow.kind == "id_card")).scalars().all()
    assert {stored_key_id(d) for d in stored} == {key_id(new)}
    # everything still reads and matches; the old key decrypts nothing any more
    assert [crm.customers.get(i).id_card for i in ids] == cards
    assert [c.id for c in crm.customers.find(id_card=cards[5])] == [ids[5]]
    retired = load_keys(old_copy)
    for value in stored:
        with pytest.raises(KeyFileError):
            decrypt(retired, value)


def test_rotate_key_command(tmp_path: Path) -> None:
    assert recrm(tmp_path, "init").returncode == 0
    assert recrm(tmp_path, "customers", "add", "--mobile", "13812345678",
                 "--id-card", CARD_A).returncode == 0
    before = (tmp_path / "recrm.key").read_bytes()
    rotated = recrm(tmp_path, "db", "rotate-key", "--new-key-file", "next.key")
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 1 ID number" in rotated.stderr
    assert (tmp_path / "recrm.key").read_bytes() != before
    assert not (tmp_path / "next.key").exists()
    found = recrm(tmp_path, "customers", "find", "--id-card", CARD_A, "--json")
    assert found.returncode == 0 and CARD_A in found.stdout, found.stderr
