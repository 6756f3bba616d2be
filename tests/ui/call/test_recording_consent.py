"""Recording from the call window in a three-party call (a tile per participant): the host
asks, the others' consent dialogs, the indicator on every side, the sealed file -- three real
clients through the real server."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.services.app_state import AppState
from app.services.recording import RecordingService, unpack_recording
from app.storage.files import EncryptedFileStore
from app.ui.asyncbridge import TaskRunner
from app.ui.call.controller import CallController
from app.ui.call.tiles import FrameFeed
from tests.integration.test_calls import consult, new_peer
from tests.ui.chat.conftest import run


def test_record_asks_consent_shows_the_indicator_and_seals_the_file(
        qtbot, qloop, theme, open_server, tmp_path, save_screenshot):
    peers, controllers = [], []
    try:
        for name in ("dr.host", "dr.bob", "dr.carol"):
            runner = TaskRunner()
            feed = FrameFeed(runner)
            peer = run(qtbot, new_peer(open_server, tmp_path, name, use_turn=False,
                                       frame_sink=feed, auto_accept=False))
            peers.append(peer)
            controller = CallController(
                peer.calls, runner=runner, feed=feed, state=AppState(),
                name_of=lambda uid, c=peer.chat: c.username(uid) or uid,
                recording=RecordingService(peer.calls, ask_timeout_s=20))
            controller.runner_ref = runner
            controllers.append(controller)
        host, bob, carol = peers
        for controller in controllers[1:]:
            controller.prompt_shown.connect(lambda dialog: dialog.accept())
        room = run(qtbot, consult(host, bob, carol))
        controllers[0].place_call(room)
        qtbot.waitUntil(lambda: all(c.windows for c in controllers), timeout=20_000)
        (h_win,), (b_win,), (c_win,) = (list(c.windows.values()) for c in controllers)
        # A tile per participant, remote video in each (a full mesh: Bob sees Carol too).
        qtbot.waitUntil(lambda: all(
            bool(win.tiles.get(p.party)) and win.tiles[p.party].video.frames >= 3
            for win, others in ((h_win, (bob, carol)), (b_win, (host, carol)))
            for p in others), timeout=30_000)
        assert len(h_win.tiles) == 3 and "3 participants" in h_win.heading.text()

        qtbot.mouseClick(h_win.record_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: all(w.consent is not None and w.consent.isVisible()
                                    for w in (b_win, c_win)), timeout=15_000)
        assert "dr.host asks to record" in b_win.consent.message.text()
        assert h_win.recording.isVisible() and "consent" in h_win.recording.text()
        save_screenshot(b_win.consent, "call-recording-consent.png")
        qtbot.mouseClick(b_win.consent.agree_button, Qt.MouseButton.LeftButton)
        qtbot.wait(300)
        assert h_win.recording_state() == "asking"  # Carol has not answered yet
        qtbot.mouseClick(c_win.consent.agree_button, Qt.MouseButton.LeftButton)

        qtbot.waitUntil(lambda: all(w.recording_state() == "recording"
                                    for w in (h_win, b_win, c_win)), timeout=15_000)
        for win in (h_win, b_win, c_win):
            assert win.recording.isVisible() and "Recording" in win.recording.text()
        assert h_win.record_button.text() == "Stop recording"
        assert not b_win.record_button.isEnabled()  # only the host stops its recording
        h_win.resize(1000, 760)
        qtbot.wait(1500)  # a second or so of media
        save_screenshot(h_win, "call-recording.png")

        service = controllers[0].recording
        qtbot.mouseClick(h_win.record_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: service.recordings[h_win.call_id].file_id is not None,
                        timeout=15_000)
        qtbot.waitUntil(lambda: b_win.recording.text() == "Recording stopped", timeout=10_000)
        metadata, segments = unpack_recording(EncryptedFileStore(host.ws.session.cache).read(
            service.recordings[h_win.call_id].file_id))
        assert len(metadata["consents"]) == 3 and {bob.party, carol.party} <= set(segments)
        # The host leaves: Bob and Carol go on together, Bob's tile of the host says so.
        h_win.leave()
        qtbot.waitUntil(lambda: b_win.tiles[host.party].state.text() == "Left the call",
                        timeout=15_000)
        assert not b_win.ended and not c_win.ended
    finally:
        for controller in controllers:
            for window in list(controller.windows.values()):
                window.close()
        for peer in peers:
            run(qtbot, peer.close())
