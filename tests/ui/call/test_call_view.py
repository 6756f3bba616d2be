"""The call GUI between two real clients (own identity, keyring, SQLCipher cache each) signed
in to the real server over TLS: signaling through the relay, aiortc media on loopback, Qt
offscreen on the test's qasync loop. Screenshots with SAFECONSULT_SCREENSHOTS=1."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.core.phi import Phi
from app.rtc.call import CallOptions
from app.services.app_state import AppState, SignedInUser
from app.ui.asyncbridge import TaskRunner
from app.ui.call.controller import CallController
from app.ui.call.setup import add_call_button
from app.ui.call.tiles import LOCAL, FrameFeed
from app.ui.phi import PhiLabel, phi_widgets
from app.ui.views.chat import ChatView
from tests.integration.test_calls import consult, new_peer
from tests.ui.chat.conftest import run


def brightness(image: QImage | None) -> float:
    if image is None:
        return -1.0
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(rgb.constBits(), dtype=np.uint8,
                         count=rgb.bytesPerLine() * rgb.height())
    return float(data.mean())


def shared_window() -> QWidget:
    window = QWidget()
    window.setWindowTitle("Ward 7")
    layout = QVBoxLayout(window)
    layout.addWidget(QLabel("Ward round notes"))
    layout.addWidget(PhiLabel(Phi("MRN 48213377")))
    window.resize(480, 300)
    window.show()
    return window


class Side:
    def __init__(self, qtbot, peer, share_window=None) -> None:
        self.peer = peer
        self.runner = TaskRunner()
        self.feed = peer.calls.frame_sink
        self.feed.runner = self.runner
        chat = peer.chat
        self.controller = CallController(
            peer.calls, runner=self.runner, feed=self.feed, state=AppState(),
            name_of=lambda uid: chat.username(uid) or uid, share_window=share_window)
        self.windows: list = []
        self.controller.window_opened.connect(self.windows.append)

    @property
    def window(self):
        return self.windows[-1]


def test_two_clinicians_call_mute_camera_share_lock_and_hang_up(
        qtbot, qloop, theme, open_server, tmp_path, make_window, save_screenshot):
    made = []

    def peer(name: str, **options):
        feed = FrameFeed(TaskRunner())
        p = run(qtbot, new_peer(open_server, tmp_path, name, use_turn=False, frame_sink=feed,
                                call_options=CallOptions(video_tag=len(name)), **options))
        made.append(p)
        return p

    try:
        alice_peer = peer("dr.alice")
        bob_peer = peer("dr.bob", auto_accept=False)
        room = run(qtbot, consult(alice_peer, bob_peer))
        ward = shared_window()
        qtbot.addWidget(ward)
        alice, bob = Side(qtbot, alice_peer, ward), Side(qtbot, bob_peer)
        prompts: list = []
        bob.controller.prompt_shown.connect(prompts.append)

        # "Start video consult" in the chat view's room header -> the pre-join preview: the
        # synthetic camera, device lists, then Join.
        chat_view = ChatView()
        qtbot.addWidget(chat_view)
        chat_view.configure(runner=alice.runner, chat=alice_peer.chat)
        add_call_button(chat_view, alice.controller)
        chat_view.show()
        chat_view.open_room(room)
        assert chat_view.call_button.isVisible()
        qtbot.mouseClick(chat_view.call_button, Qt.MouseButton.LeftButton)
        dialog = alice.controller.prejoin
        assert dialog is not None and dialog.isVisible()
        qtbot.waitUntil(lambda: dialog.preview.frames >= 3, timeout=10_000)
        assert dialog.camera.count() >= 1 and dialog.microphone.count() >= 1
        qtbot.waitUntil(lambda: dialog.network_report is not None, timeout=10_000)
        assert dialog.network_status.text().startswith("Network: direct only")  # no TURN here
        dialog.resize(520, 660)
        save_screenshot(dialog, "call-prejoin.png")
        bob.controller.app_state.locked = True  # Bob's session is locked when it rings
        qtbot.mouseClick(dialog.join_button, Qt.MouseButton.LeftButton)

        # No prompt over a lock screen: it waits for the unlock. Then Bob accepts.
        qtbot.waitUntil(lambda: bool(bob_peer.calls.pending), timeout=20_000)
        qtbot.wait(200)
        assert prompts == []
        bob.controller.app_state.locked = False
        qtbot.waitUntil(lambda: bool(prompts), timeout=5_000)
        prompt = prompts[0]
        assert "dr.alice" in prompt.message.text()
        save_screenshot(prompt, "call-incoming.png")
        qtbot.mouseClick(prompt.accept_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(alice.windows and bob.windows), timeout=20_000)
        a_win, b_win = alice.window, bob.window
        a_party, b_party = alice_peer.calls.local, bob_peer.calls.local

        # Remote frames painted on both sides; state lines say what protects the call.
        qtbot.waitUntil(lambda: bool(b_party in a_win.tiles and a_party in b_win.tiles
                                     and a_win.tiles[b_party].video.frames >= 5
                                     and b_win.tiles[a_party].video.frames >= 5),
                        timeout=20_000)
        qtbot.waitUntil(lambda: "Verification code" in a_win.code.text()
                        and "Verification code" in b_win.code.text(), timeout=10_000)
        for win, other in ((a_win, b_party), (b_win, a_party)):
            line = win.tiles[other].state.text()
            assert "End-to-end encrypted · unverified device" in line  # TOFU, not SAS-verified
            assert "Direct" in line
        code_a = alice_peer.calls.calls[a_win.call_id].links[b_party].code
        code_b = bob_peer.calls.calls[b_win.call_id].links[a_party].code
        assert code_a and code_a == code_b and code_a in a_win.code.text()
        assert a_win.tiles[LOCAL].video.frames >= 1  # the self view
        a_win.resize(1000, 620)
        save_screenshot(a_win, "call-view.png")

        # Active speaker: Bob hears Alice's tone. Mute -> silence at Bob, highlight goes.
        b_link = bob_peer.calls.calls[b_win.call_id].links[a_party]
        qtbot.waitUntil(lambda: b_win.tiles[a_party].speaking, timeout=5_000)
        qtbot.mouseClick(a_win.mute_button, Qt.MouseButton.LeftButton)
        assert a_win.call.muted
        qtbot.waitUntil(lambda: b_link.stats.audio_level < 0.001
                        and not b_win.tiles[a_party].speaking, timeout=5_000)
        assert "Muted" in a_win.tiles[LOCAL].state.text()
        qtbot.mouseClick(a_win.mute_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: b_link.stats.audio_level > 0.05, timeout=5_000)

        # Camera off -> Bob's tile of Alice goes black (frames keep coming); on -> picture.
        lit = brightness(b_win.tiles[a_party].video.image)
        assert lit > 40
        qtbot.mouseClick(a_win.camera_button, Qt.MouseButton.LeftButton)
        assert not a_win.call.camera_on
        qtbot.waitUntil(lambda: brightness(b_win.tiles[a_party].video.image) < 20,
                        timeout=5_000)
        assert b_link.state.value == "connected"
        qtbot.mouseClick(a_win.camera_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: brightness(b_win.tiles[a_party].video.image) > 40,
                        timeout=5_000)

        # Share: redacted share goes out, the preview shows what is sent.
        qtbot.mouseClick(a_win.share_button, Qt.MouseButton.LeftButton)
        assert a_win.share is not None and a_win.call.sharing
        preview = a_win.share.preview
        qtbot.waitUntil(lambda: preview.isVisible() and preview.frames_shown >= 2,
                        timeout=10_000)
        qtbot.waitUntil(lambda: (lambda img: img is not None and img.width() == ward.width())(
            b_win.tiles[a_party].video.image), timeout=10_000)
        save_screenshot(a_win, "call-share.png")
        qtbot.mouseClick(a_win.share_button, Qt.MouseButton.LeftButton)
        assert a_win.share is None and not a_win.call.sharing

        # Lock: every video tile (PHI-tagged) and the call windows are hidden; audio goes on.
        tiles = [t.video for w in (a_win, b_win) for t in w.tiles.values()]
        assert all(v in phi_widgets(v) for v in tiles)
        main = make_window(state=AppState(user=SignedInUser("u1", "dr.alice", "physician",
                                                            "d1")))
        main.show()
        heard = b_link.stats.audio_frames
        main.lock_now()
        assert not any(v.isVisible() for v in tiles)
        assert not a_win.isVisible() and not b_win.isVisible()
        assert all(v.image is None for v in tiles)  # no picture kept while hidden
        qtbot.waitUntil(lambda: b_link.stats.audio_frames > heard + 25, timeout=5_000)

        # Alice leaves: Bob's call ends too (two parties).
        a_win.leave()
        qtbot.waitUntil(lambda: b_win.ended and not bob_peer.calls.calls, timeout=15_000)
        assert a_win.ended and not alice_peer.calls.calls
    finally:
        for p in made:
            run(qtbot, p.close())
