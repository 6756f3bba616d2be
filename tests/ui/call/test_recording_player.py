"""The recording player: a segment written by the real recorder (synthetic pattern, sealed
spool, read back into memory) is decoded from memory, shown frame by frame, seekable with the
position slider, and played."""

from __future__ import annotations

import secrets

import numpy as np
from av import VideoFrame

from app.crypto.files import new_file_key
from app.rtc.recorder import SealedSpool, _Segment
from app.rtc.signing import Party
from app.ui.call.recordings import RecordingPlayer

FPS = 30


def pattern(i: int, width: int = 320, height: int = 240) -> VideoFrame:
    """Colour bars with a white square moving left to right (its x tells the time)."""
    bars = np.array([[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
                     [255, 0, 255], [255, 0, 0], [0, 0, 255], [0, 0, 0]], np.uint8)
    image = np.repeat(bars, width // len(bars), axis=0)[None, :, :].repeat(height, axis=0)
    image = np.ascontiguousarray(image)
    x = (i * 4) % (width - 40)
    image[100:140, x:x + 40] = 255
    image[100:140, x + 10:x + 30] = 40
    return VideoFrame.from_ndarray(image, format="rgb24")


def segment(tmp_path, frames: int = 90) -> bytes:
    key, sid = new_file_key(), secrets.token_bytes(8)
    spool = SealedSpool(tmp_path / "seg.spool", key, sid)
    seg = _Segment(0.0, spool)
    for i in range(frames):
        seg.add_video(pattern(i), i / FPS)
    seg.finish()
    return b"".join(SealedSpool.read(spool.path, key, sid, spool.records))


def shown(player: RecordingPlayer) -> np.ndarray:
    assert player.current_image is not None
    image = player.current_image.convertToFormat(player.current_image.Format.Format_RGB888)
    width, height = image.width(), image.height()
    data = np.frombuffer(image.constBits(), np.uint8, image.bytesPerLine() * height)
    return data.reshape(height, image.bytesPerLine())[:, :width * 3].reshape(height, width, 3)


def test_player_shows_frames_seeks_and_plays(qtbot, tmp_path, save_screenshot):
    host = Party("@dr.host:test", "DEVHOST")
    player = RecordingPlayer({host: segment(tmp_path)}, {host: "Dr Host"})
    qtbot.addWidget(player)
    player.resize(560, 480)
    player.show()
    assert 2800 <= player.duration_ms <= 3000 and player.slider.maximum() == player.duration_ms
    assert player.position_ms == 0 and not player.video.pixmap().isNull()
    first = shown(player).copy()
    assert first.std() > 30  # the bars, not a black frame

    player.seek(1500)  # what moving the slider does
    assert 1466 <= player.position_ms <= 1534 and player.slider.value() == player.position_ms
    assert np.abs(shown(player).astype(int) - first).mean() > 1  # the square moved
    assert "0:01 / 0:02" in player.time_label.text()
    save_screenshot(player, "call-recording-player.png")

    player.toggle()
    assert player.playing
    start = player.position_ms
    qtbot.waitUntil(lambda: player.position_ms > start + 200, timeout=5000)
    player.toggle()
    assert not player.playing


def stepped_segment(tmp_path, seconds: int = 3) -> bytes:
    """Video plus sound whose pitch tells the time: 500 Hz in the first second, 1000 Hz in
    the second, 1500 Hz in the third."""
    from av import AudioFrame

    key, sid = new_file_key(), secrets.token_bytes(8)
    spool = SealedSpool(tmp_path / "stepped.spool", key, sid)
    seg = _Segment(0.0, spool)
    done = 0
    for i in range(seconds * FPS):
        seg.add_video(pattern(i, 160, 120), i / FPS)
        while done * 0.02 <= i / FPS:
            t = (np.arange(960) + done * 960) / 48_000
            hz = 500 * (1 + int(done * 0.02))
            pcm = (np.sin(2 * np.pi * hz * t) * 9000).astype(np.int16).reshape(1, -1)
            frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = 48_000
            seg.add_audio(frame)
            done += 1
    seg.finish()
    return b"".join(SealedSpool.read(spool.path, key, sid, spool.records))


def pitch(block: np.ndarray, rate: int) -> float:
    if not block.any():
        return 0.0
    spectrum = np.abs(np.fft.rfft(block.astype(float), n=4096))
    return float(np.argmax(spectrum) * rate / 4096)


def test_the_sound_plays_in_sync_with_the_picture_and_seeks_with_it(qtbot, tmp_path,
                                                                     monkeypatch):
    from app.rtc import capture
    from tests.ui.call.test_call_sound import SoundDevices
    from tests.unit.rtc.test_playback import FakeOutputStream

    monkeypatch.setattr(capture, "sounddevice", SoundDevices())  # a speaker at 44.1 kHz
    host = Party("@dr.host:test", "DEVHOST")
    player = RecordingPlayer({host: stepped_segment(tmp_path)}, {host: "Dr Host"})
    qtbot.addWidget(player)
    player.show()
    player.seek(1500)
    player.toggle()
    assert player.playing and player.speaker is not None
    stream = FakeOutputStream.instances[-1]
    polls: list[tuple[int, int]] = []  # (blocks out so far, position shown)

    def past(ms: int) -> bool:
        polls.append((len(stream.out), player.position_ms))
        return player.position_ms >= ms

    qtbot.waitUntil(lambda: past(2400), timeout=5000)
    blocks = list(stream.out)
    pitches = [pitch(b, 44_100) for b in blocks]
    heard = [p for p in pitches if p]
    assert abs(heard[0] - 1000) < 30  # it started where the picture was: second 1-2
    # When the picture passes 2.0 s, the sound turns to 1500 Hz: at most 100 ms apart.
    shown_at = next(n for n, ms in polls if ms >= 2000)
    heard_at = next(i for i, p in enumerate(pitches) if abs(p - 1500) < 30)
    assert abs(heard_at - shown_at) * 10 <= 100, (heard_at, shown_at)

    # A seek while playing: both go back to 0.5 s (500 Hz) together.
    player.seek(500)
    before = len(stream.out)
    qtbot.waitUntil(lambda: len(stream.out) > before + 20, timeout=5000)
    after = [pitch(b, 44_100) for b in list(stream.out)[before + 12:before + 20]]
    assert all(abs(p - 500) < 30 for p in after), after
    assert 500 <= player.position_ms <= 1000
    player.toggle()
    assert not player.playing and stream.closed and player.speaker is None


def test_without_a_speaker_the_picture_plays_alone(qtbot, tmp_path):
    host = Party("@dr.host:test", "DEVHOST")
    player = RecordingPlayer({host: stepped_segment(tmp_path, 1)}, {host: "Dr Host"})
    qtbot.addWidget(player)
    player.show()
    player.toggle()  # this machine: no output device
    assert player.playing and player.speaker is None
    qtbot.waitUntil(lambda: not player.playing, timeout=5000)  # played to the end
    assert player.position_ms >= 900
