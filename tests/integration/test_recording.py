"""Consent-gated recording between real clients through the real server (TLS, signaling,
aiortc on loopback): consent travels on the calls' DTLS control channels, signed by each
device's identity key; the host seals the recording into the cache's encrypted file store."""

from __future__ import annotations

import secrets

import pytest

from app.crypto.files import FileTampered, decrypt_bytes
from app.rtc.recorder import SPOOL_CHUNK, CallRecorder
from app.services.recording import (
    SPOOL_DIR,
    RecordingRefused,
    RecordingService,
    RecordingState,
    unpack_recording,
    verify_consents,
)
from app.storage.cache import FILES_DIR
from app.storage.files import EncryptedFileStore, FileNotCached
from tests.integration.test_calls import consult, flowing, new_peer, wait_for
from tests.support.clients import server_db


async def call_between(open_server, tmp_path, *names, answers=()):
    peers = [await new_peer(open_server, tmp_path, name, use_turn=False) for name in names]
    services = [RecordingService(p.calls, ask_timeout_s=15) for p in peers]
    for service, answer in zip(services[1:], answers, strict=False):
        service.consent_requested.connect(
            lambda request, s=service, a=answer: s.answer(request, a))
    room_id = await consult(*peers)
    call = await peers[0].calls.place_call(room_id)
    for other in peers[1:]:
        await wait_for(lambda o=other: flowing(peers[0], o), 20)
    return peers, services, call


def key_for_all(peers):
    keys = {(p.party.user_id, p.party.device_id): p.ws.session.device.identity.ed25519
            for p in peers}
    return lambda user_id, device_id: keys.get((user_id, device_id))


async def test_recording_with_everyones_consent_is_sealed_with_the_consents(
        open_server, tmp_path):
    peers, services, call = await call_between(open_server, tmp_path, "dr.host", "dr.bob",
                                               answers=(True,))
    host, bob = peers
    try:
        rec = await services[0].record(call.call_id)
        assert rec.state is RecordingState.RECORDING
        # Everyone sees the indicator.
        await wait_for(lambda: services[1].status.get(call.call_id) is not None
                       and services[1].status[call.call_id].state is RecordingState.RECORDING)
        await wait_for(lambda: host.calls.calls[call.call_id].links[bob.party]
                       .stats.video_frames > 60, 30)  # generous: a loaded CI machine
        # Streamed to disk while recording, sealed: what a crash now would leave behind is
        # ciphertext only, and its key is in the cache's secrets, not beside it.
        spool_dir = host.ws.session.cache.directory / SPOOL_DIR
        await wait_for(lambda: sum(p.stat().st_size for p in spool_dir.glob("*.spool"))
                       > 16_384, 20)  # the first sealed 256 KiB record per participant
        spooled = b"".join(path.read_bytes() for path in spool_dir.glob("*.spool"))
        assert len(spooled) > 16_384  # some sealed 256 KiB records already written
        assert b"\x1a\x45\xdf\xa3" not in spooled and b"V_VP8" not in spooled
        assert rec.recorder is not None
        # Memory: about one chunk each. (Read from this thread while the recorder's thread
        # may be inside a write -- data appended, the full chunk not yet sealed -- so one
        # chunk plus that write's data can be seen for a moment; it failed under load.)
        assert all(len(seg.spool._pending) < 2 * SPOOL_CHUNK
                   for seg in rec.recorder._segments.values())
        file_id = await services[0].stop(call.call_id)
        assert list(spool_dir.glob("*.spool")) == []  # spools and their key gone after sealing
        assert file_id is not None and rec.state is RecordingState.STOPPED
        await wait_for(lambda: services[1].status[call.call_id].state
                       is RecordingState.STOPPED)

        store = EncryptedFileStore(host.ws.session.cache)
        metadata, segments = unpack_recording(store.read(file_id))
        assert metadata["call_id"] == call.call_id
        assert {(c["user_id"], c["consent"]) for c in metadata["consents"]} == {
            (host.party.user_id, True), (bob.party.user_id, True)}
        assert verify_consents(metadata, key_for_all(peers))
        metadata["consents"][1]["ts_ms"] += 1  # a consent altered afterwards: no longer valid
        assert not verify_consents(metadata, key_for_all(peers))
        for party in (bob.party, host.party):  # the host's own camera and microphone too
            counts = CallRecorder.frame_count(segments[party])
            assert counts["video"] >= 20 and counts["audio"] >= 20

        # Unreadable without the key: the file on disk is ciphertext, another key fails the
        # tag, another workstation's cache has no key for it.
        raw = (host.ws.session.cache.directory / FILES_DIR / f"{file_id}.scf").read_bytes()
        assert b"SCREC1" not in raw and b"consent" not in raw
        assert b"\x1a\x45\xdf\xa3" not in raw  # no Matroska header in the clear
        with pytest.raises(FileTampered):
            decrypt_bytes(raw, secrets.token_bytes(32))
        with pytest.raises(FileNotCached):
            EncryptedFileStore(bob.ws.session.cache).read(file_id)

        # Audited on both sides, identifiers only.
        for peer in peers:
            await peer.ws.session.audit.flush()
        rows = server_db(open_server).connection().execute(
            "SELECT action, outcome, object_id FROM audit_log WHERE action LIKE "
            "'client.record.%' ORDER BY seq").fetchall()
        actions = [(r[0], r[1]) for r in rows]
        assert ("client.record.start", "ok") in actions and ("client.record.stop", "ok") in actions
        # The host: started, stopped (one entry each); bob: his consent.
        assert all(r[2] == call.call_id for r in rows) and len(rows) == 3
    finally:
        for peer in peers:
            await peer.close()


