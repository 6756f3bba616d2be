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
