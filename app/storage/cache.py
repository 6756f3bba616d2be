"""The encrypted cache: one SQLCipher 4 database per user per device.

Opening it (:meth:`Cache.open`):

1. key with a random 256-bit *raw* key from the key store (``PRAGMA key = "x'<hex>'"``), so
   SQLCipher skips its PBKDF2 step -- the key is already full-entropy -- and opening is fast;
   ``memory_security=True`` turns on ``cipher_memory_security``, so SQLCipher wipes the
   memory it frees and locks its buffers out of swap. The caller decides (the session passes
   ``Policy.cache_memory_security``, off by default): it is process-wide and sticky in
   SQLCipher (it cannot be turned off again) and costs 15-25x per statement, for little
   gain in a Python process (docs/device-protection.md);
2. prove the key by reading the schema: a wrong key (another device, a lost key entry) or a
   damaged first page -> :class:`CacheKeyError`;
3. WAL, foreign keys, temporary tables in memory (no temp files), migrations;
4. integrity: ``cipher_integrity_check`` (every page's HMAC) and ``quick_check`` when the
   last session did not close cleanly, or when asked. A clean-closed cache skips the full
   scan, which is linear in its size; a page damaged at rest is still caught when read,
   because SQLCipher authenticates every page it loads (-> :class:`CacheCorrupt`);
5. rollback: the database keeps a generation counter that the key store keeps too. A file
   whose counter is below the key store's is an old copy put back -> :class:`CacheRollback`.
   The counter is bumped in the session's first write transaction (inside it: no extra
   fsync), on :meth:`checkpoint` (the session calls it periodically) and on close after a
   write -- database first, so a crash between the two leaves database >= key store. Not on
   open itself: that would cost a durable write (an fsync, milliseconds) on every unlock,
   and a session that writes nothing leaves the file as it was, so there is nothing newer
   to roll back from. The first write also clears the "closed cleanly" flag.

Durability: a commit waits for the disk (``synchronous = FULL``: an fsync of the WAL) unless
the caller says it need not -- ``write(durable=False)``, a commit that survives a crash of
the process (the WAL is in the OS's page cache) but may be lost with the last few others by a
power cut or an OS crash. Such commits become durable with the next durable one (the WAL is
a log: an fsync covers every frame before it) or :meth:`sync`. The session's first write is
always durable (it clears the "closed cleanly" flag, so :attr:`closed_cleanly` of the next
open tells whether non-durable commits may have been lost).

Checkpoints: SQLite's automatic checkpoint would run inside whichever commit crosses 1,000
pages of WAL -- a page copy and two fsyncs on the event loop, the p99 of a chat message
(docs/performance.md, "Chat"). It is off; every :data:`CHECKPOINT_EVERY_COMMITS` commits a
passive checkpoint runs on a thread with its own connection (it blocks no reader or writer),
and :meth:`Cache.close` folds the rest in.

Every error above is a :class:`CacheUnreadable`, and its recovery is :meth:`Cache.rebuild`:
delete the unreadable files (db, -wal, -shm and the cache's encrypted files, whose keys were
inside) and start empty with a fresh key; the caller refetches from the server and audits.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

import sqlcipher3

from app.storage.errors import (
    CacheBusy,
    CacheCorrupt,
    CacheDiskFull,
    CacheError,
    CacheKeyError,
    CacheRollback,
)
from app.storage.migrations import LATEST, MIGRATIONS

Verify = Literal["auto", "full", "skip"]
DB_NAME = "cache.db"
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
FILES_DIR = "files"
# A chat message's commit writes ~5-20 pages: this is about SQLite's own 1,000-page trigger.
CHECKPOINT_EVERY_COMMITS = 100


class CacheKeys(Protocol):
    """What the cache needs from the key store (app.security.keystore.KeyStore has it)."""

    def cache_key(self) -> bytes: ...
    def new_cache_key(self) -> bytes: ...
    def generation(self) -> int: ...
    def set_generation(self, value: int) -> None: ...


def cache_dir(data_dir: Path, user_id: str, device_id: str) -> Path:
    """The directory of one user's cache. Hashed, so the path names no one."""
    digest = hashlib.sha256(f"{device_id}|{user_id}".encode()).hexdigest()[:32]
    return data_dir / "users" / digest


