"""Issue #5 for a user: uploads and downloads of chat attachments go on after a restart.

Two real clients (own data directory, keyring, SQLCipher cache) through the real server over
TLS; chat service, transfer engine, file store and ``ChatFiles`` unmocked. A *restart* stops
the transfer's task mid-way (as the process dying would: nothing is finished for it), closes
the session without signing out, and signs in again on a fresh ``Workstation`` over the same
data directory and keyring -- new services, only the encrypted cache carries over.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from app.services.chat import ChatService
from app.services.chat_content import new_event_id
from app.services.transfers import TransferEngine, TransferOptions
from app.services.transfers import progress as phases
from app.services.transfers.chat_files import ChatFiles
from tests.integration.conftest import Workstation
from tests.integration.test_chat import Client, sign_in

CHUNK = 256 * 1024
SIZE = 8 * 1024 * 1024 + 12_345  # 33 chunks
OPTIONS = TransferOptions(chunk_size=CHUNK, parallel=2, commit_interval_s=0,
                          progress_interval_s=0)


def _engine(client: Client) -> TransferEngine:
    return TransferEngine.for_session(client.ws.session, options=OPTIONS)


async def _restart(client: Client) -> Client:
    """Close the client as a process exit would (no sign-out), sign in again over the same
    data directory and keyring, start a new chat."""
    await client.chat.stop()
    await client.ws.session.aclose()
    ws = Workstation(client.ws.server, client.ws.paths.data.parent, keyring=client.ws.keyring)
    await sign_in(ws, client.creds)
    chat = ChatService(ws.session)
    await chat.start(background=False)
    return Client(client.creds, ws, chat)


async def _interrupt(engine: TransferEngine, start, phase: str) -> int:
    """Run ``start()`` (a transfer) and cancel its task once half of it is done in ``phase``;
    returns the bytes it had reported done."""
    state = {"done": 0}
    task: asyncio.Task | None = None

    def on_progress(p) -> None:
        if p.phase == phase and p.chunks_done >= p.chunk_count // 2 and task is not None \
                and not task.done():
            state["done"] = p.bytes_done
            task.cancel()

    engine.progress.connect(on_progress)
    task = asyncio.ensure_future(start())
    with pytest.raises(asyncio.CancelledError):
        await task
    engine.progress.disconnect(on_progress)
    await engine.stop()
    return state["done"]


def _file_messages(client: Client, room_id: str) -> list[str]:
    return [m.event_id for m in client.chat.messages(room_id)
            if client.chat.attachment(m.event_id) is not None]


async def test_upload_and_download_resume_after_restart_and_announce_once(chat_pair, tmp_path):
    clients, room_id = chat_pair
    data = os.urandom(SIZE)
    path = tmp_path / "CT Doe series.zip"
    path.write_bytes(data)

    # Alice's upload stops half-way: the workstation restarts.
    alice = clients["alice"]
    files = ChatFiles(_engine(alice), alice.chat)
    before = await _interrupt(files.engine, lambda: files.send_file(room_id, path),
                              phases.UPLOADING)
    assert 0 < before < SIZE
    assert _file_messages(alice, room_id) == []  # nothing announced yet
    alice = clients["alice"] = await _restart(alice)

    files = ChatFiles(_engine(alice), alice.chat)
    shown: list = []
    files.resuming.connect(shown.append)
    runs: list = []
    files.engine.progress.connect(runs.append)
    results = await files.resume_pending()
    assert [(t.direction, t.room_id, t.name.reveal()) for t in shown[0]] == [
        ("upload", room_id, "CT Doe series.zip")]
    (result,) = results
    assert result.descriptor is not None and result.error_code == ""
    # Resumed from the chunks the server held: those were not sent again.
    resumed = max(p.resumed_bytes for p in runs if p.phase == phases.UPLOADING)
    assert resumed >= before - OPTIONS.parallel * (CHUNK + 16)
    assert 0 < resumed < result.descriptor.size + 16 * result.descriptor.chunk_count
    # Its file message went out once, under the id chosen before the upload.
    (event_id,) = _file_messages(alice, room_id)
    assert files.engine.announce_event_id(result.transfer_id) is None
    # A further restart announces nothing again.
    alice = clients["alice"] = await _restart(alice)
    again = ChatFiles(_engine(alice), alice.chat)
    assert await again.resume_pending() == []

    bob = clients["bob"]
    await bob.chat.sync_once()
    assert _file_messages(bob, room_id) == [event_id]
    info = bob.chat.attachment(event_id)
    assert info is not None and info.size == SIZE

    # Bob's download stops half-way: his workstation restarts too.
    engine = _engine(bob)
    got = await _interrupt(
        engine, lambda: engine.download(info.descriptor.to_wire(),
                                        bob.chat.attachment_sender(info), room_id=room_id),
        phases.DOWNLOADING)
    assert got > 0
    bob = clients["bob"] = await _restart(bob)
    files = ChatFiles(_engine(bob), bob.chat)
    runs.clear()
    files.engine.progress.connect(runs.append)
    (result,) = await files.resume_pending()
    assert result.file_id is not None and result.error_code == ""
    assert max(p.resumed_bytes for p in runs if p.phase == phases.DOWNLOADING) >= got
    assert files.engine.files.read(result.file_id) == data
    # What the chat view asks to show the file as available (Open / Save as...).
    again = files.engine.result(result.transfer_id)
    assert again is not None and again.file_id == result.file_id


async def test_finalized_but_not_announced_is_sent_once_after_restart(chat_pair, tmp_path):
    clients, room_id = chat_pair
    alice = clients["alice"]
    path = tmp_path / "ECG Doe.pdf"
    path.write_bytes(os.urandom(300_000))
    engine = _engine(alice)
    one, two = new_event_id(), new_event_id()
    # The process dies between finalize and queueing the message ...
    first = await engine.upload(room_id, path, transfer_id="a" * 32, announce_event_id=one)
    # ... and another dies after queueing it but before the transfer row was cleared.
    second = await engine.upload(room_id, path, transfer_id="b" * 32, announce_event_id=two)
    await alice.chat.send_attachment(room_id, second, event_id=two)
    assert _file_messages(alice, room_id) == [two]

    alice = clients["alice"] = await _restart(alice)
    refused: list = []
    alice.chat.send_failed.connect(refused.append)
    files = ChatFiles(_engine(alice), alice.chat)
    assert await files.resume_pending() == []
    assert sorted(_file_messages(alice, room_id)) == sorted([one, two])
    await alice.chat.flush()
    assert refused == []  # nothing queued twice (the relay would refuse the second)
    assert files.engine.to_announce() == []
    # Again: nothing new.
    assert await ChatFiles(_engine(alice), alice.chat).resume_pending() == []
    bob = clients["bob"]
    await bob.chat.sync_once()
    assert sorted(_file_messages(bob, room_id)) == sorted([one, two])
    assert bob.chat.attachment(one).descriptor.blob_id == first.blob_id


async def test_upload_from_memory_ends_failed_after_restart(chat_pair):
    clients, room_id = chat_pair
    alice = clients["alice"]
    engine = _engine(alice)
    before = await _interrupt(
        engine, lambda: engine.upload_bytes(room_id, os.urandom(SIZE), name="snapshot Doe.png",
                                            announce_event_id=new_event_id()),
        phases.UPLOADING)
    assert before > 0
    alice = clients["alice"] = await _restart(alice)
    files = ChatFiles(_engine(alice), alice.chat)
    ended: list = []
    files.engine.progress.connect(lambda p: ended.append(p) if p.final else None)
    (result,) = await files.resume_pending()
    assert result.error_code == "source_gone"
    assert [(p.phase, p.error_code) for p in ended] == [(phases.FAILED, "source_gone")]
    assert "Send it again" in ended[0].error_message
    assert _file_messages(alice, room_id) == []
    assert await ChatFiles(_engine(alice), alice.chat).resume_pending() == []


async def test_kiosk_keeps_nothing_to_resume(open_server, tmp_path):
    """A shared cart (logout-on-close): its cache key lived in memory only, so after a crash
    mid-upload and a sign-in again there is no transfer left -- nothing to resume, no row,
    no staging file, no message."""
    from app.security.kiosk import KioskKeyStores
    from app.services.startup import prepare_device
    from tests.integration.test_kiosk_session import Kiosk
    from tests.support.clients import create_user

    creds = create_user(open_server, "nurse.cart2")
    kiosk = Kiosk(open_server, tmp_path / "cart")
    await sign_in(kiosk, creds)
    chat = ChatService(kiosk.session)
    await chat.start(background=False)
    room_id = await chat.create_room()
    path = tmp_path / "Doe wound photo.jpg"
    path.write_bytes(os.urandom(SIZE))
    engine = TransferEngine.for_session(kiosk.session, options=OPTIONS)
    files = ChatFiles(engine, chat)
    assert await _interrupt(engine, lambda: files.send_file(room_id, path),
                            phases.UPLOADING) > 0
    assert [t.state for t in engine.pending()] == ["uploading"]
    await chat.stop()
    await kiosk.session.aclose()  # the cart crashed: no sign-out, no clean-up

    class NextProcess(Kiosk):  # the cart's next start: its own (empty) memory key stores
        stores = KioskKeyStores()

        def keystore_for(self, user, device_id):
            return self.stores(user, device_id)

    again = NextProcess(open_server, tmp_path / "cart")
    report = prepare_device(again.policy, again.paths, again.keystore_for)  # as main does
    assert report.kiosk_files_removed > 0
    await sign_in(again, creds)
    chat = ChatService(again.session)
    await chat.start(background=False)
    try:
        files = ChatFiles(TransferEngine.for_session(again.session, options=OPTIONS), chat)
        assert files.engine.pending() == [] and files.engine.transfers() == []
        assert await files.resume_pending() == []
        assert [m for m in chat.messages(room_id)] == []
        staging = again.session.cache.directory / "transfers"
        assert not staging.exists() or list(staging.iterdir()) == []
    finally:
        await chat.stop()
        await again.session.sign_out()


async def test_announcement_that_cannot_be_queued_stays_pending(chat_pair, tmp_path):
    """The upload finished but its room was left meanwhile: no message, the user is told
    (``announce_failed``), and the announcement is kept for the next sign-in."""
    clients, room_id = chat_pair
    alice = clients["alice"]
    path = tmp_path / "Doe lab.pdf"
    path.write_bytes(os.urandom(100_000))
    engine = _engine(alice)
    await engine.upload(room_id, path, transfer_id="c" * 32, announce_event_id=new_event_id())
    await alice.chat.leave(room_id)
    files = ChatFiles(engine, alice.chat)
    told: list = []
    files.announce_failed.connect(told.append)
    assert await files.resume_pending() == []
    assert [(t, e.user_message) for t, e in told] == [
        ("c" * 32, "You are not a member of this conversation.")]
    assert [r.transfer_id for r in engine.to_announce()] == ["c" * 32]
    assert _file_messages(alice, room_id) == []