async def test_recording_is_refused_without_full_consent(open_server, tmp_path):
    peers, services, call = await call_between(open_server, tmp_path, "dr.host", "dr.bob",
                                               answers=(False,))
    host, _ = peers
    try:
        with pytest.raises(RecordingRefused):
            await services[0].record(call.call_id)
        rec = services[0].recordings[call.call_id]
        assert rec.state is RecordingState.REFUSED and rec.recorder is None
        assert host.calls.calls[call.call_id].taps == []  # nothing was ever recorded
        assert EncryptedFileStore(host.ws.session.cache).ids() == []
        await wait_for(lambda: services[1].status.get(call.call_id) is not None
                       and services[1].status[call.call_id].state is RecordingState.REFUSED)
        assert await services[0].stop(call.call_id) is None
    finally:
        for peer in peers:
            await peer.close()


async def test_a_late_joiner_is_not_recorded_before_consenting(open_server, tmp_path):
    host = await new_peer(open_server, tmp_path, "dr.host", use_turn=False)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False)
    carol = await new_peer(open_server, tmp_path, "dr.carol", use_turn=False,
                           auto_accept=False)
    peers = [host, bob, carol]
    services = [RecordingService(p.calls, ask_timeout_s=15) for p in peers]
    services[1].consent_requested.connect(lambda r: services[1].answer(r, True))
    asked: list = []
    services[2].consent_requested.connect(asked.append)
    try:
        room_id = await consult(*peers)
        call = await host.calls.place_call(room_id)
        await wait_for(lambda: flowing(host, bob), 20)
        rec = await services[0].record(call.call_id)  # Carol is still ringing
        assert rec.recorder is not None and carol.party not in rec.recorder.allowed
        await wait_for(lambda: call.call_id in carol.calls.pending, 10)
        await carol.calls.accept(call.call_id)
        await wait_for(lambda: bool(asked), 20)  # asked before her media is recorded
        assert carol.party not in rec.recorder.allowed
        services[2].answer(asked[0], True)
        await wait_for(lambda: carol.party in rec.recorder.allowed, 10)
        link = host.calls.calls[call.call_id].links[carol.party]
        seen = link.stats.video_frames
        await wait_for(lambda: link.stats.video_frames > seen + 30, 10)
        file_id = await services[0].stop(call.call_id)
        metadata, segments = unpack_recording(
            EncryptedFileStore(host.ws.session.cache).read(file_id))
        assert {c["user_id"] for c in metadata["consents"]} == {
            host.party.user_id, bob.party.user_id, carol.party.user_id}
        assert verify_consents(metadata, key_for_all(peers))
        assert CallRecorder.frame_count(segments[carol.party])["video"] >= 10
    finally:
        for peer in peers:
            await peer.close()


async def test_a_joiner_admitted_from_the_waiting_room_is_asked_before_being_recorded(
        open_server, tmp_path):
    """Recording runs; Carol knocks and the host admits her: she is asked at once, and the
    recording holds none of her frames until her signed yes arrives."""
    host = await new_peer(open_server, tmp_path, "dr.host", use_turn=False)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False)
    carol = await new_peer(open_server, tmp_path, "dr.carol", use_turn=False)
    peers = [host, bob, carol]
    services = [RecordingService(p.calls, ask_timeout_s=15) for p in peers]
    services[1].consent_requested.connect(lambda r: services[1].answer(r, True))
    asked: list = []
    services[2].consent_requested.connect(asked.append)
    try:
        room_id = await consult(*peers)
        call = await host.calls.place_call(room_id, peers=[bob.party])
        await wait_for(lambda: flowing(host, bob), 20)
        rec = await services[0].record(call.call_id)
        await carol.calls.join(room_id, call.call_id, host.party)
        await wait_for(lambda: bool(host.calls.waiting_for(call.call_id)), 10)
        await host.calls.admit(call.call_id, carol.party)
        await wait_for(lambda: bool(asked), 20)
        assert asked[0].host == host.party and asked[0].recording_id == rec.recording_id
        link = host.calls.calls[call.call_id].links[carol.party]
        await wait_for(lambda: link.stats.video_frames > 30, 10)  # her media flows ...
        assert carol.party not in rec.recorder.allowed  # ... and is not recorded
        services[2].answer(asked[0], True)
        await wait_for(lambda: carol.party in rec.recorder.allowed, 10)
        seen = link.stats.video_frames
        await wait_for(lambda: link.stats.video_frames > seen + 30, 10)
        file_id = await services[0].stop(call.call_id)
        metadata, segments = unpack_recording(
            EncryptedFileStore(host.ws.session.cache).read(file_id))
        assert {c["user_id"] for c in metadata["consents"]} == {
            host.party.user_id, bob.party.user_id, carol.party.user_id}
        assert verify_consents(metadata, key_for_all(peers))
        # Only what came after her yes: fewer frames of her than of Bob.
        counts = {p: CallRecorder.frame_count(segments[p])["video"] for p in segments}
        assert 10 <= counts[carol.party] < counts[bob.party]
    finally:
        for peer in peers:
            await peer.close()
