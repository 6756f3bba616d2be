"""The recording player's sound, decoded near the play position (SegmentReader.sound_from),
not whole: a seek far into a long recording plays the sound of that place in step with the
picture with little decoded ahead; hiding the player stops it; a segment without sound plays
silent video; a damaged segment, picture or sound, gets a clear message and no crash."""

from __future__ import annotations

import secrets

import numpy as np
import pytest

from app.rtc.recorder import SegmentUnreadable
from app.rtc.signing import Party
from app.ui.call.recordings import AUDIO_LEAD_MS, RecordingPlayer
from tests.ui.call.test_recording_player import pitch, segment
from tests.unit.rtc.test_recording_sound import silent_video, stepped_hz, tone_segment

HOST = Party("@dr.host:test", "DEVHOST")
GUEST = Party("@nurse.guest:test", "DEVGUEST")


@pytest.fixture
def speaker(monkeypatch):
    """A machine with one speaker (44.1 kHz, 10 ms blocks kept by the fake stream)."""
    from app.rtc import capture
    from tests.ui.call.test_call_sound import SoundDevices
    from tests.unit.rtc.test_playback import FakeOutputStream

    monkeypatch.setattr(capture, "sounddevice", SoundDevices())
    return FakeOutputStream


def test_a_seek_far_into_a_long_recording_plays_that_place_in_step(qtbot, tmp_path, speaker):
    player = RecordingPlayer({HOST: tone_segment(tmp_path, 130)}, {HOST: "Dr Host"})
    qtbot.addWidget(player)
    player.show()
    assert player.duration_ms >= 129_000
    player.toggle()
    stream = speaker.instances[-1]
    player.seek(118_500)  # two minutes in, while playing: the slider's move
    assert player.position_ms == 119_000  # the next frame (one a second here)
    assert player._decoder._reader.sound_skipped < 960  # sought, not decoded up to there
    start = len(stream.out)
    polls: list[tuple[int, int, float]] = []  # (blocks out, position shown, decoded ahead)

    def past(ms: int) -> bool:
        polls.append((len(stream.out), player.position_ms, player.sound_ahead_ms()))
        return player.position_ms >= ms

    qtbot.waitUntil(lambda: past(120_000), timeout=5000)
    qtbot.waitUntil(lambda: len(stream.out) > polls[-1][0] + 20, timeout=5000)
    pitches = [pitch(b, 44_100) for b in list(stream.out)[start:]]
    heard = [p for p in pitches if p]
    assert abs(heard[2] - stepped_hz(119)) < 30  # the sound of the place sought: 900 Hz
    # When the picture reaches 120 s the tone turns to 1000 Hz: at most 100 ms apart.
    shown_at = next(n for n, ms, _ahead in polls if ms >= 120_000) - start
    heard_at = next(i for i, p in enumerate(pitches) if abs(p - stepped_hz(120)) < 30)
    assert abs(heard_at - shown_at) * 10 <= 100, (heard_at, shown_at)
    # Decoded ahead of the clock: the speaker's lead and at most one frame -- not the
    # recording (a whole decode held 130 s here).
    assert max(ahead for _n, _ms, ahead in polls) <= AUDIO_LEAD_MS + 20 + 40

    # And back to half a minute in: that place's sound (500 Hz), not what came next.
    player.seek(30_500)
    before = len(stream.out)
    qtbot.waitUntil(lambda: len(stream.out) > before + 20, timeout=5000)
    after = [pitch(b, 44_100) for b in list(stream.out)[before + 12:before + 20]]
    assert all(abs(p - stepped_hz(31)) < 30 for p in after), after
    assert 31_000 <= player.position_ms <= 33_000

    player.hide()  # closed or hidden: the sound stops with it
    assert not player.playing and player.speaker is None and stream.closed
    assert player.sound_ahead_ms() == 0


def test_a_recording_without_sound_plays_silent_video(qtbot, tmp_path, speaker):
    player = RecordingPlayer({HOST: silent_video(20, 30)})
    qtbot.addWidget(player)
    player.show()
    player.toggle()
    out = speaker.instances[-1]
    qtbot.waitUntil(lambda: not player.playing, timeout=5000)  # played to the end
    assert player.position_ms >= 600 and player.error is None
    assert out.out and not any(block.any() for block in out.out)  # silence, not garbage


def test_a_damaged_segment_gets_a_message_not_a_crash(qtbot, tmp_path, theme, save_screenshot):
    good = segment(tmp_path, 30)
    player = RecordingPlayer({HOST: good, GUEST: secrets.token_bytes(8192)},
                             {HOST: "Dr Host", GUEST: "Nurse Guest"})
    qtbot.addWidget(player)
    player.show()
    assert player.error is None and player.current_image is not None
    player.who.setCurrentIndex(1)  # the damaged one
    assert "damaged or incomplete" in player.error and player.error_label.isVisible()
    assert player.current_image is None and player.duration_ms == 0
    assert not player.play_button.isEnabled() and not player.slider.isEnabled()
    player.resize(560, 600)
    save_screenshot(player, "recording-damaged-part.png")
    player.toggle()
    assert not player.playing  # nothing to play
    player.who.setCurrentIndex(0)
    assert player.error is None and not player.error_label.isVisible()
    assert player.play_button.isEnabled()
    assert player.current_image is not None

    only_bad = RecordingPlayer({GUEST: b"\x1a\x45\xdf\xa3" + b"\x00" * 64})
    qtbot.addWidget(only_bad)
    assert only_bad.error and only_bad.duration_ms == 0


def failing_after(produce, pieces: int):
    """``produce`` (a reader's iterator method) whose iterators fail as damage does after
    ``pieces`` items."""
    def failing(from_ms: int = 0):
        for n, piece in enumerate(produce(from_ms)):
            if n == pieces:
                raise SegmentUnreadable("damaged")
            yield piece
    return failing


def test_the_sound_failing_midway_leaves_the_picture_playing(qtbot, tmp_path, speaker):
    player = RecordingPlayer({HOST: tone_segment(tmp_path, 4, video_fps=10)})
    qtbot.addWidget(player)
    player.show()
    reader = player._decoder._reader
    reader.sound_from = failing_after(reader.sound_from, 25)  # half a second of sound
    player.toggle()
    stream = speaker.instances[-1]
    qtbot.waitUntil(lambda: player.error is not None, timeout=5000)
    assert "sound" in player.error
    failed_at = player.position_ms
    qtbot.waitUntil(lambda: player.position_ms >= failed_at + 500, timeout=5000)
    assert player.playing  # the picture goes on, silent
    blocks = len(stream.out)
    qtbot.waitUntil(lambda: len(stream.out) > blocks + 10, timeout=5000)
    assert not any(block.any() for block in list(stream.out)[blocks:])
    player.toggle()


def test_the_picture_failing_midway_stops_with_a_message(qtbot, tmp_path):
    player = RecordingPlayer({HOST: segment(tmp_path, 60)})
    qtbot.addWidget(player)
    player.show()
    reader = player._decoder._reader
    reader.frames = failing_after(reader.frames, 10)
    player.seek(0)
    player.toggle()
    qtbot.waitUntil(lambda: player.error is not None, timeout=5000)
    assert not player.playing and "picture" in player.error
    assert 200 <= player.position_ms < 400 and np.isfinite(player.position_ms)
