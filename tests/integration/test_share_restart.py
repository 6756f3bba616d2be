"""Issue #5 for shares: a study share or a recording share that a restart interrupted.

Real clients (own data directory, keyring, SQLCipher cache, audit log) through the real
server over TLS; chat, transfer engine, ``ChatFiles``, study sharing (de-identification in
memory) and recording sharing unmocked. A *restart* is as in test_transfer_restart: the
share's task stops mid-way (nothing finishes for it), the session closes without signing
out, and a fresh ``Workstation`` signs in over the same data directory and keyring.

* A study share cannot be finished after a restart (its de-identified copies were in
  memory): at sign-in its remaining uploads are cancelled, no manifest goes, one failed
  ``file.send`` entry is recorded and the user is told once.
* A recording share goes on: its upload is resumed, its ``sc.recording`` event goes once
  (also when the process stopped after finalize but before queueing it), the index entry
  shows it shared, one ``file.send`` entry -- and the receiver fetches and plays it.
"""

from __future__ import annotations

import asyncio

import pytest

from app.services.chat_content import new_event_id
from app.services.study_share import StudyShareService
from app.services.transfers import TransferCancelled, TransferEngine, TransferOptions
from app.services.transfers import progress as phases
from app.services.transfers.chat_files import ChatFiles
from app.storage.transfers import CANCELLED, DONE, STUDY
from tests.integration.test_audit_queue import client_rows
from tests.integration.test_chat import Client
from tests.integration.test_transfer_restart import _restart
from tests.support.clients import server_db
from tests.support.dicom_gen import write_ct_series

SMALL = TransferOptions(chunk_size=1024, parallel=1, commit_interval_s=0,
                        progress_interval_s=0)


def _sends(server, client: Client) -> list[tuple[str, str | None, str, dict]]:
    rows = client_rows(server_db(server), client.ws.session.device.device_id)
    return [(r["object_type"], r["object_id"], r["outcome"], r["detail"]) for r in rows
            if r["action"] == "client.file.send"]


def _assert_blobs_deleted(server, blob_ids: list[str | None]) -> None:
    assert blob_ids and all(blob_ids)
    conn = server_db(server).connection()
    for blob_id in blob_ids:
        assert conn.execute("SELECT COUNT(*) FROM blobs WHERE blob_id = ?",
                            (blob_id,)).fetchone()[0] == 0
        assert not (server.settings.blob_dir / blob_id).exists()
        assert conn.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'blob.delete'"
                            " AND object_id = ?", (blob_id,)).fetchone()[0] == 1


def _sharing(client: Client) -> tuple[ChatFiles, StudyShareService]:
    session = client.ws.session
    files = ChatFiles(TransferEngine.for_session(session, options=SMALL), client.chat)
    sharing = StudyShareService(client.chat, files.engine, audit=session.audit,
                                work_dir=session.cache.directory / "share", files=files)
    return files, sharing


async def test_interrupted_study_share_is_ended_and_reported_once(chat_pair, open_server, tmp_path):
    clients, room_id = chat_pair
    alice = clients["alice"]
    paths = write_ct_series(tmp_path / "ct", slices=3, rows=48, cols=40)
    files, sharing = _sharing(alice)

    # The share stops half-way through its second file (de-identified, from memory).
    seen: list[str] = []
    task: asyncio.Task | None = None

    def on_progress(p) -> None:
        if p.transfer_id not in seen:
            seen.append(p.transfer_id)
        if len(seen) == 2 and p.phase == phases.UPLOADING and p.chunks_done >= 1 \
                and task is not None and not task.done():
            task.cancel()

    files.engine.progress.connect(on_progress)
    task = asyncio.ensure_future(sharing.share(room_id, paths))
    with pytest.raises(asyncio.CancelledError):
        await task
    await files.engine.stop()
    rows = {r.transfer_id: r for r in files.engine.transfers()}
    assert len(rows) == 2
    assert [r.state for r in files.engine.pending()] == ["uploading"]  # left as a kill would
    sharing.close()
    alice = clients["alice"] = await _restart(alice)

    files, sharing = _sharing(alice)
    told: list = []
    files.interrupted.connect(told.append)
    resuming: list = []
    files.resuming.connect(resuming.append)
    assert await files.resume_pending() == []  # nothing of the study resumed
    assert resuming == []
    assert files.engine.pending() == []  # its remaining upload cancelled, not resumed
    records = [files.engine.record(t) for t in seen]
    assert [(r.state, r.purpose) for r in records] == [(DONE, STUDY), (CANCELLED, STUDY)]
    assert all(r.announce_event_id is None for r in records)  # settled
    # Nothing of it stays on the server: the finished file's blob (never announced) and
    # the cancelled one's partial blob are deleted, rows and chunk files.
    await files.engine.drain()
    _assert_blobs_deleted(open_server, [r.blob_id for r in records])
    (action,) = told
    assert (action.kind, action.room_id, action.files_done) == ("study", room_id, 1)
    assert sorted(action.transfer_ids) == sorted(seen)
    await alice.ws.session.audit.flush()
    # One entry for the study share: failed, interrupted (none per file, none "ok").
    assert [(t, o, d.get("reason"), d.get("files")) for t, _, o, d in _sends(open_server, alice)
            ] == [("study", "failed", "interrupted", 1)]

    # No manifest reached the room.
    bob = clients["bob"]
    await bob.chat.sync_once()
    _, bob_sharing = _sharing(bob)
    assert bob_sharing.studies() == []
    bob_sharing.close()

    # The next sign-in says nothing again.
    sharing.close()
    alice = clients["alice"] = await _restart(alice)
    files, sharing = _sharing(alice)
    told.clear()
    files.interrupted.connect(told.append)
    assert await files.resume_pending() == []
    assert told == []
    await alice.ws.session.audit.flush()
    assert len(_sends(open_server, alice)) == 1
    sharing.close()


