import shutil

import pytest
import sqlcipher3

from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.security.keystore import MemoryKeyStore
from app.storage.cache import DB_NAME, Cache, cache_dir, cache_files
from app.storage.errors import (
    CacheBusy,
    CacheCorrupt,
    CacheDiskFull,
    CacheKeyError,
    CacheRollback,
    CacheUnreadable,
)
from app.storage.messages import MessageRepository

MARKER = "ZEBRA-MARKER-4711 patient note"


def msg(i: int, room: str = "!r1", body: str = MARKER) -> CachedMessage:
    return CachedMessage(room, f"$e{i}", "@dr:x", 1000 + i, Phi(f"{body} {i}"))


def test_data_is_encrypted_at_rest(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        MessageRepository(cache).insert_many(msg(i) for i in range(50))
        cache.conn.execute("PRAGMA wal_checkpoint(FULL)")
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"SQLite format 3" not in raw
    assert b"ZEBRA-MARKER" not in raw and MARKER.encode("utf-16-le") not in raw
    assert len(raw) > 4096


def test_settings_on_open(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        conn = cache.conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # memory
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
        assert conn.execute("PRAGMA cipher_version").fetchone()[0].startswith("4.")


def test_reopen_keeps_data(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        MessageRepository(cache).insert(msg(1))
    with Cache.open(tmp_path, keys) as cache:
        assert [m.event_id for m in MessageRepository(cache).list_room("!r1")] == ["$e1"]


def test_does_not_open_without_its_key(tmp_path, keys):
    Cache.open(tmp_path, keys).close()
    stranger = MemoryKeyStore("alice", "DEV1")  # same names, its own (random) key
    stranger.set_generation(keys.generation())
    with pytest.raises(CacheKeyError) as info:
        Cache.open(tmp_path, stranger)
    assert isinstance(info.value, CacheUnreadable)
    assert "rebuilt" in info.value.user_message


def test_copied_to_another_device_does_not_open(tmp_path, keys):
    home = cache_dir(tmp_path / "a", "alice", "DEV1")
    with Cache.open(home, keys) as cache:
        MessageRepository(cache).insert(msg(1))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    other_device = MemoryKeyStore("alice", "DEV2")
    # Even the copied directory at the original's path name opens only with DEV1's key.
    with pytest.raises(CacheKeyError):
        Cache.open(cache_dir(tmp_path / "b", "alice", "DEV1"), other_device)
    assert cache_dir(tmp_path / "b", "alice", "DEV2") != cache_dir(tmp_path / "b", "alice", "DEV1")


def test_old_copy_is_refused_as_rollback(tmp_path, keys):
    live, backup = tmp_path / "live", tmp_path / "backup"
    with Cache.open(live, keys) as cache:
        MessageRepository(cache).insert(msg(1))
    shutil.copytree(live, backup)
    with Cache.open(live, keys) as cache:  # a later session
        MessageRepository(cache).insert(msg(2))
    shutil.rmtree(live)
    shutil.copytree(backup, live)  # put the old copy back
    with pytest.raises(CacheRollback) as info:
        Cache.open(live, keys)
    assert "older copy" in info.value.user_message


def test_rollback_within_a_session_is_caught_after_checkpoint(tmp_path, keys):
    live, backup = tmp_path / "live", tmp_path / "backup"
    cache = Cache.open(live, keys)
    shutil.copytree(live, backup)  # taken while open
    cache.checkpoint()
    cache.close()
    shutil.rmtree(live)
    shutil.copytree(backup, live)
    with pytest.raises(CacheRollback):
        Cache.open(live, keys)


def test_generation_moves_on_first_write_checkpoint_and_close(tmp_path, keys):
    Cache.open(tmp_path, keys).close()
    start = keys.generation()
    cache = Cache.open(tmp_path, keys)
    assert keys.generation() == start  # opening writes nothing (no fsync on unlock)
    repo = MessageRepository(cache)
    repo.insert(msg(1))
    assert keys.generation() == cache.generation == start + 1
    repo.insert(msg(2))
    assert keys.generation() == start + 1  # once per session, not per write
    cache.checkpoint()
    assert keys.generation() == start + 2
    cache.close()
    assert keys.generation() == start + 3
    with Cache.open(tmp_path, keys) as cache:
        assert cache.generation == start + 3
    assert keys.generation() == start + 3  # a read-only session leaves the file as it was


def test_rollback_of_a_session_that_only_wrote_once(tmp_path, keys):
    live, backup = tmp_path / "live", tmp_path / "backup"
    Cache.open(live, keys).close()
    shutil.copytree(live, backup)
    cache = Cache.open(live, keys)
    MessageRepository(cache).insert(msg(1))
    cache.conn.close()  # crash: no close(), no checkpoint
    shutil.rmtree(live)
    shutil.copytree(backup, live)
    with pytest.raises(CacheRollback):
        Cache.open(live, keys)


def test_failed_first_write_does_not_count_as_the_bump(tmp_path, keys):
    Cache.open(tmp_path, keys).close()
    start = keys.generation()
    with Cache.open(tmp_path, keys) as cache:
        with pytest.raises(RuntimeError), cache.write():
            raise RuntimeError("boom")
        assert keys.generation() == start
        MessageRepository(cache).insert(msg(1))
        assert keys.generation() == start + 1


def test_crash_between_db_and_keystore_bump_still_opens(tmp_path, keys):
    with Cache.open(tmp_path, keys):
        pass
    keys.set_generation(keys.generation() - 1)  # the key store write was lost
    Cache.open(tmp_path, keys).close()


def _flip_page_byte(path, page: int, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[page * 4096 + offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_page_found_by_full_check(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        MessageRepository(cache).insert_many(msg(i) for i in range(300))
    db = tmp_path / DB_NAME
    assert db.stat().st_size > 8 * 4096
    _flip_page_byte(db, 5)
    with pytest.raises(CacheCorrupt):
        Cache.open(tmp_path, keys, verify="full")


def test_corrupt_page_found_when_read(tmp_path, keys):
    with Cache.open(tmp_path, keys):
        pass
    db = tmp_path / DB_NAME
    # Pages past the empty cache's are message pages; the schema (which outgrows page 1
    # as migrations add tables) stays readable, so opening works and reading fails.
    schema_pages = db.stat().st_size // 4096
    with Cache.open(tmp_path, keys) as cache:
        MessageRepository(cache).insert_many(msg(i) for i in range(300))
    pages = db.stat().st_size // 4096
    for page in range(max(2, schema_pages), pages):
        _flip_page_byte(db, page)
    # A clean-closed cache skips the full scan; the damage shows as soon as pages are read.
    with pytest.raises(CacheCorrupt):
        cache = Cache.open(tmp_path, keys)
        MessageRepository(cache).search(MARKER[:8])
        MessageRepository(cache).list_room("!r1", limit=1000)


def test_unclean_shutdown_triggers_full_check(tmp_path, keys):
    Cache.open(tmp_path, keys).close()
    cache = Cache.open(tmp_path, keys)
    MessageRepository(cache).insert(msg(1))
    cache.conn.close()  # no close(): as after a crash
    reopened = Cache.open(tmp_path, keys)
    assert reopened.full_check_ran
    reopened.close()
    clean = Cache.open(tmp_path, keys)
    assert not clean.full_check_ran
    clean.close()


def test_damaged_header_is_a_key_error(tmp_path, keys):
    Cache.open(tmp_path, keys).close()
    _flip_page_byte(tmp_path / DB_NAME, 0, offset=40)
    with pytest.raises(CacheKeyError):
        Cache.open(tmp_path, keys)


def test_truncated_file_is_unreadable(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        MessageRepository(cache).insert_many(msg(i) for i in range(300))
    db = tmp_path / DB_NAME
    db.write_bytes(db.read_bytes()[: 3 * 4096])
    with pytest.raises(CacheUnreadable):
        cache = Cache.open(tmp_path, keys, verify="full")
        MessageRepository(cache).list_room("!r1", limit=1000)


@pytest.mark.parametrize("damage", ["key", "rollback", "corrupt"])
def test_rebuild_recovers_with_a_fresh_empty_cache(tmp_path, keys, damage):
    with Cache.open(tmp_path, keys) as cache:
        MessageRepository(cache).insert_many(msg(i) for i in range(300))
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "x.scf").write_bytes(b"ciphertext")
    if damage == "key":
        keys.new_cache_key()
    elif damage == "rollback":
        keys.set_generation(keys.generation() + 5)
    else:
        _flip_page_byte(tmp_path / DB_NAME, 4)
    with pytest.raises(CacheUnreadable):
        Cache.open(tmp_path, keys, verify="full")
    old_key = keys.cache_key()
    with Cache.rebuild(tmp_path, keys) as cache:
        assert MessageRepository(cache).list_room("!r1") == []
        assert keys.cache_key() != old_key  # a new file gets a new key
    assert not (tmp_path / "files").exists()
    Cache.open(tmp_path, keys, verify="full").close()


def test_cache_files_lists_side_files(tmp_path, keys):
    cache = Cache.open(tmp_path, keys)
    names = {p.name for p in cache_files(tmp_path)}
    assert {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"} <= names
    cache.close()


def test_cache_dir_names_no_one(tmp_path):
    path = cache_dir(tmp_path, "alice@hospital.example", "DEV1")
    assert "alice" not in str(path) and "DEV1" not in str(path)
    assert path != cache_dir(tmp_path, "bob@hospital.example", "DEV1")


def test_write_rolls_back_on_error(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        repo = MessageRepository(cache)
        with pytest.raises(RuntimeError), cache.write():
            repo.insert(msg(1))
            raise RuntimeError("boom")
        assert repo.list_room("!r1") == []


def test_stale_side_files_without_a_database_are_dropped(tmp_path, keys):
    cache = Cache.open(tmp_path, keys)
    MessageRepository(cache).insert_many(msg(i) for i in range(50))
    wal = (tmp_path / f"{DB_NAME}-wal").read_bytes()
    cache.conn.close()  # crash with the data still in the WAL
    (tmp_path / DB_NAME).unlink()  # ... and a half-finished delete
    (tmp_path / f"{DB_NAME}-wal").write_bytes(wal)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "orphan.scf").write_bytes(b"keyless ciphertext")
    with Cache.open(tmp_path, keys, verify="full") as fresh:
        assert not (tmp_path / "files").exists()
        # The dead cache's WAL (ciphertext under a discarded key) is gone at once.
        last_frame = wal[-4096:]
        assert all(last_frame not in p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
        assert MessageRepository(fresh).list_room("!r1") == []


def test_full_disk_is_its_own_error_and_loses_nothing(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        repo = MessageRepository(cache)
        repo.insert_many(msg(i) for i in range(10))
        pages = cache.conn.execute("PRAGMA page_count").fetchone()[0]
        cache.conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # stands for a full disk
        big = [msg(1000 + i, body="x" * 3000) for i in range(100)]
        with pytest.raises(CacheDiskFull) as info:
            repo.insert_many(big)
        assert not isinstance(info.value, CacheUnreadable)  # never answered by a rebuild
        assert len(repo.list_room("!r1", limit=1000)) == 10  # the batch rolled back whole
        repo.insert(msg(99))  # and the cache still works
    with Cache.open(tmp_path, keys, verify="full") as cache:
        assert len(MessageRepository(cache).list_room("!r1", limit=1000)) == 11


def test_busy_is_not_corruption(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        other = sqlcipher3.connect(str(tmp_path / DB_NAME), isolation_level=None, timeout=0)
        other.execute(f"PRAGMA key = \"x'{keys.cache_key().hex()}'\"")
        other.execute("BEGIN IMMEDIATE")  # a second SafeConsult holding the write lock
        cache.conn.execute("PRAGMA busy_timeout = 0")
        try:
            with pytest.raises(CacheBusy) as info:
                MessageRepository(cache).insert(msg(1))
            assert not isinstance(info.value, CacheUnreadable)
        finally:
            other.execute("ROLLBACK")
            other.close()
        MessageRepository(cache).insert(msg(1))


def test_the_wal_is_folded_in_off_the_commit_path(tmp_path, keys):
    """No commit checkpoints (SQLite's automatic one is off: it cost a chat message's p99);
    every CHECKPOINT_EVERY_COMMITS commits a thread with its own connection does."""
    from app.storage.cache import CHECKPOINT_EVERY_COMMITS

    copy = tmp_path / "copy"
    with Cache.open(tmp_path / "c", keys) as cache:
        assert cache.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        repo = MessageRepository(cache)
        assert cache._checkpointer is None
        # Opening committed a few times already (the session's first write, migrations).
        rows = CHECKPOINT_EVERY_COMMITS - cache._commits_since_checkpoint
        for i in range(rows - 1):
            repo.insert(msg(i))
        assert cache._checkpointer is None  # not yet

        def database_file_alone() -> list[str]:
            # What the main database file holds by itself, as another reader would see it
            # with no WAL: only what a checkpoint has copied in.
            copy.mkdir(exist_ok=True)
            shutil.copy(tmp_path / "c" / DB_NAME, copy / DB_NAME)
            conn = sqlcipher3.connect(str(copy / DB_NAME))
            conn.execute(f"PRAGMA key = \"x'{keys.cache_key().hex()}'\"")
            try:
                return [r[0] for r in conn.execute("SELECT event_id FROM messages")]
            except sqlcipher3.OperationalError:  # not even the schema is in the file yet
                return []
            finally:
                conn.close()
                shutil.rmtree(copy)

        assert database_file_alone() == []  # everything is still in the WAL
        repo.insert(msg(rows))
        checkpointer = cache._checkpointer
        assert checkpointer is not None and checkpointer.name == "cache-checkpoint"
        checkpointer.join(timeout=30)
        assert len(database_file_alone()) == rows
        repo.insert(msg(rows + 1))  # writing goes on after it
    with Cache.open(tmp_path / "c", keys) as cache:
        assert len(MessageRepository(cache).list_room("!r1", limit=500)) == rows + 1
