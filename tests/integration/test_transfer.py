"""Attachments end to end: real devices (own identity, own SQLCipher cache, own audit log)
through the real server over TLS; the engine, the blob API and the file store unmocked.

The server's blob files are edited directly to play a malicious or broken server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.crypto.files import TAG_SIZE
from app.crypto.identity import b64
from app.net import relay_api
from app.security.keystore import MemoryKeyStore
from app.services.audit import AuditService
from app.services.transfers import (
    AttachmentDescriptor,
    DescriptorInvalid,
    DeviceSigner,
    KnownDevice,
    ManifestSignatureInvalid,
    SourceChanged,
    TransferCancelled,
    TransferEngine,
    TransferOptions,
    TransferRefused,
    TransferTampered,
    parse_descriptor,
)
from app.storage.cache import Cache
from tests.support.clients import LoggedInDevice, new_user_device, server_db

CHUNK = 64 * 1024


@dataclass
class Peer:
    device: LoggedInDevice
    cache: Cache
    audit: AuditService
    engine: TransferEngine

    @property
    def known(self) -> KnownDevice:
        """How the other devices know this one (its enrolled Ed25519 key)."""
        return KnownDevice(self.device.user_id, self.device.device_id,
                           self.device.identity.ed25519)

    def audit_actions(self) -> list[tuple[str, str]]:
        rows = self.cache.conn.execute("SELECT payload FROM audit_queue ORDER BY seq").fetchall()
        out = []
        for (payload,) in rows:
            entry = json.loads(bytes(payload))
            out.append((entry["action"], entry["outcome"]))
        return out

    async def close(self) -> None:
        self.cache.close()
        await self.device.aclose()


def make_peer(device: LoggedInDevice, directory: Path, **options) -> Peer:
    cache = Cache.open(directory, MemoryKeyStore(device.user_id, device.device_id))
    audit = AuditService(cache, device.identity.sign, device_id=device.device_id)
    signer = DeviceSigner(device.user_id, device.device_id, device.identity.sign)
    engine = TransferEngine(cache, device.transport, signer, audit=audit,
                            options=TransferOptions(**{"chunk_size": CHUNK, **options}))
    return Peer(device, cache, audit, engine)


@pytest.fixture
async def trio(open_server, tmp_path):
    """Alice and Bob share a room; Eve is signed in but not a member."""
    peers = []
    for name in ("dr.alice", "dr.bob", "dr.eve"):
        _creds, device = await new_user_device(open_server, name)
        peers.append(make_peer(device, tmp_path / f"cache-{name}"))
    alice, bob, eve = peers
    room_id = await relay_api.create_room(alice.device.transport)
    await relay_api.invite(alice.device.transport, room_id, username="dr.bob")
    await relay_api.join(bob.device.transport, room_id)
    yield alice, bob, eve, room_id
    for peer in peers:
        await peer.close()


def marker_file(path: Path, size: int, marker: bytes) -> bytes:
    """``size`` bytes with ``marker`` repeated through them (and random filler)."""
    filler = os.urandom(size)
    data = bytearray(filler)
    for offset in range(0, size - len(marker), 50_000):
        data[offset:offset + len(marker)] = marker
    path.write_bytes(bytes(data))
    return bytes(data)


def files_containing(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(n in data for n in needles):
                hits.append(str(path))
    return hits


def blob_dir(server, blob_id: str) -> Path:
    return server.settings.blob_dir / blob_id


async def test_round_trip_and_nothing_readable_on_the_server(trio, open_server, tmp_path):
    alice, bob, _eve, room_id = trio
    marker = b"MARKER-CT-4711-patient-Doe"
    source = tmp_path / "ct-head-DOE-JOHN.dcm"
    data = marker_file(source, 5 * CHUNK + 123, marker)
    seen = []
    alice.engine.progress.connect(seen.append)

    descriptor = await alice.engine.upload(room_id, source)

    assert descriptor.size == len(data) and descriptor.chunk_count == 6
    assert descriptor.name.reveal() == "ct-head-DOE-JOHN.dcm"
    assert "DOE" not in repr(descriptor) and "DOE" not in str(descriptor.name)
    assert seen[0].phase == "preparing" and seen[-1].phase == "done"
    assert seen[-1].bytes_done == seen[-1].bytes_total == descriptor.blob_size
    # The wire form as it travels in the E2EE message, parsed on the other side.
    wire = descriptor.to_wire()
    file_id = await bob.engine.download(wire, alice.known, room_id=room_id)
    assert bob.engine.files.read(file_id) == data
    # The same descriptor again: the same stored file, nothing fetched twice.
    assert await bob.engine.download(wire, alice.known, room_id=room_id) == file_id

    # Full access to the server's database and blob store: neither the content nor the name.
    needles = [marker, b"DOE-JOHN", data[1000:1032]]
    assert files_containing(open_server.data_dir, needles) == []
    # Nor on either workstation's disk (SQLCipher cache, encrypted file store, staging).
    for peer in (alice, bob):
        assert files_containing(peer.cache.directory, needles) == []
    assert not any((bob.cache.directory / "transfers").glob("*"))
    # Audited on both sides, through the device's one audit log.
    assert ("file.send", "ok") in alice.audit_actions()
    assert ("file.download", "ok") in bob.audit_actions()
    for peer in (alice, bob):  # and the server takes both actions into its trail
        peer.audit.transport = peer.device.transport
        queued = len(peer.audit_actions())
        assert await peer.audit.flush() == queued >= 1
    logged = {r[0] for r in server_db(open_server).connection().execute(
        "SELECT action FROM audit_log WHERE object_id = ?", (descriptor.blob_id,))}
    assert {"client.file.send", "client.file.download", "blob.upload", "blob.download"} <= logged
    # The server saw the ciphertext digest it was told, and nothing else about the file.
    row = server_db(open_server).connection().execute(
        "SELECT sha256, total_size FROM blobs WHERE blob_id = ?", (descriptor.blob_id,)).fetchone()
    assert tuple(row) == (descriptor.sha256, descriptor.blob_size)


async def test_empty_file_round_trips(trio, tmp_path):
    alice, bob, _eve, room_id = trio
    source = tmp_path / "empty.txt"
    source.write_bytes(b"")
    descriptor = await alice.engine.upload(room_id, source)
    assert descriptor.chunk_count == 1 and descriptor.blob_size == TAG_SIZE
    file_id = await bob.engine.download(descriptor.to_json(), alice.known)
    assert bob.engine.files.read(file_id) == b""


async def _uploaded(alice: Peer, room_id: str, tmp_path: Path, name: str = "scan.bin",
                    size: int = 4 * CHUNK + 77) -> tuple[AttachmentDescriptor, bytes]:
    source = tmp_path / name
    data = os.urandom(size)
    source.write_bytes(data)
    return await alice.engine.upload(room_id, source), data


def _assert_nothing_stored(peer: Peer) -> None:
    assert peer.engine.files.ids() == []
    files_dir = peer.cache.directory / "files"
    assert not files_dir.exists() or list(files_dir.iterdir()) == []
    staging = peer.cache.directory / "transfers"
    assert not staging.exists() or list(staging.iterdir()) == []


def _flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("attack", ["flip", "reorder", "truncate", "swap_from_other", "drop_tail"])
async def test_a_tampered_blob_is_refused_and_nothing_is_stored(trio, open_server, tmp_path,
                                                                 attack):
    alice, bob, _eve, room_id = trio
    descriptor, _data = await _uploaded(alice, room_id, tmp_path)
    chunks = blob_dir(open_server, descriptor.blob_id)
    if attack == "flip":
        _flip(chunks / "00000002", 100)
    elif attack == "reorder":
        a, b = (chunks / "00000001").read_bytes(), (chunks / "00000002").read_bytes()
        (chunks / "00000001").write_bytes(b)
        (chunks / "00000002").write_bytes(a)
    elif attack == "truncate":
        last = chunks / "00000004"
        last.write_bytes(last.read_bytes()[:-5])
    elif attack == "swap_from_other":
        other, _ = await _uploaded(alice, room_id, tmp_path, "other.bin")
        shutil.copy(blob_dir(open_server, other.blob_id) / "00000001", chunks / "00000001")
    elif attack == "drop_tail":
        (chunks / "00000004").unlink()

    with pytest.raises(TransferTampered) as caught:
        await bob.engine.download(descriptor.to_wire(), alice.known)
    assert "tampered" in caught.value.user_message
    _assert_nothing_stored(bob)
    assert ("file.download", "refused") in bob.audit_actions()
    (state,) = [t.phase for t in bob.engine.transfers()]
    assert state == "failed"


async def test_a_descriptor_whose_digest_lies_is_refused_before_opening(trio, open_server,
                                                                         tmp_path):
    """Chunks that all pass their tags but do not hash to the signed digest (the sender's
    digest is what the receiver checks): refused before decryption into the store."""
    alice, bob, _eve, room_id = trio
    descriptor, _ = await _uploaded(alice, room_id, tmp_path)
    forged = AttachmentDescriptor.create(
        room_id=descriptor.room_id, blob_id=descriptor.blob_id,
        sender_user=descriptor.sender_user, sender_device=descriptor.sender_device,
        key=descriptor.key, header=descriptor.header,
        sha256=hashlib.sha256(b"something else").hexdigest(), name="scan.bin",
        mime="application/octet-stream", ts_ms=descriptor.ts_ms,
        sign=alice.device.identity.sign)
    with pytest.raises(TransferTampered):
        await bob.engine.download(forged, alice.known)
    _assert_nothing_stored(bob)


@pytest.mark.parametrize("forgery", ["edited_size", "edited_key", "other_signer",
                                     "wrong_sender_claimed", "other_room"])
async def test_a_forged_manifest_is_refused_before_any_request(trio, open_server, tmp_path,
                                                                forgery):
    alice, bob, eve, room_id = trio
    descriptor, _ = await _uploaded(alice, room_id, tmp_path)
    wire = descriptor.to_wire()
    sender = alice.known
    expected: type[Exception] = ManifestSignatureInvalid
    if forgery == "edited_size":
        # Header and size edited together (a consistent but unsigned change).
        raw = bytearray(parse_descriptor(wire).header.pack())
        raw[9:17] = (descriptor.size - 1).to_bytes(8, "big")
        wire = wire | {"header": b64(bytes(raw)), "size": descriptor.size - 1}
    elif forgery == "edited_key":
        wire = wire | {"key": b64(os.urandom(32))}
    elif forgery == "other_signer":
        # Eve signs a descriptor that claims to be Alice's.
        wire = AttachmentDescriptor.create(
            room_id=room_id, blob_id=descriptor.blob_id, sender_user=alice.device.user_id,
            sender_device=alice.device.device_id, key=descriptor.key, header=descriptor.header,
            sha256=descriptor.sha256, name="x.bin", mime="application/octet-stream",
            ts_ms=1, sign=eve.device.identity.sign).to_wire()
    elif forgery == "wrong_sender_claimed":
        sender = eve.known  # a valid descriptor, but not from the device the chat says
    elif forgery == "other_room":
        expected = DescriptorInvalid
    before = _blob_download_audits(open_server)
    with pytest.raises(expected) as caught:
        await bob.engine.download(
            wire, sender, room_id="another-room-id" if forgery == "other_room" else room_id)
    assert caught.value.user_message and "scan" not in caught.value.user_message
    assert _blob_download_audits(open_server) == before  # not one chunk was asked for
    _assert_nothing_stored(bob)
    assert bob.engine.transfers() == []
    assert ("file.download", "refused") in bob.audit_actions()


def _blob_download_audits(server) -> int:
    return server_db(server).connection().execute(
        "SELECT count(*) FROM audit_log WHERE action = 'blob.download'").fetchone()[0]


async def test_a_non_member_cannot_fetch_or_upload(trio, tmp_path):
    alice, _bob, eve, room_id = trio
    descriptor, _ = await _uploaded(alice, room_id, tmp_path)
    with pytest.raises(TransferRefused):
        await eve.engine.download(descriptor.to_wire(), alice.known)
    _assert_nothing_stored(eve)
    source = tmp_path / "eve.bin"
    source.write_bytes(b"x" * 1000)
    with pytest.raises(TransferRefused):
        await eve.engine.upload(room_id, source)


async def test_a_source_changed_mid_upload_is_refused(trio, tmp_path):
    """After preparation the file changes (same size and time stamp forged back): the
    re-encrypted chunk's tag differs, so nothing encrypted under a reused nonce is sent."""
    alice, _bob, _eve, room_id = trio
    source = tmp_path / "changing.bin"
    source.write_bytes(os.urandom(4 * CHUNK))
    st = source.stat()
    seen = []

    def tamper(snapshot) -> None:
        if snapshot.phase == "uploading" and not seen:
            seen.append(snapshot)
            with open(source, "r+b") as fh:
                fh.seek(3 * CHUNK + 10)
                fh.write(b"CHANGED")
            os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))

    alice.engine.progress.connect(tamper)
    with pytest.raises(SourceChanged):
        await alice.engine.upload(room_id, source)


