"""Transfers resumed after a restart, in the chat view (issue #5): real clients, the real
relay and blob store, the real engine and ``ChatFiles``. Alice's upload of a file stops
half-way and so does an upload from memory; her workstation restarts (session closed, signed
in again over the same data directory). The new view shows both in the transfer panel: the
file goes on from the chunks the server holds (bytes, speed, time left, Cancel) and its file
message appears once; the one from memory ends with the engine's words and Dismiss. Bob's
download stops half-way, his workstation restarts, and the file message's box shows the
resumed download, then the verified file (Open / Save as...). Synthetic data."""

from __future__ import annotations

import asyncio
import os

from app.services.transfers import TransferEngine, TransferOptions
from app.services.transfers import progress as phases
from app.services.transfers.chat_files import ChatFiles
from tests.integration.test_chat import room_with
from tests.integration.test_transfer_restart import _interrupt, _restart
from tests.ui.chat.conftest import Person, run

OPTIONS = TransferOptions(chunk_size=64 * 1024, parallel=2, progress_interval_s=0.0,
                          commit_interval_s=0.0)
SIZE = 3_000_000


def _restarted(qtbot, person: Person, made: list[Person]) -> tuple[Person, ChatFiles]:
    """The person's workstation after a restart: signed in again, a new view over new
    services, wired as app/ui/workspace_setup.py does (view configured before resuming)."""
    client = run(qtbot, _restart(person.client))
    person.client = client  # the fixture closes the new one
    again = Person(qtbot, client)
    made.append(again)
    engine = TransferEngine.for_session(client.ws.session, options=OPTIONS)
    files = ChatFiles(engine, client.chat)
    again.view.configure(transfers=engine, chat_files=files)
    return again, files


def test_resumed_transfers_show_in_the_panel_and_finish(qtbot, people, tmp_path,
                                                        save_screenshot):
    alice, bob = people("dr.amrr", "dr.brrr")
    made: list[Person] = []
    room = run(qtbot, room_with(alice.client, bob.client))
    path = tmp_path / "ct-series-synthetic.zip"
    data = os.urandom(SIZE)
    path.write_bytes(data)

    engine = TransferEngine.for_session(alice.client.ws.session, options=OPTIONS)
    files = ChatFiles(engine, alice.client.chat)
    run(qtbot, _interrupt(engine, lambda: files.send_file(room, path), phases.UPLOADING))
    run(qtbot, _interrupt(engine, lambda: engine.upload_bytes(
        room, os.urandom(SIZE), name="snapshot-synthetic.png"), phases.UPLOADING))

    alice2, files = _restarted(qtbot, alice, made)
    alice2.view.refresh()
    alice2.view.open_room(room)
    before = set(alice2.view.timeline.bubbles)
    seen: list[tuple[str, str]] = []
    shot: list[object] = []
    waiting: list[str] = []

    def watch(p) -> None:
        row = alice2.view.composer.uploads.get(p.transfer_id)
        if row is None:
            return
        seen.append((p.phase, row.detail.text()))
        if p.phase == phases.UPLOADING and p.fraction > 0.75 and not shot:
            waiting.extend(r.detail.text() for r in alice2.view.composer.uploads.values()
                           if r is not row)
            shot.append(save_screenshot(alice2.view, "chat-transfer-resumed.png") or True)

    files.engine.progress.connect(watch)
    future = asyncio.ensure_future(files.resume_pending())
    qtbot.waitUntil(lambda: len(alice2.view.composer.uploads) == 2, timeout=10_000)
    qtbot.waitUntil(future.done, timeout=60_000)
    results = future.result()
    assert sorted(r.error_code for r in results) == ["", "source_gone"]
    # The file's row went on with bytes, speed and time left, and left when done.
    assert any(phase == phases.UPLOADING and " of 3.0 MB" in text and "/s" in text
               for phase, text in seen), seen
    qtbot.waitUntil(lambda: len(alice2.view.composer.uploads) == 1, timeout=10_000)
    (failed,) = alice2.view.composer.uploads.values()
    assert "no longer available" in failed.detail.text()
    assert failed.cancel_button.text() == "Dismiss" and failed.cancel_button.isEnabled()
    assert shot, "the upload was too quick for the screenshot"
    assert waiting == ["Waiting to resume…"]  # the one from memory, queued behind
    # Its file message, once, in the timeline.
    qtbot.waitUntil(lambda: len(set(alice2.view.timeline.bubbles) - before) == 1,
                    timeout=10_000)
    (event_id,) = set(alice2.view.timeline.bubbles) - before
    assert alice2.view.timeline.bubbles[event_id].attachment.name.text() == path.name
    failed.cancel_button.click()
    assert not alice2.view.composer.uploads

    # Bob's download stops half-way; after his restart the box shows it going on, then ready.
    run(qtbot, bob.chat.sync_once())
    info = bob.chat.attachment(event_id)
    assert info is not None
    engine = TransferEngine.for_session(bob.client.ws.session, options=OPTIONS)
    run(qtbot, _interrupt(engine, lambda: engine.download(
        info.descriptor.to_wire(), bob.chat.attachment_sender(info), room_id=room),
        phases.DOWNLOADING))
    bob2, files = _restarted(qtbot, bob, made)
    bob2.view.refresh()
    bob2.view.open_room(room)
    box = bob2.view.timeline.bubbles[event_id].attachment
    assert box.state == "available"
    rows: list[str] = []
    files.engine.progress.connect(
        lambda p: rows.append(box.row.detail.text()) if box.row is not None else None)
    future = asyncio.ensure_future(files.resume_pending())
    qtbot.waitUntil(lambda: box.state == "ready", timeout=60_000)
    qtbot.waitUntil(future.done, timeout=10_000)
    assert any(" of 3.0 MB" in t for t in rows), rows
    assert "Verified" in box.status.text()
    assert not box.open_button.isHidden()
    (result,) = future.result()
    assert files.engine.files.read(result.file_id) == data
    for person in made:
        person.verification.close()
