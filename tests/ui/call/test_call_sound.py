"""Sound out in the GUI (docs/calls.md, "Sound output"): the pre-join lists the speakers
PortAudio finds and plays a test sound; in the call the other side's tone reaches the chosen
speaker, goes on while the session is locked, and *Sound off* silences it. This machine has
no audio device: sounddevice is replaced, at its edge, by a stand-in whose output stream
keeps what reaches it; everything of ours is real."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from app.rtc import capture
from app.rtc.call import CallOptions
from app.services.app_state import AppState, SignedInUser
from app.ui.asyncbridge import TaskRunner
from app.ui.call.prejoin import PreJoinDialog, speaker_choices
from app.ui.call.setup import add_call_button
from app.ui.call.tiles import FrameFeed
from app.ui.views.chat import ChatView
from tests.integration.test_calls import consult, new_peer
from tests.ui.call.test_call_view import Side
from tests.ui.chat.conftest import run
from tests.unit.rtc.test_playback import FakeOutputStream, peaks, playing


class SoundDevices:
    """A stand-in for the ``sounddevice`` module on a machine with one speaker (44.1 kHz)."""

    OutputStream = FakeOutputStream
    devices = ({"name": "Ward speakers", "max_input_channels": 0, "max_output_channels": 2,
                "default_samplerate": 44_100.0},)

    def query_devices(self, device=None, kind=None):
        if device is None and kind is None:
            return list(self.devices)
        return self.devices[0 if device is None else device]


def test_no_speaker_here(qtbot, qloop):
    assert speaker_choices() == [("none", "No speaker found")]
    dialog = PreJoinDialog(TaskRunner())
    qtbot.addWidget(dialog)
    assert dialog.speaker_key() == "none"
    assert not dialog.test_sound_button.isEnabled() and not dialog.speaker.isEnabled()


def test_choose_a_speaker_test_it_and_hear_the_other_side(
        qtbot, qloop, theme, open_server, tmp_path, make_window, save_screenshot, monkeypatch):
    monkeypatch.setattr(capture, "sounddevice", SoundDevices())
    made = []

    def peer(name: str):
        feed = FrameFeed(TaskRunner())
        p = run(qtbot, new_peer(open_server, tmp_path, name, use_turn=False, frame_sink=feed,
                                call_options=CallOptions(video_tag=len(name))))
        made.append(p)
        return p

    try:
        alice_peer, bob_peer = peer("dr.alice"), peer("dr.bob")
        room = run(qtbot, consult(alice_peer, bob_peer))
        alice = Side(qtbot, alice_peer)
        chat_view = ChatView()
        qtbot.addWidget(chat_view)
        chat_view.configure(runner=alice.runner, chat=alice_peer.chat)
        add_call_button(chat_view, alice.controller)
        chat_view.show()
        chat_view.open_room(room)
        qtbot.mouseClick(chat_view.call_button, Qt.MouseButton.LeftButton)
        dialog = alice.controller.prejoin
        labels = [dialog.speaker.itemText(i) for i in range(dialog.speaker.count())]
        assert labels == ["System default", "Ward speakers"]
        dialog.speaker.setCurrentIndex(1)
        assert dialog.speaker_key() == "sd:0"

        # Test sound: a short 440 Hz tone through the chosen speaker, then it is closed.
        qtbot.mouseClick(dialog.test_sound_button, Qt.MouseButton.LeftButton)
        test_stream = FakeOutputStream.instances[-1]
        assert (test_stream.device, test_stream.rate) == (0, 44_100)
        assert dialog.sound_status.text() == "Playing a test sound…"
        qtbot.waitUntil(lambda: dialog.preview.frames >= 3, timeout=10_000)
        dialog.resize(520, 700)
        save_screenshot(dialog, "call-prejoin-sound.png")
        qtbot.waitUntil(lambda: test_stream.closed, timeout=5_000)
        heard = playing(test_stream)
        assert len(heard) > 44_100 * 0.4
        assert abs(peaks(heard[:int(44_100 * 0.4)], 44_100)[0] - 440) < 5

        qtbot.mouseClick(dialog.join_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(alice.windows), timeout=20_000)
        window = alice.window
        call_id = window.call.call_id
        qtbot.waitUntil(lambda: call_id in alice_peer.calls.players, timeout=5_000)
        stream = FakeOutputStream.instances[-1]
        assert stream is not test_stream and stream.device == 0
        assert window.sound_button.isVisibleTo(window)
        qtbot.waitUntil(lambda: len(playing(stream)) > 44_100, timeout=20_000)
        assert abs(peaks(playing(stream)[-44_100:], 44_100)[0] - 440) < 5  # Bob's tone

        # Locked: the call window is hidden, the sound goes on.
        main = make_window(state=AppState(user=SignedInUser("u1", "dr.alice", "physician",
                                                            "d1")))
        main.show()
        main.lock_now()
        assert not window.isVisible()
        before = len(stream.out)
        qtbot.waitUntil(lambda: len(stream.out) > before + 40, timeout=5_000)
        assert np.concatenate(stream.out[before + 5:]).any()

        # Sound off: silence on this device; Sound on: back.
        window.sound_button.setChecked(True)
        assert window.sound_button.text() == "Sound on" and alice_peer.calls.remote_muted(call_id)
        before = len(stream.out)
        qtbot.waitUntil(lambda: len(stream.out) > before + 30, timeout=5_000)
        assert not np.concatenate(stream.out[before + 2:]).any()
        window.sound_button.setChecked(False)
        assert not alice_peer.calls.remote_muted(call_id)
        window.leave()
        qtbot.waitUntil(lambda: stream.closed, timeout=10_000)
    finally:
        for p in made:
            run(qtbot, p.close())