async def test_cancel_stops_and_cleans_up(trio, tmp_path):
    alice, bob, _eve, room_id = trio
    descriptor, _ = await _uploaded(alice, room_id, tmp_path, size=20 * CHUNK)
    bob.engine.options = TransferOptions(chunk_size=CHUNK, parallel=1, progress_interval_s=0)

    def cancel_midway(snapshot) -> None:
        if snapshot.phase == "downloading" and snapshot.chunks_done >= 3:
            bob.engine.cancel(snapshot.transfer_id)

    bob.engine.progress.connect(cancel_midway)
    with pytest.raises(TransferCancelled):
        await bob.engine.download(descriptor.to_wire(), alice.known)
    _assert_nothing_stored(bob)
    (snapshot,) = bob.engine.transfers()
    assert snapshot.phase == "cancelled"


async def test_stop_pauses_and_resume_pending_finishes(trio, tmp_path):
    """Sign-out or shutdown mid-download: ``stop`` pauses it (state kept), and the next
    ``resume_pending`` -- what a start-up calls -- finishes it with the right bytes."""
    alice, bob, _eve, room_id = trio
    descriptor, data = await _uploaded(alice, room_id, tmp_path, size=30 * CHUNK)
    bob.engine.options = TransferOptions(chunk_size=CHUNK, parallel=1, progress_interval_s=0)
    stopping = []

    def stop_midway(snapshot) -> None:
        if snapshot.phase == "downloading" and snapshot.chunks_done >= 5 and not stopping:
            stopping.append(asyncio.ensure_future(bob.engine.stop()))

    bob.engine.progress.connect(stop_midway)
    task = asyncio.ensure_future(bob.engine.download(descriptor.to_wire(), alice.known))
    with pytest.raises(asyncio.CancelledError):
        await task
    await stopping[0]
    (paused,) = bob.engine.transfers()
    assert paused.phase == "paused" and 5 <= paused.chunks_done < paused.chunk_count
    assert bob.engine.files.ids() == []
    bob.engine.progress.disconnect(stop_midway)
    (result,) = await bob.engine.resume_pending()
    assert result.ok and bob.engine.files.read(result.file_id) == data
    assert bob.engine.result(paused.transfer_id) == result


