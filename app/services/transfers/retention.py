"""Retention of transfers: what the chat's retention sweep removes besides messages
(docs/e2ee.md, "Retention and disappearing messages").

A transfer row holds the file's name and type (patient data), its file key and, for a
finished download, the id of the decrypted copy in the :class:`EncryptedFileStore`. When
the message that carried the file leaves the cache -- by age (``Policy.retention_days``) or
because its room's messages disappear -- the row goes, with its staging file (partial
ciphertext) and its stored file (key first: crypto-erase). Rows that have not moved for
longer than the retention go too, whatever carried them (a cancelled upload, a study's
file); in a room with disappearing messages, rows idle for longer than its time -- except
an unfinished upload, whose message has not been sent yet (only the retention applies).

A download still running when its row goes stops at its end: it finds its row gone, deletes
what it stored and ends as cancelled (app/services/transfers/download.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from app.storage.cache import Cache
from app.storage.files import EncryptedFileStore
from app.storage.transfers import UPLOAD, TransferRecord, TransferRepository


@dataclass(frozen=True, slots=True)
class PurgedTransfers:
    transfers: int = 0  # rows removed
    files: int = 0  # stored (downloaded) files removed
    staging: int = 0  # left-over partial downloads removed

    def __bool__(self) -> bool:
        return bool(self.transfers or self.files or self.staging)


def _expired(record: TransferRecord, blob_ids: Collection[str], older_than_ms: int | None,
             room_cutoffs: Mapping[str, int]) -> bool:
    if record.blob_id is not None and record.blob_id in blob_ids:
        return True
    if older_than_ms is not None and record.updated_ms < older_than_ms:
        return True
    if record.direction == UPLOAD and not record.final:
        return False  # not sent yet: the room's disappearing time has not begun
    cutoff = room_cutoffs.get(record.room_id)
    return cutoff is not None and record.updated_ms < cutoff


def purge_transfers(cache: Cache, *, blob_ids: Collection[str] = (),
                    older_than_ms: int | None = None,
                    room_cutoffs: Mapping[str, int] | None = None,
                    files: EncryptedFileStore | None = None) -> PurgedTransfers:
    """Remove the transfers of the blobs ``blob_ids`` (their messages are gone), those not
    updated since ``older_than_ms``, and those of a room in ``room_cutoffs`` not updated
    since its cut-off: row, staging file and stored file. Call inside the cache's write
    transaction of the purge it belongs to."""
    repo = TransferRepository(cache)
    store = files if files is not None else EncryptedFileStore(cache)
    cutoffs = room_cutoffs or {}
    removed = stored = 0
    idle_before = max([c for c in (older_than_ms, *cutoffs.values()) if c is not None],
                      default=None)
    with cache.write():
        for record in repo.idle_or_of_blobs(idle_before, blob_ids):
            if not _expired(record, blob_ids, older_than_ms, cutoffs):
                continue
            if record.file_id is not None:
                with contextlib.suppress(ValueError):  # not a file id: nothing stored
                    stored += store.key(record.file_id) is not None
                    store.delete(record.file_id)
            repo.delete(record.transfer_id)  # the staging file too
            removed += 1
    staging = repo.remove_orphan_staging() if removed else 0
    return PurgedTransfers(removed, stored, staging)
