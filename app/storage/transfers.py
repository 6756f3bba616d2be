"""Resumable file transfers, inside the encrypted cache (migrations 3, 6 and 8).

One row per upload or download (app/services/transfers/): its state, which chunks are done
(a bitmap), and what is needed to go on after a dropped connection or a restart -- the
per-file key, the ciphertext header, the per-chunk tags of an upload's preparation, the
signed descriptor. The file's name, type and source path are patient data: they are kept
here only, in the SQLCipher cache, and come back as :class:`~app.core.phi.Phi` values.
An upload's ``source`` is a path the user picked, ``store:<file id>`` (a file of the
encrypted file store) or ``memory:`` (bytes the engine holds while the process lives);
see app/services/transfers/sources.py.

A download keeps the ciphertext it has received so far in a *staging* file under
``<cache>/transfers/`` -- ciphertext only, under the file key held in this table, so losing
the cache (wipe, kiosk crash, rebuild) leaves it unreadable.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from app.core.phi import Phi
from app.storage.cache import Cache, db_errors

STAGING_DIR = "transfers"
STAGING_SUFFIX = ".part"

UPLOAD, DOWNLOAD = "upload", "download"
# States. "done", "failed" and "cancelled" are final; the others resume.
PREPARING = "preparing"  # upload: encrypting once to learn the digest and chunk tags
UPLOADING = "uploading"  # upload: blob created, chunks going up
DOWNLOADING = "downloading"
VERIFYING = "verifying"  # download: all chunks here; digest check, then into the file store
DONE, FAILED, CANCELLED = "done", "failed", "cancelled"
FINAL_STATES = frozenset({DONE, FAILED, CANCELLED})
# Purposes (None: a chat attachment).
RECORDING, STUDY = "recording", "study"

_FIELDS = (
    "transfer_id", "direction", "state", "room_id", "blob_id", "size", "chunk_count", "done",
    "file_key", "header", "tags", "sha256", "source", "source_stamp", "name", "mime",
    "descriptor", "sender_ed25519", "file_id", "error", "created_ms", "updated_ms",
    "announce_event_id", "purpose", "purpose_ref",
)
_UPDATABLE = frozenset(_FIELDS) - {"transfer_id", "direction", "created_ms", "updated_ms"}


def _now() -> int:
    return int(time.time() * 1000)


def empty_bitmap(count: int) -> bytes:
    return bytes((count + 7) // 8)


def bitmap_of(indices: set[int] | frozenset[int], count: int) -> bytes:
    bits = bytearray(empty_bitmap(count))
    for i in indices:
        if 0 <= i < count:
            bits[i >> 3] |= 1 << (i & 7)
    return bytes(bits)


def indices_of(bitmap: bytes, count: int) -> frozenset[int]:
    return frozenset(i for i in range(count) if i >> 3 < len(bitmap)
                     and bitmap[i >> 3] & (1 << (i & 7)))


@dataclass(frozen=True, slots=True)
class TransferRecord:
    transfer_id: str
    direction: str
    state: str
    room_id: str
    blob_id: str | None
    size: int  # plaintext bytes
    chunk_count: int
    done: frozenset[int]
    file_key: bytes | None = field(repr=False)
    header: bytes | None = field(repr=False)
    tags: bytes | None = field(repr=False)
    sha256: str | None
    source: Phi[str] | None
    source_stamp: str | None
    name: Phi[str] | None
    mime: Phi[str] | None
    descriptor: str | None = field(repr=False)  # JSON; holds the file key
    sender_ed25519: str | None
    file_id: str | None
    error: str | None
    created_ms: int
    updated_ms: int
    # A chat attachment's upload: the event id of its file message, until that message is
    # queued in the chat outbox (migration 6; app/services/transfers/chat_files.py).
    announce_event_id: str | None = None
    # What the upload is part of (migration 8): None for a chat attachment, RECORDING (the
    # recording's id in ``purpose_ref``) or STUDY (one file of a study share, grouped by the
    # manifest's event id in ``announce_event_id``).
    purpose: str | None = None
    purpose_ref: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def _phi(value: str | None) -> Phi[str] | None:
    return None if value is None else Phi(value)


def _plain(value: object) -> object:
    return value.reveal() if isinstance(value, Phi) else value


class TransferRepository:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    @property
    def staging_dir(self) -> Path:
        return self._cache.directory / STAGING_DIR

    def staging_path(self, transfer_id: str) -> Path:
        if len(transfer_id) != 32 or not all(c in "0123456789abcdef" for c in transfer_id):
            raise ValueError("transfer id must be 32 lowercase hex characters")
        return self.staging_dir / f"{transfer_id}{STAGING_SUFFIX}"

    def _row(self, row: tuple) -> TransferRecord:
        values = dict(zip(_FIELDS, row, strict=True))
        for name in ("file_key", "header", "tags"):
            if values[name] is not None:
                values[name] = bytes(values[name])
        values["done"] = indices_of(bytes(values["done"]), values["chunk_count"])
        for name in ("source", "name", "mime"):
            values[name] = _phi(values[name])
        return TransferRecord(**values)

    def insert(self, transfer_id: str, direction: str, state: str, room_id: str, *,
               size: int, chunk_count: int, **fields: object) -> TransferRecord:
        now = _now()
        values: dict[str, object] = {
            "transfer_id": transfer_id, "direction": direction, "state": state,
            "room_id": room_id, "size": size, "chunk_count": chunk_count,
            "done": empty_bitmap(chunk_count), "created_ms": now, "updated_ms": now,
        }
        for name, value in fields.items():
            if name not in _UPDATABLE:
                raise ValueError(f"unknown transfer field {name!r}")
            values[name] = _plain(value)
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._cache.write() as conn:
            conn.execute(f"INSERT INTO transfers ({names}) VALUES ({marks})",  # noqa: S608
                         tuple(values.values()))
        record = self.get(transfer_id)
        assert record is not None
        return record

    def transaction(self) -> contextlib.AbstractContextManager[object]:
        """One write transaction around several calls (e.g. a row and its audit entry)."""
        return self._cache.write()

    def get(self, transfer_id: str) -> TransferRecord | None:
        with db_errors():
            row = self._cache.conn.execute(
                f"SELECT {', '.join(_FIELDS)} FROM transfers WHERE transfer_id = ?",  # noqa: S608
                (transfer_id,)).fetchone()
        return self._row(row) if row else None

    def update(self, transfer_id: str, **fields: object) -> None:
        """Set the given fields (``done`` as a set of chunk indices)."""
        if not fields:
            return
        values: dict[str, object] = {}
        for name, value in fields.items():
            if name not in _UPDATABLE:
                raise ValueError(f"unknown transfer field {name!r}")
            values[name] = _plain(value)
        if "done" in values:
            done = values["done"]
            if not isinstance(done, (bytes, bytearray)):
                count = self._count(transfer_id)
                values["done"] = bitmap_of(frozenset(done), count)  # type: ignore[arg-type]
        values["updated_ms"] = _now()
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._cache.write() as conn:
            conn.execute(f"UPDATE transfers SET {assignments} WHERE transfer_id = ?",  # noqa: S608
                         (*values.values(), transfer_id))

    def _count(self, transfer_id: str) -> int:
        with db_errors():
            row = self._cache.conn.execute(
                "SELECT chunk_count FROM transfers WHERE transfer_id = ?", (transfer_id,),
            ).fetchone()
        if row is None:
            raise KeyError(transfer_id)
        return int(row[0])

    def unfinished(self) -> list[TransferRecord]:
        """Transfers to resume, oldest first."""
        marks = ", ".join("?" for _ in FINAL_STATES)
        with db_errors():
            rows = self._cache.conn.execute(
                f"SELECT {', '.join(_FIELDS)} FROM transfers"  # noqa: S608
                f" WHERE state NOT IN ({marks}) ORDER BY created_ms, transfer_id",
                tuple(sorted(FINAL_STATES))).fetchall()
        return [self._row(r) for r in rows]

    def to_announce(self) -> list[TransferRecord]:
        """Finished uploads whose file message is not queued in the chat yet, oldest first."""
        with db_errors():
            rows = self._cache.conn.execute(
                f"SELECT {', '.join(_FIELDS)} FROM transfers"  # noqa: S608
                " WHERE announce_event_id IS NOT NULL AND state = ?"
                " ORDER BY created_ms, transfer_id", (DONE,)).fetchall()
        return [self._row(r) for r in rows]

    def announcing(self) -> list[TransferRecord]:
        """Uploads, in any state, still holding the event id they are to be announced
        under (finished or not, failed or cancelled by a process that stopped before it
        settled them), oldest first."""
        with db_errors():
            rows = self._cache.conn.execute(
                f"SELECT {', '.join(_FIELDS)} FROM transfers"  # noqa: S608
                " WHERE announce_event_id IS NOT NULL"
                " ORDER BY created_ms, transfer_id").fetchall()
        return [self._row(r) for r in rows]

    def all(self) -> list[TransferRecord]:
        with db_errors():
            rows = self._cache.conn.execute(
                f"SELECT {', '.join(_FIELDS)} FROM transfers"  # noqa: S608
                " ORDER BY created_ms, transfer_id").fetchall()
        return [self._row(r) for r in rows]

    def idle_or_of_blobs(self, idle_before_ms: int | None,
                         blob_ids: Collection[str] = ()) -> list[TransferRecord]:
        """Rows not updated since ``idle_before_ms``, and the rows of ``blob_ids`` (for the
        retention sweep: it decides which of them go)."""
        clauses, args = [], []
        if idle_before_ms is not None:
            clauses.append("updated_ms < ?")
            args.append(idle_before_ms)
        blobs = sorted(set(blob_ids))
        if blobs:
            clauses.append(f"blob_id IN ({', '.join('?' for _ in blobs)})")
            args.extend(blobs)
        if not clauses:
            return []
        with db_errors():
            rows = self._cache.conn.execute(
                f"SELECT {', '.join(_FIELDS)} FROM transfers"  # noqa: S608
                f" WHERE {' OR '.join(clauses)} ORDER BY created_ms, transfer_id",
                tuple(args)).fetchall()
        return [self._row(r) for r in rows]

    def delete(self, transfer_id: str) -> None:
        with self._cache.write() as conn:
            conn.execute("DELETE FROM transfers WHERE transfer_id = ?", (transfer_id,))
        with contextlib.suppress(ValueError):
            self.staging_path(transfer_id).unlink(missing_ok=True)

    def remove_orphan_staging(self) -> int:
        """Delete staging files that no unfinished download owns (their key is gone, or the
        transfer ended); returns how many."""
        if not self.staging_dir.exists():
            return 0
        live = {r.transfer_id for r in self.unfinished() if r.direction == DOWNLOAD}
        removed = 0
        for path in self.staging_dir.iterdir():
            if path.is_file() and path.stem not in live:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed
