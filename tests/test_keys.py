"""The key file (`recrm init` / `recrm db upgrade`): creation, loading, refusals, and
where it lives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recrm_core import keys as keys_module
from recrm_core.errors import ConfigError
from recrm_core.keys import (
    KEY_FILE_ENV,
    KEY_FILE_NAME,
    KeyFileError,
    Keys,
    create_key_file,
    default_key_path,
    ensure_key_file,
    key_file_path,
    load_keys,
)

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
KEY_C = bytes(range(64, 96))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write_owner_only(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    path.chmod(0o600)
    return path


def key_document(**overrides: Any) -> str:
    document: dict[str, Any] = {
        "format": "recrm-keys-1",
        "hashing": b64(KEY_A),
        "encryption": b64(KEY_B),
        "signing": b64(KEY_C),
    }
    for name, value in overrides.items():
        if value is None:
            document.pop(name)
        else:
            document[name] = value
    return json.dumps(document)


def secret_renderings(*keys: bytes) -> list[str]:
    """How a key could leak into a message: base64, hex, or Python's bytes repr."""
    return [form for key in keys for form in (b64(key), key.hex(), repr(key)[2:-1])]


def assert_one_line_naming(error: KeyFileError, path: Path) -> str:
    message = str(error)
    assert "\n" not in message and "\r" not in message
    assert str(path) in message
    return message


@pytest.fixture(autouse=True)
def _no_key_file_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own shell may set it; every test here decides for itself.
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)


# -- creating ------------------------------------------------------------------------------


