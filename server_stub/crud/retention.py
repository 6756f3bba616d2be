"""Retention: ciphertext the relay has held longer than ``retention_days`` is deleted.

Events, to-device messages (delivered or not), their dedup records and blobs go; rooms,
current memberships and break-glass entries stay (the latter are audit material). The same
sweep records grants that lapsed since the last one, so devices rotate Megolm even when the
lapsed user never comes back.
"""

from __future__ import annotations

from dataclasses import dataclass

from server_stub.core.db import Database
from server_stub.crud import blobs as blobs_crud
from server_stub.crud import grants
from server_stub.crud.blobs import BlobFiles
from server_stub.crud.rooms import StoredEvent

DAY_MS = 86_400_000
# Blob rows are deleted in batches so that one sweep never holds the write lock for long.
_BATCH = 500


@dataclass(frozen=True)
class PurgeReport:
    events: int
    to_device: int
    txns: int
    blobs: int
    memberships: int
    lapsed: list[StoredEvent]


def purge(db: Database, files: BlobFiles, *, retention_days: int, now_ms: int) -> PurgeReport:
    cutoff = now_ms - retention_days * DAY_MS
    with db.transaction() as conn:
        lapsed = grants.lapse_expired(conn, now_ms)
    with db.transaction() as conn:
        events = conn.execute("DELETE FROM events WHERE origin_ms < ?", (cutoff,)).rowcount
        to_device = conn.execute(
            "DELETE FROM to_device WHERE created_ms < ?", (cutoff,)).rowcount
        txns = conn.execute(
            "DELETE FROM to_device_txns WHERE created_ms < ?", (cutoff,)).rowcount
        memberships = conn.execute(
            "DELETE FROM room_members WHERE state = 'left' AND since_ms < ?", (cutoff,)).rowcount
    blobs = 0
    while True:
        with db.transaction() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT blob_id FROM blobs WHERE created_ms < ? LIMIT ?", (cutoff, _BATCH))]
            blobs_crud.delete_rows(conn, ids)
        # Files go after the rows commit (see delete_rows): a crash in between leaves
        # orphan files (swept below), never a row that points at nothing.
        for blob_id in ids:
            files.delete(blob_id)
        blobs += len(ids)
        if len(ids) < _BATCH:
            break
    _remove_orphan_dirs(db, files)
    return PurgeReport(events, to_device, txns, blobs, memberships, lapsed)


def _remove_orphan_dirs(db: Database, files: BlobFiles) -> None:
    if not files.root.is_dir():
        return
    conn = db.connection()
    for entry in files.root.iterdir():
        if not entry.is_dir() or not files.is_blob_dir_name(entry.name):
            continue
        known = conn.execute("SELECT 1 FROM blobs WHERE blob_id = ?", (entry.name,)).fetchone()
        if known is None:
            files.delete(entry.name)
