"""Retention and disappearing messages between real clients through the reference relay."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest

from app.services.chat import ATTACHMENT_KEY
from app.services.chat_features import ATTACHMENT_PREFIX
from app.services.transfers import TransferCancelled, TransferEngine, TransferOptions
from app.storage.cache import FILES_DIR
from app.storage.files import FileNotCached
from app.storage.transfers import STAGING_DIR, TransferRepository
from tests.integration.test_chat import new_client, room_with
from tests.integration.test_chat_messages import _post_plain


async def test_disappearing_messages_on_every_members_device(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.d")
    bob = await new_client(open_server, tmp_path, "dr.bob.d")
    purged = []
    bob.chat.purged.connect(purged.append)
    try:
        room_id = await room_with(alice, bob)
        keep_room = await room_with(alice, bob)
        await alice.chat.send_text(keep_room, "this room keeps its messages")
        first = await alice.chat.send_text(room_id, "MARKER-dis gone after a minute")
        await alice.chat.edit_message(room_id, first, "MARKER-dis edited, still goes")
        await alice.chat.set_disappearing(room_id, 60)
        assert alice.chat.disappearing(room_id) == 60
        await bob.chat.sync_once()
        assert bob.chat.disappearing(room_id) == 60 and bob.chat.disappearing(keep_room) == 0
        assert bob.texts(room_id) == ["MARKER-dis edited, still goes"]

        now = int(time.time() * 1000)
        for client in (alice, bob):  # not yet
            assert client.chat.purge_expired(now + 30_000) == set()
        later = now + 61_000
        assert bob.chat.purge_expired(later) == {room_id}
        assert purged == [{room_id}]
        assert alice.chat.purge_expired(later) == {room_id}
        for client in (alice, bob):
            assert client.texts(room_id) == []
            assert client.texts(keep_room) == ["this room keeps its messages"]
            assert client.chat.search("MARKER-dis") == []
            rows = client.chat.cache.fetchall("SELECT COUNT(*) FROM chat_message_meta", ())
            assert rows[0][0] == 0  # the edit text went too

        # Bob turns it off (any member may); the latest setting wins on both devices.
        await bob.chat.set_disappearing(room_id, 0)
        await alice.chat.sync_once()
        assert alice.chat.disappearing(room_id) == 0
        await alice.chat.send_text(room_id, "stays now")
        assert alice.chat.purge_expired(later + 3_600_000) == set()

        # A malformed setting is kept as unreadable with the reason; nothing changes.
        bad = await _post_plain(alice, room_id, {"msgtype": "disappear", "after_s": 5})
        await bob.chat.sync_once()
        assert bob.chat.disappearing(room_id) == 0
        (kept,) = [e for e in bob.chat.undecrypted(room_id) if e.event_id == bad]
        assert kept.reason == "MalformedContent"
    finally:
        await alice.close()
        await bob.close()


async def test_retention_purges_everything_older_than_the_policy(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.ret")
    try:
        room_id = await alice.chat.create_room()
        await alice.chat.send_text(room_id, "old consult note")
        now = int(time.time() * 1000)
        days = alice.ws.session.policy.retention_days
        assert alice.chat.purge_expired(now + (days - 1) * 86_400_000) == set()
        assert alice.chat.purge_expired(now + days * 86_400_000 + 1000) == {room_id}
        assert alice.texts(room_id) == []
    finally:
        await alice.close()


# -- files: attachments, their transfers and partial downloads ------------------------------

async def _send_file(client, engine, room_id, tmp_path, name, size=200_000):
    data = b"MARKER-ATTACH-Doe-" + name.encode() + os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    descriptor = await engine.upload(room_id, path)
    return await client.chat.send_attachment(room_id, descriptor), data


async def _download(client, engine, event_id):
    info = client.chat.attachment(event_id)
    return await engine.download(info.descriptor.to_wire(), client.chat.attachment_sender(info),
                                 room_id=info.room_id)


async def _paused_download(client, engine, event_id):
    """A download stopped after its first chunks: a paused row and a staging file."""
    task = asyncio.ensure_future(_download(client, engine, event_id))
    got_some = asyncio.Event()

    def on_progress(p):
        if p.direction == "download" and p.chunks_done >= 2:
            got_some.set()

    engine.progress.connect(on_progress)
    try:
        await asyncio.wait_for(got_some.wait(), 30)
        await engine.stop()
    finally:
        engine.progress.disconnect(on_progress)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    (paused,) = [r for r in TransferRepository(client.chat.cache).unfinished()]
    assert engine._repo.staging_path(paused.transfer_id).exists()
    return paused.transfer_id


async def _paused_upload(engine, room_id, tmp_path) -> str:
    """An upload stopped part-way (its message not sent yet)."""
    path = tmp_path / "Jane Doe MRI series.zip"
    path.write_bytes(os.urandom(900_000))
    task = asyncio.ensure_future(engine.upload(room_id, path))
    got_some = asyncio.Event()

    def on_progress(p):
        if p.direction == "upload" and p.phase == "uploading" and p.chunks_done >= 2:
            got_some.set()

    engine.progress.connect(on_progress)
    try:
        await asyncio.wait_for(got_some.wait(), 30)
        await engine.stop()
    finally:
        engine.progress.disconnect(on_progress)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    (paused,) = engine._repo.unfinished()
    return paused.transfer_id


def _disk_files(client) -> set[str]:
    root = client.chat.cache.directory
    return {p.name for d in (FILES_DIR, STAGING_DIR) if (root / d).exists()
            for p in (root / d).iterdir()}


async def test_purge_removes_attachment_files_rows_and_partial_downloads(open_server, tmp_path):
    """Disappearing messages take their files with them on both devices: the sender's
    upload row (file key, name), the receiver's downloaded copy (key and ciphertext file),
    a partial download's staging file and row, the descriptor rows. The files of another
    room's messages stay readable; then retention at the policy's age takes them too."""
    assert ATTACHMENT_PREFIX == ATTACHMENT_KEY
    alice = await new_client(open_server, tmp_path, "dr.alice.rf")
    bob = await new_client(open_server, tmp_path, "dr.bob.rf")
    small = TransferOptions(chunk_size=16 * 1024, parallel=1)
    engines = {c.user_id: TransferEngine.for_session(c.ws.session, options=small)
               for c in (alice, bob)}
    a_eng, b_eng = engines[alice.user_id], engines[bob.user_id]
    try:
        room_id = await room_with(alice, bob)
        keep_room = await room_with(alice, bob)
        await alice.chat.set_disappearing(room_id, 60)
        gone_1, _ = await _send_file(alice, a_eng, room_id, tmp_path, "Jane Doe CT.pdf")
        gone_2, _ = await _send_file(alice, a_eng, room_id, tmp_path, "Jane Doe Lab.pdf",
                                     size=600_000)
        kept, kept_data = await _send_file(alice, a_eng, keep_room, tmp_path, "Zhang Wei.pdf")
        await bob.chat.sync_once()
        assert bob.chat.disappearing(room_id) == 60
        gone_file = await _download(bob, b_eng, gone_1)
        kept_file = await _download(bob, b_eng, kept)
        partial = await _paused_download(bob, b_eng, gone_2)
        assert {gone_file, kept_file} <= set(b_eng.files.ids())
        assert (b_eng.files.sealed_path(gone_file).name in _disk_files(bob)
                and f"{partial}.part" in _disk_files(bob))
        assert len(TransferRepository(alice.chat.cache).all()) == 3  # three uploads
        unsent = await _paused_upload(a_eng, room_id, tmp_path)

        now = int(time.time() * 1000)
        for client in (alice, bob):  # not yet: nothing of the files moves
            before = _disk_files(client)
            assert client.chat.purge_expired(now + 30_000) == set()
            assert _disk_files(client) == before
        later = now + 61_000
        for client in (alice, bob):
            assert client.chat.purge_expired(later) == {room_id}

        # Bob: the downloaded copy (key and file), the partial download, their rows and the
        # descriptors are gone; the other room's file is still there and reads back.
        assert gone_file not in b_eng.files.ids() and b_eng.files.key(gone_file) is None
        assert _disk_files(bob) == {b_eng.files.sealed_path(kept_file).name}
        assert [r.room_id for r in TransferRepository(bob.chat.cache).all()] == [keep_room]
        assert b_eng._repo.get(partial) is None
        assert b_eng.files.read(kept_file) == kept_data
        for client in (alice, bob):
            assert client.chat.attachment(gone_1) is None
            assert client.chat.attachment(gone_2) is None
            assert client.chat.attachment(kept) is not None
            names = [n for n, _ in client.chat.state.named(ATTACHMENT_PREFIX)]
            assert names == [ATTACHMENT_PREFIX + kept]
        # Alice: the upload rows (file key, name, descriptor) of the purged room went; an
        # upload still under way is not a message yet: it stays, and resumes.
        rest = {r.transfer_id: r.room_id for r in TransferRepository(alice.chat.cache).all()}
        assert sorted(rest.values()) == sorted([keep_room, room_id]) and unsent in rest
        assert (await a_eng.resume(unsent)).descriptor.room_id == room_id
        # The purge does not resurrect anything: a second sweep finds nothing.
        assert bob.chat.purge_expired(later) == set()

        # Retention at the policy's age takes the rest, files included.
        days = bob.ws.session.policy.retention_days
        end = now + days * 86_400_000 + 1000
        for client in (alice, bob):
            assert keep_room in client.chat.purge_expired(end)
            assert TransferRepository(client.chat.cache).all() == []
            assert client.chat.state.named(ATTACHMENT_PREFIX) == []
        assert _disk_files(bob) == set() and b_eng.files.ids() == []
        with pytest.raises(FileNotCached):
            b_eng.files.read(kept_file)
    finally:
        await alice.close()
        await bob.close()


async def test_a_download_running_when_its_message_is_purged_keeps_nothing(open_server,
                                                                           tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.rr")
    bob = await new_client(open_server, tmp_path, "dr.bob.rr")
    small = TransferOptions(chunk_size=16 * 1024, parallel=1, commit_interval_s=0.0)
    a_eng = TransferEngine.for_session(alice.ws.session, options=small)
    b_eng = TransferEngine.for_session(bob.ws.session, options=small)
    try:
        room_id = await room_with(alice, bob)
        await alice.chat.set_disappearing(room_id, 60)
        event_id, _ = await _send_file(alice, a_eng, room_id, tmp_path, "Jane Doe MR.pdf",
                                       size=400_000)
        await bob.chat.sync_once()
        purged: list[set[str]] = []

        def on_progress(p):  # the sweep runs in the middle of the download
            if p.direction == "download" and p.chunks_done >= 2 and not purged:
                purged.append(bob.chat.purge_expired(int(time.time() * 1000) + 61_000))

        b_eng.progress.connect(on_progress)
        with pytest.raises(TransferCancelled):
            await _download(bob, b_eng, event_id)
        assert purged == [{room_id}]
        assert b_eng.files.ids() == [] and TransferRepository(bob.chat.cache).all() == []
        assert _disk_files(bob) == set()
    finally:
        await alice.close()
        await bob.close()
