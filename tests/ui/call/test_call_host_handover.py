"""Host hand-over in the GUI (docs/calls.md, "Host hand-over"): real clients, the real
server, aiortc on loopback. The host leaves; the longest-present participant's call window
says it hosts now, offers Invite…, shows the next knock and admits it."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.rtc.call import CallOptions
from app.ui.asyncbridge import TaskRunner
from app.ui.call.tiles import FrameFeed
from tests.integration.test_call_host_handover import learn_call
from tests.integration.test_calls import consult, flowing, new_peer
from tests.ui.call.test_call_view import Side
from tests.ui.chat.conftest import run


def test_the_new_host_admits_from_its_call_window(qtbot, qloop, theme, open_server, tmp_path,
                                                   save_screenshot):
    made = []

    def peer(name: str):
        feed = FrameFeed(TaskRunner())
        p = run(qtbot, new_peer(open_server, tmp_path, name, use_turn=False, frame_sink=feed,
                                call_options=CallOptions(video_tag=len(name)), announce=True))
        made.append(p)
        return p

    try:
        alice_peer, bob_peer, carol_peer, dave_peer = (
            peer(n) for n in ("dr.alice", "dr.bob", "dr.carol", "dr.dave"))
        room = run(qtbot, consult(alice_peer, bob_peer, carol_peer, dave_peer))
        call = run(qtbot, alice_peer.calls.place_call(
            room, peers=[bob_peer.calls.local, carol_peer.calls.local]))
        qtbot.waitUntil(lambda: flowing(alice_peer, bob_peer, 5)
                        and flowing(bob_peer, carol_peer, 5), timeout=30_000)
        bob = Side(qtbot, bob_peer)
        b_win = bob.controller._opened(bob_peer.calls.calls[call.call_id], False, True)
        assert not b_win.is_host and not b_win.invite_button.isVisible()
        order = [p.calls.local for p in (alice_peer, bob_peer, carol_peer)]
        qtbot.waitUntil(lambda: bob_peer.calls.rosters.get(call.call_id) == order,
                        timeout=10_000)

        run(qtbot, alice_peer.calls.hangup(call.call_id))
        qtbot.waitUntil(lambda: b_win.is_host, timeout=10_000)
        assert b_win.invite_button.isVisible()
        assert b_win.message.text() == ("The host left. You host this call now: you admit "
                                        "who joins.")
        assert not b_win.ended
        b_win.refresh()
        assert "2 participants" in b_win.heading.text()  # Alice's tile stays: "Left the call"

        run(qtbot, learn_call(dave_peer, room, call.call_id, bob_peer.calls.local))
        run(qtbot, dave_peer.calls.join(room))
        qtbot.waitUntil(lambda: list(b_win.waiting.rows) == [dave_peer.calls.local],
                        timeout=10_000)
        b_win.resize(1000, 700)
        save_screenshot(b_win, "call-host-handover.png")
        _row, admit, _deny = b_win.waiting.rows[dave_peer.calls.local]
        qtbot.mouseClick(admit, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: flowing(bob_peer, dave_peer, 5)
                        and flowing(carol_peer, dave_peer, 5), timeout=30_000)
        assert not b_win.waiting.isVisible()
        b_win.leave()
    finally:
        for p in made:
            run(qtbot, p.close())
