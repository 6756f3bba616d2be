"""Resumable store for encrypted blobs (files, images, recordings), chunk by chunk.

The client encrypts first; the server only checks shape (sizes, chunk count) and, at
finalize, that the bytes it holds hash to what the uploader declared. Chunks live as files
under ``blob_dir/<blob_id>/<index>``, written to a temporary name and renamed, so a dropped
connection never leaves a half-written chunk that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server_stub.core.security import new_id
from server_stub.crud.rooms import WRITER_ROLES, Refused, require_member

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
_READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Blob:
    blob_id: str
    room_id: str
    owner_user_id: Any
    owner_device_id: str | None
    total_size: int
    chunk_size: int
    chunk_count: int
    sha256: str
    state: str
    created_ms: int
    completed_ms: int | None

    def to_wire(self, present: list[int] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "blob_id": self.blob_id, "room_id": self.room_id, "total_size": self.total_size,
            "chunk_size": self.chunk_size, "chunk_count": self.chunk_count,
            "sha256": self.sha256, "state": self.state, "created_ms": self.created_ms,
            "completed_ms": self.completed_ms,
        }
        if present is not None:
            out["present_chunks"] = present
        return out


def _from_row(row: sqlite3.Row) -> Blob:
    return Blob(
        blob_id=row["blob_id"], room_id=row["room_id"], owner_user_id=row["owner_user_id"],
        owner_device_id=row["owner_device_id"], total_size=row["total_size"],
        chunk_size=row["chunk_size"], chunk_count=row["chunk_count"], sha256=row["sha256"],
        state=row["state"], created_ms=row["created_ms"], completed_ms=row["completed_ms"],
    )


class BlobFiles:
    """The on-disk half: one directory per blob, one file per chunk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def is_blob_dir_name(name: str) -> bool:
        return _ID.match(name) is not None

    def _dir(self, blob_id: str) -> Path:
        if not _ID.match(blob_id):  # ids are server-made; this guards the path join
            raise Refused(404, "not_found", "no such blob")
        return self.root / blob_id

    def chunk_path(self, blob_id: str, index: int) -> Path:
        return self._dir(blob_id) / f"{index:08d}"

    def write_chunk(self, blob_id: str, index: int, data: bytes) -> None:
        directory = self._dir(blob_id)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self.chunk_path(blob_id, index)
        tmp = final.with_name(f"{final.name}.{new_id()}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def read_chunk(self, blob_id: str, index: int) -> bytes:
        try:
            return self.chunk_path(blob_id, index).read_bytes()
        except FileNotFoundError:
            raise Refused(404, "chunk_missing", "that chunk has not been uploaded") from None

    def digest(self, blob_id: str, chunk_count: int) -> tuple[int, str]:
        """(total bytes, hex sha256) over the chunks in order."""
        h = hashlib.sha256()
        total = 0
        for index in range(chunk_count):
            with self.chunk_path(blob_id, index).open("rb") as fh:
                while block := fh.read(_READ_BLOCK):
                    h.update(block)
                    total += len(block)
        return total, h.hexdigest()

    def delete(self, blob_id: str) -> None:
        shutil.rmtree(self._dir(blob_id), ignore_errors=True)


def validate_shape(
    *, total_size: int, chunk_size: int, chunk_count: int, sha256: str,
    max_chunk_bytes: int, max_blob_bytes: int,
) -> None:
    if total_size < 1 or chunk_size < 1 or chunk_count < 1:
        raise Refused(400, "malformed", "sizes and chunk count must be positive")
    if chunk_size > max_chunk_bytes:
        raise Refused(413, "too_large", f"chunk_size must be at most {max_chunk_bytes} bytes")
    if total_size > max_blob_bytes:
        raise Refused(413, "too_large", f"a blob must be at most {max_blob_bytes} bytes")
    if chunk_count != -(-total_size // chunk_size):
        raise Refused(400, "malformed", "chunk_count must be ceil(total_size / chunk_size)")
    if not _HEX64.match(sha256):
        raise Refused(400, "malformed", "sha256 must be 64 lowercase hex digits")


def create_blob(
    conn: sqlite3.Connection, *, room_id: str, owner_user_id: Any, owner_device_id: str | None,
    total_size: int, chunk_size: int, chunk_count: int, sha256: str, now_ms: int,
    max_chunk_bytes: int, max_blob_bytes: int,
) -> Blob:
    validate_shape(total_size=total_size, chunk_size=chunk_size, chunk_count=chunk_count,
                   sha256=sha256, max_chunk_bytes=max_chunk_bytes, max_blob_bytes=max_blob_bytes)
    require_member(conn, room_id, owner_user_id, now_ms, roles=WRITER_ROLES)
    blob_id = new_id()
    conn.execute(
        "INSERT INTO blobs (blob_id, room_id, owner_user_id, owner_device_id, total_size,"
        " chunk_size, chunk_count, sha256, state, created_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'uploading', ?)",
        (blob_id, room_id, owner_user_id, owner_device_id, total_size, chunk_size, chunk_count,
         sha256, now_ms),
    )
    blob = get_blob(conn, blob_id)
    assert blob is not None  # inserted above, same transaction
    return blob


def get_blob(conn: sqlite3.Connection, blob_id: str) -> Blob | None:
    row = conn.execute("SELECT * FROM blobs WHERE blob_id = ?", (blob_id,)).fetchone()
    return _from_row(row) if row is not None else None


def blob_for_member(
    conn: sqlite3.Connection, blob_id: str, user_id: Any, now_ms: int,
    *, roles: tuple[str, ...] | None = None,
) -> Blob:
    """The blob if the caller is an active member of its room; the same 403 otherwise."""
    blob = get_blob(conn, blob_id)
    if blob is None:
        raise Refused(403, "not_member", "you are not a member of this blob's consult")
    if roles is None:
        require_member(conn, blob.room_id, user_id, now_ms)
    else:
        require_member(conn, blob.room_id, user_id, now_ms, roles=roles)
    return blob


def require_owner_device(blob: Blob, user_id: Any, device_id: str | None) -> None:
    """Only the device that created a blob may delete it (a member's other device, or
    another member, may not)."""
    if blob.owner_user_id != user_id or blob.owner_device_id is None \
            or blob.owner_device_id != device_id:
        raise Refused(403, "forbidden", "only the device that uploaded this blob may delete it")


def delete_rows(conn: sqlite3.Connection, blob_ids: Sequence[str]) -> None:
    """Deleting blobs, step 1 (in the caller's write transaction): their rows, and with them
    their chunk rows (``ON DELETE CASCADE``). Step 2, only after the commit:
    ``BlobFiles.delete`` for each. In that order a crash in between leaves orphan
    directories, which the retention sweep removes, never a row that points at nothing;
    and a chunk upload racing the delete finds no row at its record step, so it refuses
    and removes what it wrote. The one way blobs are deleted: retention and
    ``DELETE /v1/blobs/{id}`` both use it."""
    conn.executemany("DELETE FROM blobs WHERE blob_id = ?", [(i,) for i in blob_ids])


def check_chunk(blob: Blob, index: int, size: int | None = None) -> None:
    if not 0 <= index < blob.chunk_count:
        raise Refused(416, "chunk_out_of_range",
                      f"chunk index must be from 0 to {blob.chunk_count - 1}")
    if size is not None:
        if size > blob.chunk_size:
            raise Refused(413, "too_large", f"a chunk must be at most {blob.chunk_size} bytes")
        if size == 0:
            raise Refused(400, "malformed", "a chunk must not be empty")


def record_chunk(conn: sqlite3.Connection, blob_id: str, index: int, size: int) -> None:
    conn.execute(
        "INSERT INTO blob_chunks (blob_id, idx, size) VALUES (?, ?, ?)"
        " ON CONFLICT (blob_id, idx) DO UPDATE SET size = excluded.size",
        (blob_id, index, size),
    )


def present_chunks(conn: sqlite3.Connection, blob_id: str) -> list[int]:
    rows = conn.execute(
        "SELECT idx FROM blob_chunks WHERE blob_id = ? ORDER BY idx", (blob_id,)
    ).fetchall()
    return [r[0] for r in rows]


def begin_finalize(conn: sqlite3.Connection, blob: Blob) -> bool:
    """Step 1 (in a transaction): check completeness and sizes, then freeze the chunks.

    Returns False when the blob is already complete. Hashing happens outside the
    transaction (it can take seconds); 'finalizing' makes chunk uploads wait meanwhile.
    """
    if blob.state == "complete":
        return False
    present = present_chunks(conn, blob.blob_id)
    missing = sorted(set(range(blob.chunk_count)) - set(present))
    if missing:
        shown = ",".join(str(i) for i in missing[:20])
        raise Refused(409, "chunks_missing", f"chunks not uploaded yet: {shown}")
    declared = conn.execute(
        "SELECT COALESCE(SUM(size), 0) FROM blob_chunks WHERE blob_id = ?", (blob.blob_id,)
    ).fetchone()[0]
    if declared != blob.total_size:
        raise Refused(409, "size_mismatch", "the chunks do not add up to total_size")
    conn.execute("UPDATE blobs SET state = 'finalizing' WHERE blob_id = ?", (blob.blob_id,))
    return True


def check_digest(files: BlobFiles, blob: Blob) -> Refused | None:
    """Step 2 (no transaction): the refusal to report, or None when the bytes match."""
    try:
        total, digest = files.digest(blob.blob_id, blob.chunk_count)
    except FileNotFoundError:
        return Refused(409, "chunks_missing", "a chunk file is missing; upload it again")
    if total != blob.total_size:
        return Refused(409, "size_mismatch", "the chunks do not add up to total_size")
    if digest != blob.sha256:
        return Refused(409, "hash_mismatch", "the uploaded bytes do not match sha256")
    return None


def end_finalize(conn: sqlite3.Connection, blob_id: str, *, ok: bool, now_ms: int) -> None:
    """Step 3 (in a transaction): complete, or reopen for upload so the client can resume."""
    if ok:
        conn.execute(
            "UPDATE blobs SET state = 'complete', completed_ms = ? WHERE blob_id = ?"
            " AND state = 'finalizing'",
            (now_ms, blob_id),
        )
    else:
        conn.execute(
            "UPDATE blobs SET state = 'uploading' WHERE blob_id = ? AND state = 'finalizing'",
            (blob_id,),
        )