async def test_a_study_share_cancelled_by_the_user_leaves_no_blob(chat_pair, open_server,
                                                                   tmp_path):
    """The user cancels a share's second file mid-way: the share fails, and neither that
    file's partial blob nor the first file's complete one stays on the server."""
    clients, room_id = chat_pair
    alice = clients["alice"]
    paths = write_ct_series(tmp_path / "ct", slices=3, rows=48, cols=40)
    files, sharing = _sharing(alice)
    seen: list[str] = []

    def on_progress(p) -> None:
        if p.transfer_id not in seen:
            seen.append(p.transfer_id)
        if len(seen) == 2 and p.phase == phases.UPLOADING and p.chunks_done >= 1 \
                and not p.final:
            files.engine.cancel(p.transfer_id)

    files.engine.progress.connect(on_progress)
    with pytest.raises(TransferCancelled):
        await sharing.share(room_id, paths)
    await files.engine.drain()
    records = [files.engine.record(t) for t in seen]
    assert [r.state for r in records] == [DONE, CANCELLED]
    _assert_blobs_deleted(open_server, [r.blob_id for r in records])
    assert files.engine.announcing() == []  # settled: nothing for the next sign-in
    sharing.close()


async def test_a_share_going_on_in_this_process_is_not_ended(chat_pair, open_server, tmp_path):
    """resume_pending while a share runs (between two of its files): left alone."""
    clients, room_id = chat_pair
    alice = clients["alice"]
    paths = write_ct_series(tmp_path / "ct", slices=2, rows=48, cols=40)
    files, sharing = _sharing(alice)
    told: list = []
    files.interrupted.connect(told.append)
    checked: list = []

    def on_progress(p) -> None:
        if p.final and not checked:
            checked.append(asyncio.ensure_future(files.resume_pending()))

    files.engine.progress.connect(on_progress)
    result = await sharing.share(room_id, paths)
    await asyncio.gather(*checked)
    assert checked and told == []
    assert len(result.shared.manifest.files) == 2
    await alice.ws.session.audit.flush()
    assert [(t, o) for t, _, o, _ in _sends(open_server, alice)] == [("study", "ok")]
    assert files.engine.announcing() == []
    sharing.close()


