"""Upload sources that are not a plaintext path (issue #6, #7): bytes in memory and files of
the encrypted file store, end to end through the real server; nothing plaintext is written
on the way out or in, a stored file goes encrypted once, and ``audit=False`` leaves the
entry to the caller.
"""

from __future__ import annotations

import asyncio
import io
import os

import pytest

from app.crypto.files import HEADER_SIZE, TAG_SIZE
from app.services.transfers import SourceGone, TransferEngine, TransferOptions, TransferTampered
from tests.integration.test_transfer import CHUNK, Peer, files_containing
from tests.integration.test_transfer import trio as trio  # the fixture
from tests.support.clients import server_db


def _marked(size: int, marker: bytes) -> bytes:
    data = bytearray(os.urandom(size))
    for offset in range(0, size - len(marker), 20_000):
        data[offset:offset + len(marker)] = marker
    return bytes(data)


def _scanner(peer: Peer, needles: list[bytes], phases: set[str], hits: list[str]):
    """A progress listener that scans the peer's whole data directory while the transfer
    is in ``phases`` (the staging file, the file store, the cache, anything else)."""
    def scan(snapshot) -> None:
        if snapshot.phase in phases:
            hits.extend(files_containing(peer.cache.directory, needles))
            scan.scans += 1
    scan.scans = 0
    return scan


async def test_bytes_go_from_memory_and_land_only_encrypted(trio, open_server):
    alice, bob, _eve, room_id = trio
    marker = b"SYNTH-PATIENT-Zyxwv-MRN-00424242"
    data = _marked(6 * CHUNK + 999, marker)
    needles = [marker, data[70_000:70_040]]
    hits: list[str] = []
    up = _scanner(alice, needles, {"preparing", "uploading"}, hits)
    alice.engine.options = TransferOptions(chunk_size=CHUNK, progress_interval_s=0)
    alice.engine.progress.connect(up)

    descriptor = await alice.engine.upload_bytes(room_id, data, name="IM00001.dcm",
                                                 mime="application/dicom")

    assert up.scans >= 2 and hits == []
    assert descriptor.size == len(data) and descriptor.mime.reveal() == "application/dicom"
    assert alice.engine._memory == {}  # released once done
    down = _scanner(bob, needles, {"downloading", "verifying"}, hits)
    bob.engine.options = TransferOptions(chunk_size=CHUNK, parallel=1, progress_interval_s=0)
    bob.engine.progress.connect(down)
    file_id = await bob.engine.download(descriptor.to_wire(), alice.known, room_id=room_id)
    # The staging file held ciphertext only while chunks arrived; the result is in the
    # encrypted file store, nowhere else.
    assert down.scans >= 2 and hits == []
    assert bob.engine.files.read(file_id) == data
    for peer in (alice, bob):
        assert files_containing(peer.cache.directory, needles) == []
    assert files_containing(open_server.data_dir, needles) == []
    assert ("file.send", "ok") in alice.audit_actions()


async def test_a_paused_memory_upload_resumes_in_process_and_not_after_a_restart(
        trio, tmp_path):
    alice, bob, _eve, room_id = trio
    alice.engine.options = TransferOptions(chunk_size=CHUNK, parallel=1, progress_interval_s=0)
    data = os.urandom(12 * CHUNK)

    async def paused_upload(engine: TransferEngine) -> str:
        stopping: list[asyncio.Future] = []

        def stop_midway(snapshot) -> None:
            if snapshot.phase == "uploading" and snapshot.chunks_done >= 3 and not stopping:
                stopping.append(asyncio.ensure_future(engine.stop()))

        engine.progress.connect(stop_midway)
        task = asyncio.ensure_future(engine.upload_bytes(room_id, data, name="snap.png"))
        with pytest.raises(asyncio.CancelledError):
            await task
        await stopping[0]
        engine.progress.disconnect(stop_midway)
        (paused,) = [t for t in engine.transfers() if t.phase == "paused"]
        return paused.transfer_id

    # A dropped connection / stop: the engine still holds the bytes; resume finishes.
    transfer_id = await paused_upload(alice.engine)
    result = await alice.engine.resume(transfer_id)
    assert result.ok and alice.engine._memory == {}
    file_id = await bob.engine.download(result.descriptor.to_wire(), alice.known)
    assert bob.engine.files.read(file_id) == data

    # A restart (a new engine on the same cache): the bytes are gone, never read from disk.
    transfer_id = await paused_upload(alice.engine)
    restarted = TransferEngine(alice.cache, alice.device.transport, alice.engine.device,
                               audit=alice.audit, options=alice.engine.options)
    with pytest.raises(SourceGone):
        await restarted.resume(transfer_id)
    assert restarted.result(transfer_id) is None
    (ended,) = [t for t in restarted.transfers() if t.transfer_id == transfer_id]
    assert ended.phase == "failed" and ended.error_code == "source_gone"