def cache_files(directory: Path) -> list[Path]:
    """Every file that belongs to the cache in ``directory`` (those present)."""
    db = directory / DB_NAME
    return [p for p in [db, *(Path(f"{db}{s}") for s in SIDE_SUFFIXES)] if p.exists()]


# SQLite primary result codes (sqlite3.h) that the cache tells apart.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 5, 6, 11, 13, 26


def typed_error(exc: sqlcipher3.DatabaseError) -> CacheError:
    """The cache error for a SQLCipher error. Only real damage is :class:`CacheCorrupt` --
    the one whose recovery deletes the cache -- never a lock or a full disk."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    # The message names the SQLite condition (e.g. "database disk image is malformed"),
    # never row content.
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return CacheCorrupt(f"cache read failed: {exc}")
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return CacheBusy(f"cache busy: {exc}")
    if code == _SQLITE_FULL:
        return CacheDiskFull(f"cache write failed: {exc}")
    return CacheError(f"cache error ({getattr(exc, 'sqlite_errorname', 'unknown')}): {exc}")


@contextlib.contextmanager
def db_errors() -> Iterator[None]:
    """Map SQLCipher's errors on a keyed database to the cache's typed errors."""
    try:
        yield
    except sqlcipher3.IntegrityError:
        raise
    except sqlcipher3.DatabaseError as exc:
        raise typed_error(exc) from None


class Cache:
    """An open cache. Repositories (app.storage.messages, ...) take it as their argument."""

    def __init__(self, directory: Path, conn: sqlcipher3.Connection, keys: CacheKeys) -> None:
        self.directory = directory
        self._conn = conn
        # One cursor kept for hot reads: making a cursor per query costs ~5 us, as much as
        # turning 50 rows into messages (measured in tests/bench/test_cache_bench.py).
        self._reader = conn.cursor()
        self._keys = keys
        self._depth = 0
        self._wrote = False  # this session has bumped the generation already
        self._synchronous = "FULL"  # the connection's current setting
        self._undurable = False  # a commit since the last durable one did not wait for disk
        # Transactions that ended without committing: a repository that keeps rows in memory
        # drops them when this moves (what it read or wrote inside may not be on disk).
        self.aborted = 0
        self.generation = 0
        self.full_check_ran = False
        # Whether the last session closed the cache (set at open): False after a crash or a
        # power cut, which may have lost non-durable commits (write(durable=False)).
        self.closed_cleanly = True
        self._key_bytes = b""
        self._memory_security = False
        self._commits_since_checkpoint = 0
        self._checkpointer: threading.Thread | None = None

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls, directory: Path, keys: CacheKeys, *, verify: Verify = "auto",
        memory_security: bool = False,
    ) -> Cache:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = directory / DB_NAME
        existed = db.exists() and db.stat().st_size > 0
        if not existed:
            # Side files and encrypted files without their database (a crash mid-delete)
            # belong to a dead cache: their keys were in it. SQLite must not try to replay a
            # stale WAL into the new database either.
            remove_cache(directory)
        # A new file gets a new key: whatever old copies exist somewhere stay unreadable.
        key = keys.cache_key() if existed else keys.new_cache_key()
        conn = sqlcipher3.connect(str(db), isolation_level=None)
        try:
            cache = cls(directory, conn, keys)
            cache._key(key, memory_security=memory_security)
            cache._prepare(fresh=not existed)
            cache._verify(verify)
            cache._check_generation()
        except BaseException:
            conn.close()
            raise
        return cache

    @classmethod
    def rebuild(cls, directory: Path, keys: CacheKeys, *, memory_security: bool = False) -> Cache:
        """Delete the unreadable cache (db, side files, its encrypted files); open a new one.

        Nothing is moved aside: an unreadable copy is of no use to us and of some use to an
        attacker. The new cache has a new key.
        """
        remove_cache(directory)
        return cls.open(directory, keys, memory_security=memory_security)

    def _key(self, key: bytes, *, memory_security: bool) -> None:
        if len(key) != 32:
            raise CacheError("cache key must be 32 bytes")
        # Raw-key form: no KDF. The hex never reaches a log: this string lives only here.
        self._conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        self._key_bytes, self._memory_security = key, memory_security  # for the checkpointer
        if memory_security:
            self._conn.execute("PRAGMA cipher_memory_security = ON")
        try:
            self._conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        except sqlcipher3.DatabaseError as exc:
            error = typed_error(exc)
            if isinstance(error, CacheCorrupt):
                raise CacheKeyError(
                    "the cache key does not open the cache file (wrong key or damaged header)"
                ) from None
            raise error from None

    def _prepare(self, *, fresh: bool) -> None:
        with db_errors():
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise CacheError(f"cache could not enter WAL mode ({mode})")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA temp_store = MEMORY")
            self._conn.execute("PRAGMA wal_autocheckpoint = 0")  # ours runs off the commit
            self._conn.execute("PRAGMA synchronous = FULL")
            self._migrate(fresh=fresh)

    def _migrate(self, *, fresh: bool) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > LATEST:
            raise CacheError(f"cache schema {version} is newer than this client ({LATEST})")
        for number, statements in MIGRATIONS:
            if number <= version:
                continue
            with self.write():
                for statement in statements:
                    self._conn.execute(statement)
                if number == 1:
                    self._conn.execute(
                        "INSERT INTO meta (id, generation, clean_shutdown, created_ms) "
                        "VALUES (1, ?, 1, ?)",
                        (self._keys.generation(), int(time.time() * 1000)),
                    )
                self._conn.execute(f"PRAGMA user_version = {int(number)}")
        if not fresh and version == 0:
            # An existing file with no schema: not ours, or truncated before the first commit.
            raise CacheCorrupt("cache file has no schema")

    def _verify(self, verify: Verify) -> None:
        with db_errors():
            clean = self._conn.execute("SELECT clean_shutdown FROM meta").fetchone()
            if clean is None:
                raise CacheCorrupt("cache meta row is missing")
            self.closed_cleanly = bool(clean[0])
            if verify == "skip" or (verify == "auto" and clean[0]):
                return
            self.full_check_ran = True
            bad_pages = self._conn.execute("PRAGMA cipher_integrity_check").fetchall()
            if bad_pages:
                raise CacheCorrupt(f"cipher_integrity_check: {len(bad_pages)} problem(s)")
            result = self._conn.execute("PRAGMA quick_check").fetchall()
            if result != [("ok",)]:
                raise CacheCorrupt(f"quick_check: {len(result)} problem(s)")

    def _check_generation(self) -> None:
        with db_errors():
            db_gen = self._conn.execute("SELECT generation FROM meta").fetchone()[0]
        ks_gen = self._keys.generation()
        if db_gen < ks_gen:
            raise CacheRollback(f"cache generation {db_gen} is below key store's {ks_gen}")
        self.generation = db_gen

    def _bump(self, *, clean: bool) -> None:
        """Bump the generation in its own transaction."""
        with self.write():
            self._write_generation(clean=clean)
        self._publish_generation()

    def _write_generation(self, *, clean: bool) -> None:
        self._next_generation = max(self.generation, self._keys.generation()) + 1
        self._conn.execute(
            "UPDATE meta SET generation = ?, clean_shutdown = ? WHERE id = 1",
            (self._next_generation, int(clean)),
        )
        self._wrote = True

    def _publish_generation(self) -> None:
        # After the database commit (durable: synchronous=FULL), never before.
        self._keys.set_generation(self._next_generation)
        self.generation = self._next_generation

    # -- use -----------------------------------------------------------------------------

    @property
    def conn(self) -> sqlcipher3.Connection:
        """For repositories in app.storage only."""
        return self._conn

    def fetchall(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        """One read query's rows, errors typed as :func:`db_errors` does.

        For hot read paths (search, timeline): a plain ``try`` costs nothing until an
        error, where the context manager costs a generator per call.
        """
        try:
            return self._reader.execute(sql, args).fetchall()
        except sqlcipher3.IntegrityError:
            raise
        except sqlcipher3.DatabaseError as exc:
            raise typed_error(exc) from None

    @contextlib.contextmanager
    def write(self, *, durable: bool = True) -> Iterator[sqlcipher3.Connection]:
        """One write transaction; nested uses join the outer one (whose ``durable`` holds).

        The session's first write transaction also bumps the generation and clears the
        clean-shutdown flag, inside the same commit (always durable). ``durable=False``: the
        commit does not wait for the disk (see the module's docstring); for writes whose
        loss by a power cut the caller has made harmless.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self._conn
            finally:
                self._depth -= 1
            return
        mode = "FULL" if durable or not self._wrote else "NORMAL"
        with db_errors():
            if mode != self._synchronous:  # only outside a transaction
                self._conn.execute(f"PRAGMA synchronous = {mode}")
                self._synchronous = mode
            self._conn.execute("BEGIN IMMEDIATE")
        changes = self._conn.total_changes
        self._depth = 1
        first_write = False
        try:
            yield self._conn
            if not self._wrote and self._has_meta():
                self._write_generation(clean=False)
                first_write = True
        except BaseException as exc:
            self._depth = 0
            self.aborted += 1
            if first_write:
                self._wrote = False
            with contextlib.suppress(sqlcipher3.Error):
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlcipher3.DatabaseError) and not isinstance(
                exc, sqlcipher3.IntegrityError,
            ):
                raise typed_error(exc) from None
            raise
        self._depth = 0
        try:
            with db_errors():
                self._conn.execute("COMMIT")
        except BaseException:
            self.aborted += 1
            if first_write:
                self._wrote = False
            raise
        if self._conn.total_changes != changes:  # an empty commit writes (and syncs) nothing
            self._undurable = mode == "NORMAL"
            self._commits_since_checkpoint += 1
            if self._commits_since_checkpoint >= CHECKPOINT_EVERY_COMMITS:
                self._checkpoint_in_background()
        if first_write:
            self._publish_generation()

    @property
    def in_transaction(self) -> bool:
        """Whether a write transaction is open (a new ``write()`` would join it)."""
        return self._depth > 0

    def sync(self) -> None:
        """Make every commit so far durable (after non-durable ones). Nothing to do when the
        last commit was durable. A checkpoint: SQLite syncs the WAL before copying it into
        the database (a commit that changes no page would write, and sync, nothing)."""
        if not self._undurable or self._depth:
            return
        with db_errors():
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self._undurable = False

    def _checkpoint_in_background(self) -> None:
        """Fold the WAL into the database on a thread of its own (one at a time)."""
        if self._checkpointer is not None and self._checkpointer.is_alive():
            return
        self._commits_since_checkpoint = 0
        self._checkpointer = threading.Thread(
            target=_passive_checkpoint, name="cache-checkpoint", daemon=True,
            args=(self.directory / DB_NAME, self._key_bytes, self._memory_security))
        self._checkpointer.start()

    def _join_checkpointer(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.join()
            self._checkpointer = None

    def _has_meta(self) -> bool:
        # False only inside the very first migration, before the meta table exists.
        return self._conn.execute(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'"
        ).fetchone() is not None

    def checkpoint(self) -> None:
        """Bump the rollback counter mid-session (call it periodically, e.g. every minute)."""
        self._bump(clean=False)

    def close(self) -> None:
        """After a write (or a full check): bump, mark clean, fold the WAL in. Then close."""
        if self._conn is None:
            return
        try:
            self._join_checkpointer()
            if self._wrote or self.full_check_ran:
                self._bump(clean=True)
                with db_errors():
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _passive_checkpoint(db: Path, key: bytes, memory_security: bool) -> None:
    """A passive checkpoint on a connection of its own. A failure is left for the next one
    (or close's): the WAL is still a valid log, only longer."""
    try:
        conn = sqlcipher3.connect(str(db), isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
            if memory_security:
                conn.execute("PRAGMA cipher_memory_security = ON")
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()
    except sqlcipher3.Error:
        pass


def remove_cache(directory: Path) -> None:
    """Unlink the cache files and its encrypted-files folder. Missing files are fine."""
    for path in cache_files(directory):
        path.unlink(missing_ok=True)
    shutil.rmtree(directory / FILES_DIR, ignore_errors=True)

