"""The transfer state in the encrypted cache (migration 3)."""

from __future__ import annotations

import pytest

from app.core.phi import Phi
from app.storage.cache import Cache
from app.storage.migrations import LATEST
from app.storage.transfers import (
    DONE,
    DOWNLOAD,
    DOWNLOADING,
    UPLOAD,
    UPLOADING,
    TransferRepository,
    bitmap_of,
    indices_of,
)

TID = "0" * 31 + "1"
TID2 = "0" * 31 + "2"


def test_bitmaps_round_trip():
    for count in (1, 7, 8, 9, 1000):
        chosen = frozenset(range(0, count, 3))
        assert indices_of(bitmap_of(chosen, count), count) == chosen
    assert indices_of(bitmap_of({5, 99}, 10), 10) == {5}


def test_rows_survive_a_reopen_and_keep_phi_tagged(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        assert cache.conn.execute("PRAGMA user_version").fetchone()[0] == LATEST >= 3
        repo = TransferRepository(cache)
        repo.insert(TID, UPLOAD, UPLOADING, "room-1", size=10, chunk_count=20,
                    file_key=b"k" * 32, name=Phi("Doe, Jane.dcm"), source=Phi("/home/x/Doe.dcm"))
        repo.update(TID, done={0, 1, 19}, blob_id="blob-1")
        repo.insert(TID2, DOWNLOAD, DOWNLOADING, "room-1", size=5, chunk_count=1)
        repo.update(TID2, state=DONE)
    with Cache.open(tmp_path, keys) as cache:
        repo = TransferRepository(cache)
        record = repo.get(TID)
        assert record.done == {0, 1, 19} and record.blob_id == "blob-1"
        assert record.file_key == b"k" * 32
        assert isinstance(record.name, Phi) and record.name.reveal() == "Doe, Jane.dcm"
        assert "Doe" not in repr(record) and "k" * 32 not in repr(record)
        assert [r.transfer_id for r in repo.unfinished()] == [TID]
        assert {r.transfer_id for r in repo.all()} == {TID, TID2}
        with pytest.raises(ValueError):
            repo.update(TID, direction="download")


def test_orphan_staging_files_are_removed(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        repo = TransferRepository(cache)
        repo.insert(TID, DOWNLOAD, DOWNLOADING, "room-1", size=10, chunk_count=1)
        repo.staging_dir.mkdir()
        repo.staging_path(TID).write_bytes(b"ciphertext")
        repo.staging_path(TID2).write_bytes(b"left by a cancelled one")
        assert repo.remove_orphan_staging() == 1
        assert repo.staging_path(TID).exists() and not repo.staging_path(TID2).exists()
        repo.delete(TID)
        assert not repo.staging_path(TID).exists() and repo.get(TID) is None
        with pytest.raises(ValueError):
            repo.staging_path("../escape")