async def test_a_stored_file_goes_encrypted_once(trio, open_server):
    """A file of the encrypted file store (e.g. a recording) is read through its decryptor
    and encrypted once under the transfer key: the blob is exactly the plaintext plus one
    tag per chunk (ciphertext of ciphertext would carry the stored file's header and tags
    too), and the receiver gets the plaintext, not the stored file's ciphertext."""
    alice, bob, _eve, room_id = trio
    data = os.urandom(9 * CHUNK + 4321)
    stored = alice.engine.files.put(io.BytesIO(data), len(data))
    local_key = alice.engine.files.key(stored)

    descriptor = await alice.engine.upload_stored(room_id, stored, name="recording.scf")

    assert descriptor.size == len(data)
    assert descriptor.blob_size == len(data) + TAG_SIZE * descriptor.chunk_count
    assert descriptor.key != local_key  # the stored file's key stays on this device
    file_id = await bob.engine.download(descriptor.to_wire(), alice.known)
    assert bob.engine.files.read(file_id) == data
    row = server_db(open_server).connection().execute(
        "SELECT total_size FROM blobs WHERE blob_id = ?", (descriptor.blob_id,)).fetchone()
    assert row[0] == descriptor.blob_size
    assert alice.engine.files.read(stored) == data  # the source is left as it was


async def test_a_damaged_stored_file_fails_the_upload(trio):
    alice, _bob, _eve, room_id = trio
    data = os.urandom(3 * CHUNK)
    stored = alice.engine.files.put(io.BytesIO(data), len(data))
    path = alice.engine.files.sealed_path(stored)
    raw = bytearray(path.read_bytes())
    raw[HEADER_SIZE + 5000] ^= 0x01
    st = path.stat()
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(TransferTampered):
        await alice.engine.upload_stored(room_id, stored, name="x.bin")
    with pytest.raises(SourceGone):
        await alice.engine.upload_stored(room_id, "0" * 32, name="x.bin")


async def test_audit_false_leaves_the_entry_to_the_caller(trio):
    alice, bob, _eve, room_id = trio
    before_a, before_b = len(alice.audit_actions()), len(bob.audit_actions())
    quiet = await alice.engine.upload_bytes(room_id, b"a" * 5000, name="a", audit=False)
    await bob.engine.download(quiet.to_wire(), alice.known, audit=False)
    assert len(alice.audit_actions()) == before_a and len(bob.audit_actions()) == before_b
    loud = await alice.engine.upload_bytes(room_id, b"b" * 5000, name="b")
    await bob.engine.download(loud.to_wire(), alice.known)
    assert alice.audit_actions()[before_a:] == [("file.send", "ok")]
    assert bob.audit_actions()[before_b:] == [("file.download", "ok")]


async def test_a_stored_upload_resumes_after_a_restart(trio):
    """The encrypted store is a source that survives a restart: a new engine on the same
    cache goes on from the server's chunks, reading the stored file again."""
    alice, bob, _eve, room_id = trio
    alice.engine.options = TransferOptions(chunk_size=CHUNK, parallel=1, progress_interval_s=0)
    data = os.urandom(12 * CHUNK + 5)
    stored = alice.engine.files.put(io.BytesIO(data), len(data))
    stopping: list[asyncio.Future] = []

    def stop_midway(snapshot) -> None:
        if snapshot.phase == "uploading" and snapshot.chunks_done >= 4 and not stopping:
            stopping.append(asyncio.ensure_future(alice.engine.stop()))

    alice.engine.progress.connect(stop_midway)
    task = asyncio.ensure_future(alice.engine.upload_stored(room_id, stored, name="r.bin"))
    with pytest.raises(asyncio.CancelledError):
        await task
    await stopping[0]
    restarted = TransferEngine(alice.cache, alice.device.transport, alice.engine.device,
                               audit=alice.audit, options=alice.engine.options)
    seen: list = []
    restarted.progress.connect(seen.append)
    (result,) = await restarted.resume_pending()
    assert result.ok and result.descriptor.size == len(data)
    assert any(s.phase == "uploading" and s.resumed_bytes >= 4 * CHUNK for s in seen)
    file_id = await bob.engine.download(result.descriptor.to_wire(), alice.known)
    assert bob.engine.files.read(file_id) == data
