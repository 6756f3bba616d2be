"""Recording from the call window: the host asks, the other clinician's consent dialog, the
indicator on both sides, the sealed file -- two real clients through the real server."""

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
        for name in ("dr.host", "dr.bob"):
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
        host, bob = peers
        controllers[1].prompt_shown.connect(lambda dialog: dialog.accept())
        room = run(qtbot, consult(host, bob))
        controllers[0].place_call(room)
        qtbot.waitUntil(lambda: bool(controllers[0].windows and controllers[1].windows),
                        timeout=20_000)
        (h_win,) = controllers[0].windows.values()
        (b_win,) = controllers[1].windows.values()
        qtbot.waitUntil(lambda: bool(h_win.tiles.get(bob.party)
                                     and h_win.tiles[bob.party].video.frames >= 3),
                        timeout=20_000)

        qtbot.mouseClick(h_win.record_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: b_win.consent is not None and b_win.consent.isVisible(),
                        timeout=15_000)
        assert "dr.host asks to record" in b_win.consent.message.text()
        assert h_win.recording.isVisible() and "consent" in h_win.recording.text()
        save_screenshot(b_win.consent, "call-recording-consent.png")
        qtbot.mouseClick(b_win.consent.agree_button, Qt.MouseButton.LeftButton)

        qtbot.waitUntil(lambda: h_win.recording_state() == "recording"
                        and b_win.recording_state() == "recording", timeout=15_000)
        for win in (h_win, b_win):
            assert win.recording.isVisible() and "Recording" in win.recording.text()
        assert h_win.record_button.text() == "Stop recording"
        assert not b_win.record_button.isEnabled()  # only the host stops its recording
        h_win.resize(1000, 640)
        qtbot.wait(1500)  # a second or so of media
        save_screenshot(h_win, "call-recording.png")

        service = controllers[0].recording
        qtbot.mouseClick(h_win.record_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: service.recordings[h_win.call_id].file_id is not None,
                        timeout=15_000)
        qtbot.waitUntil(lambda: b_win.recording.text() == "Recording stopped", timeout=10_000)
        metadata, segments = unpack_recording(EncryptedFileStore(host.ws.session.cache).read(
            service.recordings[h_win.call_id].file_id))
        assert len(metadata["consents"]) == 2 and bob.party in segments
        h_win.leave()
        qtbot.waitUntil(lambda: b_win.ended, timeout=15_000)
    finally:
        for controller in controllers:
            for window in list(controller.windows.values()):
                window.close()
        for peer in peers:
            run(qtbot, peer.close())
