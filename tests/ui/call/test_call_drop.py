"""Dropped when trust ends, in the GUI (docs/calls.md): real clients, the real server, aiortc
on loopback. Alice blocks Carol's device during a three-party call: Carol's tile leaves
Alice's call window, which says plainly why (no names), and the call with Bob goes on."""

from __future__ import annotations

from app.rtc.call import CallOptions, LinkState
from app.ui.asyncbridge import TaskRunner
from app.ui.call.tiles import LOCAL, FrameFeed
from tests.integration.test_calls import consult, flowing, link, new_peer
from tests.ui.call.test_call_view import Side
from tests.ui.chat.conftest import run


def test_a_blocked_participants_tile_goes_and_the_window_says_why(qtbot, qloop, theme,
                                                                   open_server, tmp_path,
                                                                   save_screenshot):
    made: list = []
    try:
        alice_peer, bob_peer, carol_peer, _, call = _three_in_a_call(
            qtbot, open_server, tmp_path, made)
        qtbot.waitUntil(lambda: flowing(alice_peer, bob_peer, 5)
                        and flowing(alice_peer, carol_peer, 5), timeout=30_000)
        alice = Side(qtbot, alice_peer)
        win = alice.controller._opened(call, False, True)
        carol = carol_peer.calls.local
        qtbot.waitUntil(lambda: carol in win.tiles and bob_peer.calls.local in win.tiles,
                        timeout=10_000)
        win.refresh()
        assert "3 participants" in win.heading.text()

        alice_peer.chat.block_device(carol.user_id, carol.device_id)  # the device list's Block
        assert carol not in win.tiles
        assert win.message.isVisible()
        assert win.message.text() == ("A participant's device is no longer trusted; it was "
                                      "removed from the call.")
        qtbot.waitUntil(lambda: link(alice_peer, carol_peer).state is LinkState.CLOSED,
                        timeout=5_000)
        seen = link(alice_peer, bob_peer).stats.stamped_frames
        qtbot.waitUntil(lambda: link(alice_peer, bob_peer).stats.stamped_frames > seen + 10,
                        timeout=10_000)
        win.refresh()  # the timer's refresh does not bring the tile back
        assert carol not in win.tiles and not win.ended
        assert "2 participants" in win.heading.text()
        assert set(win.tiles) == {LOCAL, bob_peer.calls.local}
        win.resize(1000, 700)
        save_screenshot(win, "call-participant-dropped.png")
        win.leave()
    finally:
        for p in made:
            run(qtbot, p.close())


def test_a_member_removed_from_the_consult_loses_the_call_and_is_told(qtbot, qloop, theme,
                                                                      open_server, tmp_path):
    made: list = []
    try:
        alice_peer, bob_peer, carol_peer, room, call = _three_in_a_call(
            qtbot, open_server, tmp_path, made)
        qtbot.waitUntil(lambda: flowing(alice_peer, carol_peer, 5)
                        and flowing(bob_peer, carol_peer, 5), timeout=30_000)
        alice, carol = Side(qtbot, alice_peer), Side(qtbot, carol_peer)
        a_win = alice.controller._opened(call, False, True)
        c_win = carol.controller._opened(carol_peer.calls.calls[call.call_id], False, True)
        carol_party = carol_peer.calls.local
        qtbot.waitUntil(lambda: carol_party in a_win.tiles, timeout=10_000)

        run(qtbot, alice_peer.chat.remove_member(room, carol_party.user_id))
        assert carol_party not in a_win.tiles
        assert a_win.message.text() == ("A participant is no longer a member of this "
                                        "consult; they were removed from the call.")
        # Carol's device learns it was removed: its call ends, the window closes, she is told.
        run(qtbot, carol_peer.chat.refresh_rooms())
        qtbot.waitUntil(lambda: c_win.ended, timeout=10_000)
        assert carol.controller.last_error == ("You are no longer a member of this consult, "
                                               "so the call ended.")
        # The window ends at the drop; the call itself goes once its hang-up has run.
        qtbot.waitUntil(lambda: call.call_id not in carol_peer.calls.calls, timeout=10_000)
        assert not a_win.ended  # Alice and Bob go on
        a_win.leave()
    finally:
        for p in made:
            run(qtbot, p.close())


def _three_in_a_call(qtbot, open_server, tmp_path, made: list):
    """Alice, Bob and Carol (signed in, each with a frame feed) in one consult, Alice's call
    placed to both; ``made`` collects the peers for the caller to close."""
    for name in ("dr.alice", "dr.bob", "dr.carol"):
        feed = FrameFeed(TaskRunner())
        made.append(run(qtbot, new_peer(open_server, tmp_path, name, use_turn=False,
                                        frame_sink=feed,
                                        call_options=CallOptions(video_tag=len(name)))))
    alice, bob, carol = made
    room = run(qtbot, consult(alice, bob, carol))
    call = run(qtbot, alice.calls.place_call(room, peers=[bob.calls.local, carol.calls.local]))
    return alice, bob, carol, room, call
