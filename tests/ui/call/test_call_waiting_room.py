"""The waiting room in the GUI, between real clients signed in to the real server over TLS
(signaling through the relay, aiortc media on loopback, Qt offscreen on the test's qasync
loop): a member joins a running call from the room header and waits; the host admits from the
call window and the three-party mesh shows; an invited member is turned away and told so.
Screenshots with SAFECONSULT_SCREENSHOTS=1."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.rtc.call import CallOptions
from app.ui.asyncbridge import TaskRunner
from app.ui.call.setup import add_call_button
from app.ui.call.tiles import FrameFeed
from app.ui.views.chat import ChatView
from tests.integration.test_calls import consult, new_peer
from tests.ui.call.test_call_view import Side
from tests.ui.chat.conftest import run


def test_join_wait_admit_three_party_and_invite_deny(
        qtbot, qloop, theme, open_server, tmp_path, save_screenshot):
    made = []

    def peer(name: str, **options):
        feed = FrameFeed(TaskRunner())
        p = run(qtbot, new_peer(open_server, tmp_path, name, use_turn=False, frame_sink=feed,
                                call_options=CallOptions(video_tag=len(name)), **options))
        made.append(p)
        return p

    try:
        alice_peer = peer("dr.alice", announce=True)
        bob_peer = peer("dr.bob")
        carol_peer = peer("dr.carol")
        dave_peer = peer("dr.dave", auto_accept=False)
        room = run(qtbot, consult(alice_peer, bob_peer, carol_peer, dave_peer))
        alice, carol, dave = Side(qtbot, alice_peer), Side(qtbot, carol_peer), Side(
            qtbot, dave_peer)
        waits: list = []
        carol.controller.wait_shown.connect(waits.append)
        dave.controller.wait_shown.connect(waits.append)
        prompts: list = []
        dave.controller.prompt_shown.connect(prompts.append)

        # Alice calls Bob only; her window opens (she hosts).
        alice.controller.runner.run_task(
            alice_peer.calls.place_call(room, peers=[bob_peer.calls.local]),
            owner=alice.controller,
            on_result=lambda call: alice.controller._opened(call, False, True))
        qtbot.waitUntil(lambda: bool(alice.windows), timeout=20_000)
        a_win = alice.window
        assert a_win.is_host and a_win.invite_button.isVisible()
        assert not a_win.waiting.isVisible()

        # Carol's room header says a call is running; she joins and waits.
        chat_view = ChatView()
        qtbot.addWidget(chat_view)
        chat_view.configure(runner=carol.runner, chat=carol_peer.chat)
        add_call_button(chat_view, carol.controller)
        chat_view.show()
        chat_view.open_room(room)

        def synced() -> bool:
            run(qtbot, carol_peer.chat.sync_once())
            return room in carol_peer.calls.active
        qtbot.waitUntil(synced, timeout=20_000)
        chat_view.call_button.update_label()
        assert chat_view.call_button.text() == "Join video consult in progress"
        qtbot.mouseClick(chat_view.call_button, Qt.MouseButton.LeftButton)
        prejoin = carol.controller.prejoin
        assert prejoin is not None and prejoin.isVisible()
        qtbot.mouseClick(prejoin.join_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(waits), timeout=10_000)
        wait = waits[0]
        assert wait.message.text() == "Waiting for dr.alice to let you in…"
        assert wait.button.text() == "Stop waiting" and not carol.windows
        save_screenshot(wait, "call-waiting-joiner.png")

        # Alice's call window lists Carol with Admit / Deny.
        a_win.show()
        qtbot.waitUntil(lambda: a_win.waiting.isVisible(), timeout=10_000)
        assert list(a_win.waiting.rows) == [carol_peer.calls.local]
        assert a_win.waiting.title.text() == "Waiting room (1)"
        a_win.resize(1000, 700)
        save_screenshot(a_win, "call-waiting-host.png")
        _row, admit, _deny = a_win.waiting.rows[carol_peer.calls.local]
        qtbot.mouseClick(admit, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(carol.windows), timeout=20_000)
        assert not wait.isVisible() and not a_win.waiting.isVisible()
        c_win = carol.window
        parties = [p.calls.local for p in (alice_peer, bob_peer, carol_peer)]

        def painted(win, me) -> bool:
            others = [p for p in parties if p != me]
            return all(p in win.tiles and win.tiles[p].video.frames >= 5 for p in others)
        qtbot.waitUntil(lambda: painted(a_win, parties[0]) and painted(c_win, parties[2]),
                        timeout=30_000)
        assert "3 participants" in a_win.heading.text() and "3 participants" in c_win.heading.text()
        assert not c_win.is_host and not c_win.invite_button.isVisible()
        c_win.resize(1000, 700)
        save_screenshot(c_win, "call-three-party.png")

        # Alice invites Dave (the menu lists only members not in the call); Dave accepts and
        # waits; Alice denies; Dave is told plainly.
        a_win.invite_button.fill_menu()
        names = [a.text() for a in a_win.invite_button.menu_.actions()]
        assert names == ["dr.dave"]
        a_win.invite_button.menu_.actions()[0].trigger()
        qtbot.waitUntil(lambda: bool(prompts), timeout=10_000)
        assert "invites you to join a video consult in progress" in prompts[0].message.text()
        save_screenshot(prompts[0], "call-invited.png")
        qtbot.mouseClick(prompts[0].accept_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(waits) == 2, timeout=10_000)
        qtbot.waitUntil(lambda: list(a_win.waiting.rows) == [dave_peer.calls.local],
                        timeout=10_000)
        _row, _admit, deny = a_win.waiting.rows[dave_peer.calls.local]
        qtbot.mouseClick(deny, Qt.MouseButton.LeftButton)
        turned_away = waits[1]
        qtbot.waitUntil(lambda: turned_away.state == "denied", timeout=10_000)
        assert turned_away.message.text() == "dr.alice did not let you into this call."
        assert turned_away.button.text() == "Close" and not dave.windows
        save_screenshot(turned_away, "call-waiting-denied.png")
        assert not a_win.waiting.isVisible()
        a_win.leave()
        c_win.leave()
    finally:
        for p in made:
            run(qtbot, p.close())
