"""The composition root resumes transfers at sign-in (app/ui/workspace_setup.py): a main
window signed in through its own form sends a file that stops half-way; the window shuts
down (as the app closing would, no sign-out); a new main window over the same data directory
signs in, and the upload goes on by itself in the chat's transfer panel and its file message
arrives in the room, once. Real server, real services; synthetic data."""

from __future__ import annotations

import asyncio
import os

from app.services.transfers import progress as phases
from tests.integration.test_transfer_restart import OPTIONS, _interrupt
from tests.support.clients import create_user
from tests.support.signed_in import run, sign_in_window


def _shutdown(qtbot, window) -> None:
    future = asyncio.ensure_future(window.shutdown())
    qtbot.waitUntil(future.done, timeout=10_000)


def test_sign_in_resumes_an_upload_and_sends_its_file_message(qtbot, qapp, qloop,
                                                              open_server, tmp_path):
    creds = create_user(open_server, "dr.resume", role="physician")
    root = tmp_path / "ws"
    window = sign_in_window(qtbot, qapp, open_server, creds, root)
    chat = window.workspace.chat_service
    room = run(qtbot, chat.create_room())
    path = tmp_path / "ct-series-synthetic.zip"
    path.write_bytes(os.urandom(6_000_000))
    files = window.workspace.chat_files
    # Progress at every chunk, so that the test stops it half-way however fast the machine.
    files.engine.options = OPTIONS
    run(qtbot, _interrupt(files.engine, lambda: files.send_file(room, path),
                          phases.UPLOADING))
    assert [t.state for t in files.engine.pending()] == ["uploading"]
    _shutdown(qtbot, window)

    window = sign_in_window(qtbot, qapp, open_server, creds, root)
    try:
        files = window.workspace.chat_files
        view = window.workspace.views["chat"]
        qtbot.waitUntil(lambda: files.engine.pending() == [], timeout=60_000)
        qtbot.waitUntil(lambda: not view.composer.uploads, timeout=10_000)
        chat = window.workspace.chat_service
        qtbot.waitUntil(lambda: any(chat.attachment(m.event_id) is not None
                                    for m in chat.messages(room)), timeout=10_000)
        assert [chat.attachment(m.event_id).name.reveal() for m in chat.messages(room)
                if chat.attachment(m.event_id) is not None] == [path.name]
        qtbot.waitUntil(lambda: files.engine.to_announce() == [], timeout=10_000)
        assert len([m for m in chat.messages(room)
                    if chat.attachment(m.event_id) is not None]) == 1
    finally:
        _shutdown(qtbot, window)
