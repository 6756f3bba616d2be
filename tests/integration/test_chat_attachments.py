"""Attachments in the chat, end to end: two real clients (own device, SQLCipher cache, audit
log) through the reference server over TLS; chat service, transfer engine and file store
unmocked. Sent like a message (outbox, Megolm), downloaded, verified, saved (audited)."""

from __future__ import annotations

import os

import pytest

from app.services.chat_content import Attachment
from app.services.transfers import TransferEngine, TransferTampered
from tests.integration.test_audit_queue import client_rows
from tests.integration.test_chat import new_client, raw_files_containing, room_with
from tests.support.clients import server_db

MARKER = b"MARKER-ATTACH-Doe-4711"


@pytest.fixture
async def pair(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice")
    bob = await new_client(open_server, tmp_path, "dr.bob")
    room_id = await room_with(alice, bob)
    engines = {c.user_id: TransferEngine.for_session(c.ws.session) for c in (alice, bob)}
    yield alice, bob, room_id, engines
    await alice.close()
    await bob.close()


async def _send(alice, engines, room_id, tmp_path, size=300_000, name="Befund Doe.pdf"):
    data = MARKER + os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    descriptor = await engines[alice.user_id].upload(room_id, path)
    event_id = await alice.chat.send_attachment(room_id, descriptor)
    return event_id, data, descriptor


async def test_attachment_round_trips_and_saves_identical_bytes(pair, open_server, tmp_path):
    alice, bob, room_id, engines = pair
    event_id, data, descriptor = await _send(alice, engines, room_id, tmp_path)
    mine = alice.chat.attachment(event_id)
    assert mine is not None and mine.name.reveal() == "Befund Doe.pdf"

    await bob.chat.sync_once()
    (message,) = [m for m in bob.chat.messages(room_id) if m.event_id == event_id]
    assert message.body.reveal() == "Befund Doe.pdf"
    info = bob.chat.attachment(event_id)
    assert info is not None and info.size == len(data)
    assert (info.sender, info.sender_device) == (alice.user_id,
                                                 alice.ws.session.device.device_id)
    file_id = await engines[bob.user_id].download(info.descriptor.to_wire(),
                                          bob.chat.attachment_sender(info), room_id=room_id)
    assert engines[bob.user_id].files.read(file_id) == data

    out = tmp_path / "saved" / "copy.pdf"
    out.parent.mkdir()
    await bob.chat.export_attachment(engines[bob.user_id].files, file_id, info, str(out))
    assert out.read_bytes() == data
    await bob.ws.session.audit.flush()
    rows = client_rows(server_db(open_server), bob.ws.session.device.device_id)
    exports = [r for r in rows if r["action"] == "client.file.export"]
    assert [(r["object_id"], r["outcome"]) for r in exports] == [(descriptor.blob_id, "ok")]
    assert "Befund" not in str(exports)
    # Neither the relay nor the blob store holds the name or the bytes in the clear; the
    # receiver's cache neither.
    needles = [MARKER, b"Befund Doe"]
    assert raw_files_containing(open_server.data_dir, needles) == {}
    assert raw_files_containing(bob.ws.paths.data, needles) == {}


async def test_tampered_blob_is_refused_with_the_engines_message(pair, open_server, tmp_path):
    alice, bob, room_id, engines = pair
    event_id, _data, descriptor = await _send(alice, engines, room_id, tmp_path)
    chunk = open_server.settings.blob_dir / descriptor.blob_id / "00000000"
    raw = bytearray(chunk.read_bytes())
    raw[40] ^= 0x01
    chunk.write_bytes(bytes(raw))
    await bob.chat.sync_once()
    info = bob.chat.attachment(event_id)
    assert info is not None
    with pytest.raises(TransferTampered) as caught:
        await engines[bob.user_id].download(info.descriptor.to_wire(),
                                    bob.chat.attachment_sender(info), room_id=room_id)
    assert "tampered" in caught.value.user_message
    assert engines[bob.user_id].files.ids() == []


async def test_descriptor_of_another_room_is_not_a_file_message(pair, tmp_path):
    alice, bob, room_id, engines = pair
    other_room = await room_with(alice, bob)
    path = tmp_path / "x.bin"
    path.write_bytes(b"x" * 1000)
    descriptor = await engines[alice.user_id].upload(other_room, path)
    with pytest.raises(Exception, match="another room"):
        await alice.chat.send_attachment(room_id, descriptor)
    # A sender who puts it there anyway (bypassing the check) is refused by the receiver.
    content = Attachment(descriptor)
    async with alice.chat._lock:
        with alice.chat.cache.write():
            alice.chat._queue_content(room_id, "sc_forgedroomxx", content)
    await alice.chat.flush()
    await bob.chat.sync_once()
    assert bob.chat.attachment("sc_forgedroomxx") is None
    assert [e.reason for e in bob.chat.undecrypted(room_id)] == ["Misdirected"]
