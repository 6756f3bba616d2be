"""A sealed recording shared in the consult's room (real clients, real server): read through
the store's decryptor and encrypted once by the transfer engine (never plaintext on disk,
not ciphertext of ciphertext), announced by one Megolm-encrypted ``sc.recording`` room event
carrying the signed descriptor; fetched, verified and stored encrypted by a member; purged
by retention, key first; one audit entry per share and per fetch. Also the sealed spool on
its own (tamper checks)."""

from __future__ import annotations

import base64
import secrets

import pytest

from app.crypto.files import TAG_SIZE, FileTampered, new_file_key
from app.rtc.recorder import CallRecorder, SealedSpool
from app.services.recording import RECORDING_EVENT, RecordingTampered
from app.services.transfers import TransferEngine, parse_descriptor
from app.storage.files import EncryptedFileStore
from tests.integration.test_calls import wait_for
from tests.integration.test_chat import raw_files_containing
from tests.integration.test_recording import call_between
from tests.support.clients import server_db


def test_sealed_spool_is_ciphertext_bounded_and_tamper_evident(tmp_path):
    key, sid = new_file_key(), secrets.token_bytes(8)
    spool = SealedSpool(tmp_path / "a.spool", key, sid, chunk=1000)
    marker = b"PLAINTEXT-MARKER" * 10
    for _ in range(100):
        spool.write(marker)
        assert len(spool._pending) < 1000  # memory: less than one chunk buffered
    spool.close()
    raw = (tmp_path / "a.spool").read_bytes()
    assert b"PLAINTEXT" not in raw
    assert b"".join(SealedSpool.read(spool.path, key, sid, spool.records)) == marker * 100
    with pytest.raises(FileTampered):  # a record dropped at the end
        list(SealedSpool.read(spool.path, key, sid, spool.records + 1))
    with pytest.raises(FileTampered):  # read as another spool (records out of place)
        list(SealedSpool.read(spool.path, key, secrets.token_bytes(8), spool.records))


async def test_a_recording_is_shared_in_the_room_fetched_verified_and_purged(
        open_server, tmp_path):
    peers, services, call = await call_between(open_server, tmp_path, "dr.host", "dr.bob",
                                               answers=(True,))
    host, bob = peers
    engines = [TransferEngine.for_session(p.ws.session) for p in peers]
    for service, peer, engine in zip(services, peers, engines, strict=True):
        service.chat, service.engine = peer.chat, engine
        peer.chat.room_event.connect(service._on_room_event)
    try:
        rec = await services[0].record(call.call_id)
        await wait_for(lambda: host.calls.calls[call.call_id].links[bob.party]
                       .stats.video_frames > 40, 10)
        host_data = host.ws.paths.data
        plain_markers = [b"SCREC1", b"\x1a\x45\xdf\xa3"]  # recording magic, Matroska EBML
        hits: list = []
        scans: list = []

        def scan(snapshot) -> None:  # the host's whole data dir while the upload runs
            if snapshot.phase in ("preparing", "uploading"):
                scans.append(snapshot)
                hits.extend(raw_files_containing(host_data, plain_markers))

        engines[0].progress.connect(scan)
        await services[0].stop(call.call_id)  # sealed, then shared in the room at once
        assert services[0].stored()[rec.recording_id]["shared_event"]
        assert scans and hits == [] and raw_files_containing(host_data, plain_markers) == {}

        for _ in range(40):
            await bob.chat.sync_once()
            if rec.recording_id in services[1].available:
                break
        shared = services[1].available[rec.recording_id]
        assert shared.sender == host.party.user_id and shared.duration_ms > 0
        assert shared.content["consents"] and "key" not in shared.content  # the local key
        # Encrypted once: the blob is the recording's plaintext length plus one tag a chunk
        # (the host's sealed file, uploaded as it was, would be longer: header and tags).
        desc = parse_descriptor(shared.content["descriptor"])
        host_file = services[0].stored()[rec.recording_id]["file_id"]
        assert desc.size == len(services[0].store.read(host_file))
        assert desc.blob_size == desc.size + TAG_SIZE * desc.chunk_count

        # A forged key in an otherwise valid event: refused, nothing kept.
        forged = type(shared)(shared.room_id, shared.event_id, shared.sender,
                              shared.sender_device, shared.recording_id,
                              {**shared.content, "descriptor": {
                                  **shared.content["descriptor"],
                                  "key": base64.b64encode(new_file_key()).decode()}})
        services[1].available[rec.recording_id] = forged
        with pytest.raises(RecordingTampered):
            await services[1].fetch(rec.recording_id)
        assert services[1].stored() == {}
        services[1].available[rec.recording_id] = shared

        file_id = await services[1].fetch(rec.recording_id)
        metadata, segments = services[1].load(rec.recording_id)
        assert metadata["recording_id"] == rec.recording_id
        for party in (host.party, bob.party):
            assert CallRecorder.frame_count(segments[party])["video"] >= 10
        bob_store = EncryptedFileStore(bob.ws.session.cache)
        raw = bob_store.sealed_path(file_id).read_bytes()
        assert b"SCREC1" not in raw and b"\x1a\x45\xdf\xa3" not in raw
        assert bob_store.ids() == [file_id]  # one copy, encrypted under Bob's own key

        db = server_db(open_server).connection()
        # Retention: older than Policy.retention_days -> key first, then the file.
        days = bob.ws.session.policy.retention_days
        later = metadata["stopped_ms"] + (days + 1) * 86_400_000 + 60_000
        assert services[1].purge(now_ms=metadata["stopped_ms"]) == 0
        assert services[1].purge(now_ms=later) == 1
        assert services[1].stored() == {} and bob_store.ids() == []
        assert not bob_store.sealed_path(file_id).exists()

        for peer in peers:
            await peer.ws.session.audit.flush()
        rows = db.execute("SELECT action, object_type, outcome FROM audit_log "
                          "WHERE action LIKE 'client.%'").fetchall()
        # One entry per share and per fetch, object the recording; no per-blob entries.
        sends = db.execute("SELECT object_type, object_id, outcome FROM audit_log "
                           "WHERE action = 'client.file.send'").fetchall()
        assert [tuple(r) for r in sends] == [("recording", rec.recording_id, "ok")]
        fetches = db.execute("SELECT object_type, object_id, outcome FROM audit_log "
                             "WHERE action = 'client.file.download' ORDER BY seq").fetchall()
        assert [tuple(r) for r in fetches] == [("recording", rec.recording_id, "refused"),
                                               ("recording", rec.recording_id, "ok"),
                                               ("recording", rec.recording_id, "ok")]  # play
        assert sum(r[0] == "client.record.stop" for r in rows) == 1
        assert sum(r[0] == "client.record.purge" for r in rows) == 1  # retention
        assert RECORDING_EVENT == "sc.recording"
    finally:
        for engine in engines:
            await engine.stop()
        for peer in peers:
            await peer.close()
