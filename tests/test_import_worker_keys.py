"""The validation worker hashes and encrypts ID numbers (recrm_core.importrows): with
the keys the importing process loaded when it always did (its first batch holding an
ID number), handed over in memory; what it stores is what the importing process
would have stored, and a file is imported alike whichever process hashed its rows."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recrm_core import CRM, importrecords, importrows
from recrm_core.idcards import decrypt, match_value
from recrm_core.identity import id_card_check_character
from recrm_core.importrows import Batch, Record
from recrm_core.keys import KeyFileError, create_key_file
from recrm_core.models import CustomerIn
from recrm_core.resolution import STATE_FIELDS, created_state, record_keys
from recrm_core.tables import IdentityRow

ROWS = 40


def card(n: int) -> str:
    body = f"110105198001{n % 28 + 1:02d}{n:03d}"
    return body + id_card_check_character(body)


def write(path: Path, *, cards_from: int = 1) -> Path:
    lines = ["name,mobile,id_card,project,owner_staff"]
    lines += [f"客户{n},139{n:08d},{card(n) if n >= cards_from else ''},A,s{n % 3}"
              for n in range(1, ROWS + 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many ID numbers the importing process hashed and encrypted itself."""
    calls = {"match_value": 0, "encrypt": 0}
    for name in calls:
        original = getattr(importrecords, name)

        def wrapper(*args: Any, name: str = name, original: Callable[..., str] = original) -> str:
            calls[name] += 1
            return original(*args)

        # patched before the worker starts: a fork counts its own calls apart
        monkeypatch.setattr(importrecords, name, wrapper)
    return calls


def _run(mode: str, action: Callable[[], Any]) -> Any:
    """``action`` here (a fork of this process is the worker) or, with another thread
    running (as the API's import jobs), from a fork server's worker."""
    if mode == "fork":
        return action()
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(action()))
    thread.start()
    thread.join(120)
    [result] = got
    return result


@pytest.mark.parametrize("mode", ["fork", "threaded"])
@pytest.mark.recrm_settings(import_batch_size=2)
def test_the_worker_hashes_and_encrypts_once_the_importer_has_the_keys(
    mode: str, crm: CRM, tmp_path: Path, counted: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 0)
    path = write(tmp_path / "in.csv")
    result = _run(mode, lambda: crm.importer.import_file(path))
    assert (result.rows, result.created, result.merged, result.rejected) == (ROWS, ROWS, 0, 0)
    # The importer hashed the rows of its first batch (which loaded the keys) and of
    # those validated before the worker had them (at most AHEAD + 1 batches); the
    # worker hashed and encrypted the rest.
    most = 2 * (importrows.AHEAD + 2)
    assert 2 <= counted["match_value"] <= most and 2 <= counted["encrypt"] <= most
    keys = crm.keys
    with crm.engine.connect() as conn:
        stored = {cid: (value, display) for cid, value, display in conn.execute(
            select(IdentityRow.customer_id, IdentityRow.value, IdentityRow.display)
            .where(IdentityRow.kind == "id_card"))}
    assert len(stored) == ROWS
    for n in range(1, ROWS + 1):
        [customer] = crm.customers.find(mobile=f"139{n:08d}")
        value, display = stored[customer.id]
        assert value == match_value(keys, card(n))  # matched on the importer's hash
        assert decrypt(keys, display) == card(n) == customer.id_card
        assert [c.id for c in crm.customers.find(id_card=card(n))] == [customer.id]
    # idempotent: every row now matches its customer, by mobile and ID card alike
    counted.update(match_value=0, encrypt=0)
    again = _run(mode, lambda: crm.importer.import_file(path))
    assert (again.created, again.merged, again.rejected) == (0, ROWS, 0)
    assert counted["match_value"] <= most and counted["encrypt"] <= most


@pytest.mark.recrm_settings(import_batch_size=2)
def test_the_keys_are_loaded_when_they_always_were(
    crm: CRM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A wrong key file stops the import at the first batch holding an ID number,
    after committing the batches before it, with or without a worker: the keys are
    not loaded any earlier for the worker's sake."""
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 0)
    crm.customers.add({"mobile": "13700000000", "id_card": card(999)})  # records the keys
    wrong = tmp_path / "other.key"
    create_key_file(wrong)
    with CRM(database_url=crm.config.database_url,
             settings={"key_file": str(wrong), "import_batch_size": 2}) as other:
        with pytest.raises(KeyFileError, match="does not belong to this database"):
            other.importer.import_file(write(tmp_path / "in.csv", cards_from=7))
        assert other.customers.count() == 1 + 6  # rows 1-6: three batches


def test_a_record_is_its_model_and_what_follows_from_it() -> None:
    """What the importer reads of a row equals what it would derive from the model."""
    rows = [(1, {"mobile": "13812345678", "email": "A@B.CN", "external_id": "E1"}),
            (2, {"mobile": "13912345678", "id_card": card(5), "source_system": "crm"})]
    [batch] = list(importrows.batches(iter(rows), 10, "CN", None))
    [(_, first), (_, second)] = batch.valid
    model = importrows.validate_row(1, rows[0][1])
    assert isinstance(model, CustomerIn)
    assert batch.records[0][1] == model
    assert first.keys == record_keys(model, lambda n: n)
    assert dict(zip(STATE_FIELDS, first.state, strict=True)) == {
        "name": None, "gender": None, "birth_date": None, "persona": None, "budget": None,
        "email": "a@b.cn", "source_system": "default", "external_id": "E1"}
    assert first.state == created_state(model)
    assert first.identities == (("mobile", "+8613812345678", "+8613812345678"),)
    # no keys given: an ID number is left to the importer, which has them
    assert second.keys is None and second.identities is None
    assert tuple(Record._fields[:len(CustomerIn.model_fields)]) == tuple(CustomerIn.model_fields)


def test_batches_hash_with_the_keys_once_given(tmp_path: Path) -> None:
    keys = create_key_file(tmp_path / "recrm.key")
    given: list[Any] = [None]

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for n in range(1, 7):
            yield n, {"mobile": f"139{n:08d}", "id_card": card(n)}

    got: list[Batch] = []
    for batch in importrows.batches(rows(), 2, "CN", None, lambda: given[0]):
        got.append(batch)
        given[0] = keys  # loaded by the first batch, as the importer does
    assert [rec.keys is None for b in got for _, rec in b.valid] == [
        True, True, False, False, False, False]
    [(_, rec)] = [got[1].valid[0]]
    assert rec.keys == [("mobile", "+8613900000003"), ("id_card", match_value(keys, card(3)))]
    assert rec.identities is not None
    (_, mobile, shown), (_, hashed, sealed) = rec.identities
    assert shown == mobile == "+8613900000003" and hashed == match_value(keys, card(3))
    assert decrypt(keys, sealed) == card(3)
