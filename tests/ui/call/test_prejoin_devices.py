"""Device selection in the pre-join dialog, end to end: a camera OpenCV can open (a video
file: this machine has no camera) is chosen, previewed, and is what the other side decodes;
without it the test pattern is the only camera."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.rtc.call import CallOptions
from app.ui.asyncbridge import TaskRunner
from app.ui.call.prejoin import camera_choices
from app.ui.call.setup import add_call_button
from app.ui.call.tiles import FrameFeed
from app.ui.views.chat import ChatView
from tests.integration.test_calls import consult, link, new_peer
from tests.ui.call.test_call_view import Side
from tests.ui.chat.conftest import run
from tests.unit.rtc.test_capture import FILE_TAG, make_clip

pytest.importorskip("cv2")


def test_choose_a_camera_preview_it_and_send_it(qtbot, qloop, theme, open_server, tmp_path):
    assert [key for key, _ in camera_choices()] == ["synthetic"]  # no camera on this machine
    clip = make_clip(tmp_path / "ward-camera.avi")
    made = []

    def peer(name: str, **options):
        feed = FrameFeed(TaskRunner())
        p = run(qtbot, new_peer(open_server, tmp_path, name, use_turn=False, frame_sink=feed,
                                call_options=CallOptions(video_tag=len(name)), **options))
        made.append(p)
        return p

    try:
        alice_peer, bob_peer = peer("dr.alice"), peer("dr.bob")
        room = run(qtbot, consult(alice_peer, bob_peer))
        alice = Side(qtbot, alice_peer)
        alice.controller.extra_cameras = [(f"file:{clip}", "Ward camera")]
        chat_view = ChatView()
        qtbot.addWidget(chat_view)
        chat_view.configure(runner=alice.runner, chat=alice_peer.chat)
        add_call_button(chat_view, alice.controller)
        chat_view.show()
        chat_view.open_room(room)
        qtbot.mouseClick(chat_view.call_button, Qt.MouseButton.LeftButton)
        dialog = alice.controller.prejoin
        labels = [dialog.camera.itemText(i) for i in range(dialog.camera.count())]
        assert labels == ["Ward camera", "Test pattern"]
        qtbot.waitUntil(lambda: dialog.preview.frames >= 3, timeout=10_000)
        dialog.camera.setCurrentIndex(1)  # the test pattern, then back to the camera
        dialog.camera.setCurrentIndex(0)
        seen = dialog.preview.frames
        qtbot.waitUntil(lambda: dialog.preview.frames >= seen + 3, timeout=10_000)
        assert dialog.devices() == (f"file:{clip}", "tone")
        qtbot.mouseClick(dialog.join_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: (lambda ln: ln is not None and ln.stats.stamped_frames >= 10)(
            link(bob_peer, alice_peer)), timeout=20_000)
        assert link(bob_peer, alice_peer).stats.tags == {FILE_TAG}  # the file, not the pattern
        assert alice_peer.calls.devices == (f"file:{clip}", "tone")
        alice.window.leave()
    finally:
        for p in made:
            run(qtbot, p.close())