@posix_only
def test_created_file_is_owner_only_with_three_distinct_32_byte_keys(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    keys = create_key_file(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.path == path
    assert [len(keys.hashing), len(keys.encryption), len(keys.signing)] == [32, 32, 32]
    assert len({keys.hashing, keys.encryption, keys.signing}) == 3
    document = json.loads(path.read_text("utf-8"))
    assert document == {
        "format": "recrm-keys-1",
        "hashing": b64(keys.hashing),
        "encryption": b64(keys.encryption),
        "signing": b64(keys.signing),
    }


@posix_only
@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_created_file_is_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    path = tmp_path / KEY_FILE_NAME
    previous = os.umask(umask)
    try:
        create_key_file(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keys(path).path == path


@posix_only
def test_file_is_created_with_mode_0600_in_the_open_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No window where the file exists with a looser mode: every creating open asks
    # for exclusive creation with 0o600 itself.
    creating_opens: list[tuple[int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            creating_opens.append((flags, mode))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    create_key_file(tmp_path / KEY_FILE_NAME)

    assert creating_opens
    for flags, mode in creating_opens:
        assert flags & os.O_EXCL
        assert mode == 0o600


def test_creation_leaves_only_the_key_file(tmp_path: Path) -> None:
    create_key_file(tmp_path / KEY_FILE_NAME)
    assert sorted(os.listdir(tmp_path)) == [KEY_FILE_NAME]


def test_two_creations_give_independent_keys(tmp_path: Path) -> None:
    first = create_key_file(tmp_path / "a.key")
    second = create_key_file(tmp_path / "b.key")
    assert first.hashing != second.hashing
    assert first.encryption != second.encryption
    assert first.signing != second.signing


def test_existing_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    create_key_file(path)
    before = path.read_bytes()

    with pytest.raises(KeyFileError, match="already exists") as caught:
        create_key_file(path)

    assert_one_line_naming(caught.value, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [KEY_FILE_NAME]


def test_file_created_by_another_process_meanwhile_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The look for an existing file passes, then another process wins the race: the
    # final link must fail rather than replace that process's keys.
    path = tmp_path / KEY_FILE_NAME
    create_key_file(path)
    before = path.read_bytes()
    monkeypatch.setattr(os.path, "lexists", lambda _p: False)

    with pytest.raises(KeyFileError, match="already exists"):
        create_key_file(path)

    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [KEY_FILE_NAME]


@posix_only
def test_file_system_without_hard_links_still_gets_an_owner_only_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*_args: Any, **_kwargs: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / KEY_FILE_NAME
    created = create_key_file(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keys(path) == created
    assert sorted(os.listdir(tmp_path)) == [KEY_FILE_NAME]


def test_missing_directory_is_refused_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent" / KEY_FILE_NAME
    with pytest.raises(KeyFileError, match="does not exist") as caught:
        create_key_file(path)
    assert_one_line_naming(caught.value, path)
    assert not (tmp_path / "absent").exists()


# -- loading -------------------------------------------------------------------------------


def test_load_round_trips(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    created = create_key_file(path)
    loaded = load_keys(path)
    assert loaded == created
    assert (loaded.hashing, loaded.encryption, loaded.signing) == (
        created.hashing,
        created.encryption,
        created.signing,
    )


def test_load_accepts_a_hand_written_file_and_ignores_extra_fields(tmp_path: Path) -> None:
    path = write_owner_only(tmp_path / KEY_FILE_NAME, key_document(created="2024-05-01"))
    keys = load_keys(path)
    assert (keys.hashing, keys.encryption, keys.signing) == (KEY_A, KEY_B, KEY_C)


def test_no_configured_path_names_the_setting() -> None:
    with pytest.raises(KeyFileError) as caught:
        load_keys(None)
    message = str(caught.value)
    assert "key_file" in message and KEY_FILE_ENV in message and "\n" not in message


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    with pytest.raises(KeyFileError) as caught:
        load_keys(path)
    assert str(caught.value) == (
        f"key file '{path}' not found; `recrm init` creates one (`recrm db upgrade` too, "
        "in the default place)"
    )
    assert not path.exists()


def test_key_file_error_is_a_config_error_exiting_2() -> None:
    assert issubclass(KeyFileError, ConfigError)
    assert KeyFileError("x").exit_code == 2


BAD_FILES: list[tuple[str, bytes | str, str]] = [
    ("empty", b"", "not JSON"),
    ("not JSON", "hashing = 'x'\n", "not JSON"),
    ("not UTF-8", b"\xff\xfe{}", "not JSON"),
    ("deeply nested", "[" * 50_000, "not JSON"),
    ("a JSON list", "[1, 2, 3]", "format"),
    ("no format tag", key_document(format=None), "format"),
    ("wrong format tag", key_document(format="recrm-keys-2"), "format"),
    ("no hashing key", key_document(hashing=None), "'hashing'"),
    ("no encryption key", key_document(encryption=None), "'encryption'"),
    ("no signing key", key_document(signing=None), "'signing'"),
    ("a key as a number", key_document(signing=12345), "'signing'"),
    ("not base64", key_document(encryption="not base64 at all!"), "not base64"),
    ("non-ASCII base64", key_document(encryption="密钥" * 22), "not base64"),
    ("a short key", key_document(hashing=b64(KEY_A[:31])), "31 bytes"),
    ("a long key", key_document(hashing=b64(KEY_A + b"!")), "33 bytes"),
    ("two keys equal", key_document(signing=b64(KEY_A)), "equal"),
    ("too large", key_document() + " " * (64 * 1024), "larger than"),
]


@pytest.mark.parametrize(
    ("content", "complaint"),
    [pytest.param(content, complaint, id=name) for name, content, complaint in BAD_FILES],
)
def test_bad_file_is_refused_in_one_line_without_key_material(
    tmp_path: Path, content: bytes | str, complaint: str
) -> None:
    path = write_owner_only(tmp_path / KEY_FILE_NAME, content)
    with pytest.raises(KeyFileError) as caught:
        load_keys(path)
    message = assert_one_line_naming(caught.value, path)
    assert complaint in message
    for leaked in secret_renderings(KEY_A, KEY_B, KEY_C):
        assert leaked not in message


def test_a_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    path.mkdir()
    with pytest.raises(KeyFileError, match="directory") as caught:
        load_keys(path)
    assert_one_line_naming(caught.value, path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    os.mkfifo(path, 0o600)
    with pytest.raises(KeyFileError, match="FIFO") as caught:
        load_keys(path)
    assert_one_line_naming(caught.value, path)


@posix_only
def test_a_link_to_nothing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    path.symlink_to(tmp_path / "gone.key")
    with pytest.raises(KeyFileError, match="symbolic link") as caught:
        load_keys(path)
    assert_one_line_naming(caught.value, path)


@posix_only
def test_a_link_to_a_good_file_loads(tmp_path: Path) -> None:
    target = tmp_path / "real.key"
    created = create_key_file(target)
    link = tmp_path / KEY_FILE_NAME
    link.symlink_to(target)
    assert load_keys(link).hashing == created.hashing


def test_an_unreadable_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated rather than chmod 000, which root (as in CI containers) reads anyway.
    path = tmp_path / KEY_FILE_NAME
    create_key_file(path)
    real_open = os.open

    def denied(target: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(target) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(target, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(KeyFileError, match="Permission denied") as caught:
        load_keys(path)
    assert_one_line_naming(caught.value, path)


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o666])
def test_a_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / KEY_FILE_NAME
    created = create_key_file(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as caught:
        load_keys(path)
    message = assert_one_line_naming(caught.value, path)
    assert message == f"key file '{path}' is readable by other users; chmod 600 it"
    for leaked in secret_renderings(created.hashing, created.encryption, created.signing):
        assert leaked not in message


@posix_only
@pytest.mark.parametrize("mode", [0o620, 0o602, 0o610])
def test_a_file_others_can_write_or_run_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / KEY_FILE_NAME
    create_key_file(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="by other users; chmod 600 it"):
        load_keys(path)


@posix_only
@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_modes_load(tmp_path: Path, mode: int) -> None:
    path = tmp_path / KEY_FILE_NAME
    created = create_key_file(path)
    path.chmod(mode)
    assert load_keys(path) == created


# -- ensure_key_file -----------------------------------------------------------------------


def test_ensure_creates_a_missing_file_then_loads_it(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    created, was_created = ensure_key_file(path)
    assert was_created is True
    assert path.is_file()

    loaded, was_created_again = ensure_key_file(path)
    assert was_created_again is False
    assert loaded == created


def test_ensure_without_a_path_names_the_setting() -> None:
    with pytest.raises(KeyFileError, match="key_file"):
        ensure_key_file(None)


def test_ensure_never_replaces_a_bad_file(tmp_path: Path) -> None:
    path = write_owner_only(tmp_path / KEY_FILE_NAME, "not a key file")
    with pytest.raises(KeyFileError, match="not JSON"):
        ensure_key_file(path)
    assert path.read_text("utf-8") == "not a key file"


def test_ensure_in_a_missing_directory_fails(tmp_path: Path) -> None:
    path = tmp_path / "absent" / KEY_FILE_NAME
    with pytest.raises(KeyFileError, match="does not exist"):
        ensure_key_file(path)


def test_ensure_uses_the_file_another_process_created_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / KEY_FILE_NAME
    real_create: Callable[[Path], Keys] = keys_module.create_key_file
    theirs: list[Keys] = []

    def lose_the_race(target: Path) -> Keys:
        theirs.append(real_create(target))  # the other process, just before us
        return real_create(target)

    monkeypatch.setattr(keys_module, "create_key_file", lose_the_race)
    keys, was_created = ensure_key_file(path)

    assert was_created is False
    assert keys == theirs[0]


# -- keyed hashes and the fingerprint ------------------------------------------------------


FIXED = Keys(hashing=KEY_A, encryption=KEY_B, signing=KEY_C, path=Path("fixed.key"))
OTHER = Keys(hashing=KEY_C, encryption=KEY_A, signing=KEY_B, path=Path("other.key"))


def test_keyed_hash_is_the_documented_hmac() -> None:
    # Stored hashes must stay comparable across versions, so the construction is pinned.
    expected = hmac.new(KEY_A, b"mobile\x1f+8613812345678", hashlib.sha256).hexdigest()[:32]
    assert FIXED.keyed_hash("mobile", "+8613812345678") == "h1:" + expected


def test_keyed_hash_is_deterministic_and_shaped() -> None:
    first = FIXED.keyed_hash("mobile", "+8613812345678")
    assert first == FIXED.keyed_hash("mobile", "+8613812345678")
    assert re.fullmatch(r"h1:[0-9a-f]{32}", first)


def test_keyed_hash_differs_across_kinds_values_and_key_files(tmp_path: Path) -> None:
    value = "13812345678"
    assert FIXED.keyed_hash("mobile", value) != FIXED.keyed_hash("email", value)
    assert FIXED.keyed_hash("mobile", value) != FIXED.keyed_hash("mobile", "13812345679")
    assert FIXED.keyed_hash("mobile", value) != OTHER.keyed_hash("mobile", value)
    one = create_key_file(tmp_path / "one.key")
    two = create_key_file(tmp_path / "two.key")
    assert one.keyed_hash("mobile", value) != two.keyed_hash("mobile", value)


def test_keyed_hash_uses_only_the_hashing_key() -> None:
    same_hashing = Keys(hashing=KEY_A, encryption=KEY_C, signing=KEY_B, path=Path("x"))
    assert same_hashing.keyed_hash("email", "a@b.cn") == FIXED.keyed_hash("email", "a@b.cn")


def test_kind_and_value_cannot_trade_characters() -> None:
    assert FIXED.keyed_hash("mobile", "1") != FIXED.keyed_hash("mobile1", "")
    with pytest.raises(ValueError):
        FIXED.keyed_hash("a\x1fb", "c")
    with pytest.raises(ValueError):
        FIXED.keyed_hash("", "c")


@pytest.mark.parametrize("value", ["13812345678", "+8613912340000", "110101199003077777"])
def test_keyed_hash_shows_no_run_of_the_input_digits(value: str) -> None:
    digest = FIXED.keyed_hash("mobile", value).removeprefix("h1:")
    digits = re.sub(r"\D", "", value)
    runs = {digits[i : i + 5] for i in range(len(digits) - 4)}
    assert value not in digest
    assert not [run for run in runs if run in digest]


def test_keyed_hash_accepts_any_string() -> None:
    lone_surrogate = "\ud800"
    assert FIXED.keyed_hash("name", lone_surrogate) != FIXED.keyed_hash("name", "\ufffd")
    assert FIXED.keyed_hash("name", "张三").startswith("h1:")


def test_fingerprint_identifies_the_file_without_showing_keys(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    created = create_key_file(path)
    fingerprint = created.fingerprint()

    assert fingerprint == load_keys(path).fingerprint()
    assert fingerprint != create_key_file(tmp_path / "other.key").fingerprint()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}", fingerprint)
    for key in (created.hashing, created.encryption, created.signing):
        assert key.hex()[:8] not in fingerprint


def test_fingerprint_tells_which_key_differs() -> None:
    changed_signing = Keys(hashing=KEY_A, encryption=KEY_B, signing=bytes(32), path=Path("x"))
    ours, theirs = FIXED.fingerprint().split("-"), changed_signing.fingerprint().split("-")
    assert ours[:2] == theirs[:2]
    assert ours[2] != theirs[2]


def test_repr_shows_no_key_material() -> None:
    shown = repr(FIXED)
    assert "fixed.key" in shown
    for leaked in secret_renderings(KEY_A, KEY_B, KEY_C):
        assert leaked not in shown


def test_keys_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="signing"):
        Keys(hashing=KEY_A, encryption=KEY_B, signing=b"short", path=Path("x"))


# -- where the key file is -----------------------------------------------------------------


def test_default_is_beside_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "recrm.toml"
    assert default_key_path(config, "sqlite:///elsewhere/recrm.db") == (
        tmp_path / "etc" / KEY_FILE_NAME
    )
    assert default_key_path(config, "postgresql://crm@db/crm") == tmp_path / "etc" / KEY_FILE_NAME


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////srv/crm/data.db", Path("/srv/crm") / KEY_FILE_NAME),
        ("sqlite:///data/crm.db", Path("data") / KEY_FILE_NAME),
        ("sqlite:///recrm.db", Path(KEY_FILE_NAME)),
        ("sqlite+pysqlite:///data/crm.db", Path("data") / KEY_FILE_NAME),
        ("sqlite:///file:data/crm.db?uri=true", Path("data") / KEY_FILE_NAME),
    ],
)
def test_default_without_config_is_beside_the_sqlite_file(url: str, expected: Path) -> None:
    assert default_key_path(None, url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://crm@db/crm",
        "postgresql+psycopg://crm:secret@db:5432/crm",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file:shared?mode=memory&uri=true",
    ],
)
def test_no_default_for_postgresql_or_memory_without_config(url: str) -> None:
    assert default_key_path(None, url) is None
    assert key_file_path(None, None, url) is None


def test_postgresql_without_configuration_fails_naming_the_setting() -> None:
    path = key_file_path(None, None, "postgresql://crm@db/crm")
    with pytest.raises(KeyFileError, match="set key_file"):
        load_keys(path)


@pytest.mark.parametrize("url", ["not a url", "postgresql://postgres@h:abc/d",
                                 "sqlite://x@[::1/db"])
def test_an_invalid_database_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="not a valid URL"):
        default_key_path(None, url)


def test_env_beats_setting_beats_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "recrm.toml"
    url = "sqlite:///x.db"
    assert key_file_path(None, config, url) == tmp_path / KEY_FILE_NAME
    assert key_file_path("/keys/set.key", config, url) == Path("/keys/set.key")

    monkeypatch.setenv(KEY_FILE_ENV, "/keys/env.key")
    assert key_file_path("/keys/set.key", config, url) == Path("/keys/env.key")
    assert key_file_path(None, None, "postgresql://crm@db/crm") == Path("/keys/env.key")


def test_an_empty_env_or_setting_counts_as_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "recrm.toml"
    monkeypatch.setenv(KEY_FILE_ENV, "")
    assert key_file_path("/keys/set.key", config, "sqlite://") == Path("/keys/set.key")
    assert key_file_path("", config, "sqlite://") == tmp_path / KEY_FILE_NAME


def test_relative_setting_is_relative_to_the_config_directory(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "recrm.toml"
    assert key_file_path("secrets/crm.key", config, "sqlite://") == (
        tmp_path / "etc" / "secrets" / "crm.key"
    )


def test_relative_setting_without_config_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = key_file_path("secrets/crm.key", None, "postgresql://crm@db/crm")
    assert path == Path("secrets/crm.key")
    assert path is not None and path.resolve() == tmp_path / "secrets" / "crm.key"


def test_the_resolved_default_path_is_usable_end_to_end(tmp_path: Path) -> None:
    config = tmp_path / "recrm.toml"
    path = key_file_path(None, config, "postgresql://crm@db/crm")
    keys, created = ensure_key_file(path)
    assert created is True
    assert load_keys(tmp_path / KEY_FILE_NAME) == keys
