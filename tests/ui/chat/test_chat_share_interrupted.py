"""A study share that a restart interrupted, in the chat view (issue #5): real client, real
relay and blob store, real engine, ``ChatFiles`` and study sharing. The share stops in its
second file; after the restart the view -- wired as app/ui/workspace_setup.py does -- says
once, without patient data, that sharing a study was interrupted and must be started
again; its transfer panel shows nothing resumed. Synthetic DICOM."""

from __future__ import annotations

import asyncio

from app.services.study_share import StudyShareService
from app.services.transfers import TransferEngine, TransferOptions
from app.services.transfers import progress as phases
from app.services.transfers.chat_files import ChatFiles
from tests.integration.test_transfer_restart import _restart
from tests.support.dicom_gen import write_ct_series
from tests.ui.chat.conftest import Person, run

OPTIONS = TransferOptions(chunk_size=1024, parallel=1, progress_interval_s=0.0,
                          commit_interval_s=0.0)
NOTICE = ("Sharing a study was interrupted when SafeConsult stopped; it was not sent to the "
          "conversation. Share the study again.")


def _wired(client) -> tuple[ChatFiles, StudyShareService]:
    session = client.ws.session
    files = ChatFiles(TransferEngine.for_session(session, options=OPTIONS), client.chat)
    sharing = StudyShareService(client.chat, files.engine, audit=session.audit,
                                work_dir=session.cache.directory / "share", files=files)
    return files, sharing


def test_interrupted_study_share_is_told_once(qtbot, people, tmp_path):
    (alice,) = people("dr.asir")
    room = run(qtbot, alice.client.chat.create_room())
    paths = write_ct_series(tmp_path / "ct", slices=3, rows=48, cols=40)
    files, sharing = _wired(alice.client)
    seen: list[str] = []
    task: list[asyncio.Future] = []

    def stop_in_second_file(p) -> None:
        if p.transfer_id not in seen:
            seen.append(p.transfer_id)
        if len(seen) == 2 and p.phase == phases.UPLOADING and task and not task[0].done():
            task[0].cancel()

    files.engine.progress.connect(stop_in_second_file)
    task.append(asyncio.ensure_future(sharing.share(room, paths)))
    qtbot.waitUntil(task[0].done, timeout=30_000)
    assert task[0].cancelled() and len(files.engine.pending()) == 1
    run(qtbot, files.engine.stop())
    sharing.close()

    client = run(qtbot, _restart(alice.client))
    alice.client = client  # the fixture closes the new one
    again = Person(qtbot, client)
    files, sharing = _wired(client)
    again.view.configure(transfers=files.engine, chat_files=files)
    again.view.refresh()
    again.view.open_room(room)
    assert not again.view.message.isVisible()
    assert run(qtbot, files.resume_pending()) == []
    qtbot.waitUntil(again.view.message.isVisible, timeout=5_000)
    assert again.view.message.text() == NOTICE
    assert again.view.composer.uploads == {}  # nothing of the study resumed
    again.view.show_message("")
    assert run(qtbot, files.resume_pending()) == []  # said once
    assert not again.view.message.isVisible()
    sharing.close()
    again.verification.close()