async def test_interrupted_recording_share_goes_on_and_is_announced_once(open_server, tmp_path):
    from app.services.calls import CallsService
    from app.services.recording import RECORDING_EVENT, RECORDING_PURPOSE, RecordingService
    from tests.integration.test_calls import wait_for
    from tests.integration.test_recording import call_between

    peers, services, call = await call_between(open_server, tmp_path, "dr.host", "dr.bob",
                                               answers=(True,))
    host, bob = peers
    options = TransferOptions(chunk_size=8 * 1024, parallel=1, commit_interval_s=0,
                              progress_interval_s=0)
    engine = TransferEngine.for_session(host.ws.session, options=options)
    bob_engine = TransferEngine.for_session(bob.ws.session)
    services[1].chat, services[1].engine = bob.chat, bob_engine
    bob.chat.room_event.connect(services[1]._on_room_event)
    bob_events: list = []
    bob.chat.room_event.connect(
        lambda e: bob_events.append(e) if e.event_type == RECORDING_EVENT else None)
    restarted: list = []
    try:
        # Two recordings of the call, sealed on the host (not shared at stop: no engine yet).
        recorded = []
        for _ in range(2):
            rec = await services[0].record(call.call_id)
            link = host.calls.calls[call.call_id].links[bob.party]
            seen = link.stats.video_frames
            await wait_for(lambda s=seen, k=link: k.stats.video_frames > s + 20, 20)
            await services[0].stop(call.call_id)
            recorded.append(rec.recording_id)
        first, second = recorded
        services[0].chat, services[0].engine = host.chat, engine

        # The first one's share stops half-way through its upload ...
        task: asyncio.Task | None = None

        def on_progress(p) -> None:
            if p.phase == phases.UPLOADING and p.chunks_done >= p.chunk_count // 2 \
                    and task is not None and not task.done():
                task.cancel()

        engine.progress.connect(on_progress)
        task = asyncio.ensure_future(services[0].share(first))
        with pytest.raises(asyncio.CancelledError):
            await task
        engine.progress.disconnect(on_progress)
        (paused,) = engine.pending()
        assert paused.purpose == RECORDING_PURPOSE and paused.purpose_ref == first
        assert 0 < len(paused.done) < paused.chunk_count
        # ... and the second one's process stopped after finalize, before its event was
        # queued (what share() does up to there).
        entry = services[0].stored()[second]
        chosen = new_event_id()
        await engine.upload_stored(entry["room_id"], entry["file_id"], name="recording.scf",
                                   audit=False, announce_event_id=chosen,
                                   purpose=RECORDING_PURPOSE, purpose_ref=second)
        await engine.stop()
        await host.calls.stop()
        client = await _restart(Client(host.creds, host.ws, host.chat))
        restarted.append(client)

        # Sign-in: the same single resume, with the recording service registered.
        engine = TransferEngine.for_session(client.ws.session, options=options)
        files = ChatFiles(engine, client.chat)
        again = RecordingService(CallsService(client.ws.session, client.chat),
                                 chat=client.chat, engine=engine, files=files)
        runs: list = []
        engine.progress.connect(runs.append)
        (result,) = await files.resume_pending()
        assert result.descriptor is not None and result.error_code == ""
        assert max(p.resumed_bytes for p in runs if p.phase == phases.UPLOADING) > 0
        stored = again.stored()
        assert stored[first]["shared_event"] == paused.announce_event_id
        assert stored[second]["shared_event"] == chosen
        assert engine.announcing() == [] and engine.pending() == []
        await client.chat.flush()
        # A second sign-in announces nothing again.
        assert await files.resume_pending() == []

        for _ in range(40):
            await bob.chat.sync_once()
            if {first, second} <= set(services[1].available):
                break
        assert sorted(e.event_id for e in bob_events) == sorted(
            [paused.announce_event_id, chosen])  # one event per recording
        for recording_id in (first, second):  # fetched, verified, played at the receiver
            await services[1].fetch(recording_id)
            metadata, segments = services[1].load(recording_id)
            assert metadata["recording_id"] == recording_id and segments

        await client.ws.session.audit.flush()
        sends = server_db(open_server).connection().execute(
            "SELECT object_type, object_id, outcome FROM audit_log "
            "WHERE action = 'client.file.send' ORDER BY seq").fetchall()
        assert sorted(tuple(r) for r in sends) == sorted(
            [("recording", first, "ok"), ("recording", second, "ok")])  # none per blob
    finally:
        await bob_engine.stop()
        for client in restarted:
            await client.close()
        await bob.close()
        if not restarted:
            await host.close()


async def test_a_room_event_queued_before_a_crash_is_not_queued_again(chat_pair):
    """The process stopped after the announcement was queued but before its row was
    settled: queueing it again under the same id (after the restart) sends nothing more."""
    clients, room_id = chat_pair
    alice = clients["alice"]
    chosen = new_event_id()
    assert await alice.chat.send_room_event(room_id, "sc.recording", {"v": 0},
                                            event_id=chosen) == chosen
    alice = clients["alice"] = await _restart(alice)
    refused: list = []
    alice.chat.send_failed.connect(refused.append)
    assert await alice.chat.send_room_event(room_id, "sc.recording", {"v": 0},
                                            event_id=chosen) == chosen
    await alice.chat.flush()
    assert refused == []  # not posted twice (the relay would refuse the second)
    bob = clients["bob"]
    got: list = []
    bob.chat.room_event.connect(lambda e: got.append(e.event_id))
    await bob.chat.sync_once()
    assert got == [chosen]
