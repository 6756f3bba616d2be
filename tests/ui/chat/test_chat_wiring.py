"""The composition root runs the signed-in session's chat for the chat view: messages arrive
live, keep arriving while the window is locked (hidden), and the chat stops at sign-out."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt

from app.services.room_patient import RoomPatientService
from app.services.session import SessionState
from tests.integration.test_chat import new_client
from tests.support.clients import create_user
from tests.support.signed_in import sign_in_window
from tests.ui.chat.conftest import run


def test_chat_runs_for_the_signed_in_user_and_goes_on_while_locked(
    qtbot, qapp, qloop, open_server, tmp_path,
):
    creds = create_user(open_server, "dr.osei", role="physician")
    window = sign_in_window(qtbot, qapp, open_server, creds, tmp_path / "c")
    view = window.workspace.views["chat"]
    chat = window.workspace.chat_service
    assert view.chat is chat and view.stack.currentIndex() == 1
    qtbot.waitUntil(lambda: chat.online is True, timeout=20_000)

    colleague = run(qtbot, new_client(open_server, tmp_path, "dr.mensah"))
    try:
        room = run(qtbot, colleague.chat.create_room())
        run(qtbot, colleague.chat.invite(room, "dr.osei"))
        chat_item = window.workspace._items["chat"]
        # Pushed: the invitation shows in the navigation while another area is open.
        qtbot.waitUntil(lambda: chat_item.text() == "Chat (1)", timeout=20_000)
        window.workspace.show_area("chat")
        assert room in view.rooms.room_ids()
        view.rooms.select(room)
        qtbot.mouseClick(view.join_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not view.composer.blocked, timeout=20_000)
        assert chat_item.text() == "Chat"
        run(qtbot, colleague.chat.sync_once())

        run(qtbot, colleague.chat.send_text(room, "Sats 91% on 2 L, please review"))
        qtbot.waitUntil(lambda: view.timeline.texts() == ["Sats 91% on 2 L, please review"],
                        timeout=20_000)

        # The room's patient, linked by the colleague, shows in the header (wired service).
        assert view.patients is window.workspace.room_patients
        linker = RoomPatientService(colleague.chat, role="physician")
        run(qtbot, linker.set_link(room, "Jane Doe", "PT-0042917"))
        qtbot.waitUntil(lambda: view.patient_bar.patient.text() == "Jane Doe · MRN PT-0042917",
                        timeout=20_000)
        linker.close()

        window.lock_now()
        assert not view.timeline.isVisible()  # PHI hidden at once
        assert not view.patient_bar.patient.isVisible() and view.patient_bar.patient.text() == ""
        run(qtbot, colleague.chat.send_text(room, "Never mind, improved on 4 L"))
        qtbot.waitUntil(lambda: len(chat.messages(room)) == 2, timeout=20_000)  # still syncing
        assert all(not t.done() for t in chat._tasks)

        run(qtbot, window.workspace.views["chat"].chat._session.unlock(creds.password))
        qtbot.waitUntil(lambda: view.timeline.isVisible(), timeout=10_000)
        assert view.timeline.texts()[-1] == "Never mind, improved on 4 L"

        tasks = list(chat._tasks)
        run(qtbot, chat._session.sign_out())
        assert chat._session.snapshot.state is SessionState.SIGNED_OUT
        qtbot.waitUntil(lambda: all(t.done() for t in tasks), timeout=10_000)
    finally:
        run(qtbot, colleague.close())
        closing = asyncio.ensure_future(window.shutdown())
        qtbot.waitUntil(closing.done, timeout=10_000)
