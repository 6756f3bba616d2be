"""What an upload is part of (client migration 8): kept with its row across a reopen, and
the rows still waiting for their announcement in any state (app/services/transfers/
chat_files.py ends an interrupted study share from them)."""

from __future__ import annotations

from app.storage.cache import Cache
from app.storage.migrations import LATEST
from app.storage.transfers import (
    CANCELLED,
    DONE,
    RECORDING,
    STUDY,
    UPLOAD,
    UPLOADING,
    TransferRepository,
)

A, B, C, D = ("0" * 31 + str(n) for n in range(1, 5))


def test_purpose_survives_a_reopen_and_announcing_lists_every_state(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        assert cache.conn.execute("PRAGMA user_version").fetchone()[0] == LATEST >= 8
        repo = TransferRepository(cache)
        repo.insert(A, UPLOAD, UPLOADING, "room-1", size=1, chunk_count=1, purpose=STUDY,
                    announce_event_id="ev-study")
        repo.insert(B, UPLOAD, UPLOADING, "room-1", size=1, chunk_count=1, purpose=STUDY,
                    announce_event_id="ev-study")
        repo.update(B, state=DONE)
        repo.insert(C, UPLOAD, UPLOADING, "room-1", size=1, chunk_count=1, purpose=RECORDING,
                    purpose_ref="rec-1", announce_event_id="ev-rec")
        repo.update(C, state=CANCELLED)
        repo.insert(D, UPLOAD, UPLOADING, "room-1", size=1, chunk_count=1)  # chat, no id
    with Cache.open(tmp_path, keys) as cache:
        repo = TransferRepository(cache)
        assert (repo.get(C).purpose, repo.get(C).purpose_ref) == (RECORDING, "rec-1")
        assert (repo.get(D).purpose, repo.get(D).purpose_ref) == (None, None)
        assert {r.transfer_id for r in repo.announcing()} == {A, B, C}
        assert [r.transfer_id for r in repo.to_announce()] == [B]  # finished ones only
        repo.update(A, announce_event_id=None)
        assert {r.transfer_id for r in repo.announcing()} == {B, C}