async def test_engines_of_signed_in_sessions(open_workstation, open_server, tmp_path):
    """The wiring the chat uses: ``TransferEngine.for_session`` on real sessions (keyring,
    SQLCipher cache, the session's own AuditService and transport)."""
    from tests.integration.test_chat import sign_in
    from tests.support.clients import create_user

    sessions = []
    for name in ("dr.sess.a", "dr.sess.b"):
        ws = open_workstation(name)
        await sign_in(ws, create_user(open_server, name))
        sessions.append(ws.session)
    a, b = sessions
    room_id = await relay_api.create_room(a.transport)
    await relay_api.invite(a.transport, room_id, username="dr.sess.b")
    await relay_api.join(b.transport, room_id)
    sender, receiver = TransferEngine.for_session(a), TransferEngine.for_session(b)
    source = tmp_path / "ecg.pdf"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    descriptor = await sender.upload(room_id, source)
    assert descriptor.mime.reveal() == "application/pdf"
    known = KnownDevice(a.device.user_id, a.device.device_id, a.device.identity.ed25519)
    file_id = await receiver.download(descriptor.to_wire(), known, room_id=room_id)
    assert receiver.files.read(file_id) == source.read_bytes()
    await a.audit.flush()
    await b.audit.flush()
    logged = {r[0] for r in server_db(open_server).connection().execute(
        "SELECT action FROM audit_log WHERE object_id = ?", (descriptor.blob_id,))}
    assert {"client.file.send", "client.file.download"} <= logged
    for session in sessions:
        await session.aclose()
