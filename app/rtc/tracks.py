"""Synthetic media for tests, benchmarks and the headless peer: a video track whose frames
carry a machine-readable stamp (sender tag, sequence number, capture time) drawn as large
black/white blocks that survive VP8, and a tone as the microphone.

``read_stamp`` decodes the stamp from a received frame, so a test can prove a frame really
came from the other side and measure capture -> display latency across the call.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from dataclasses import dataclass

import numpy as np
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame
from av.video.reformatter import VideoReformatter

WIDTH, HEIGHT = 320, 240
BLOCK = 16
COLS = WIDTH // BLOCK  # 20 blocks a row
MAGIC = 0x5AC3
# magic(16) tag(16) seq(32) time_ms(48) check(8) = 120 bits = 6 rows of 20 blocks
_FIELDS = ((16, "magic"), (16, "tag"), (32, "seq"), (48, "time_ms"), (8, "check"))
BITS = sum(width for width, _ in _FIELDS)
ROWS = math.ceil(BITS / COLS)


@dataclass(frozen=True, slots=True)
class Stamp:
    tag: int
    seq: int
    time_ms: int


def _check(tag: int, seq: int, time_ms: int) -> int:
    value = tag ^ seq ^ time_ms ^ (time_ms >> 24)
    return (value ^ (value >> 8) ^ (value >> 16) ^ (value >> 32)) & 0xFF


def _bits(stamp: Stamp) -> list[int]:
    values = {"magic": MAGIC, "tag": stamp.tag, "seq": stamp.seq, "time_ms": stamp.time_ms,
              "check": _check(stamp.tag, stamp.seq, stamp.time_ms)}
    bits: list[int] = []
    for width, name in _FIELDS:
        bits.extend((values[name] >> (width - 1 - i)) & 1 for i in range(width))
    return bits


def draw_stamp(image: np.ndarray, stamp: Stamp) -> None:
    """Draw ``stamp`` into the top rows of a gray (H, W) uint8 image, in place."""
    for index, bit in enumerate(_bits(stamp)):
        row, col = divmod(index, COLS)
        y, x = row * BLOCK, col * BLOCK
        image[y:y + BLOCK, x:x + BLOCK] = 235 if bit else 16


def read_stamp(image: np.ndarray) -> Stamp | None:
    """The stamp in a gray (H, W) image, or None if there is none (or it does not check)."""
    if image.shape[0] < ROWS * BLOCK or image.shape[1] < COLS * BLOCK:
        return None
    sy = image.shape[0] / HEIGHT
    sx = image.shape[1] / WIDTH
    bits = []
    for index in range(BITS):
        row, col = divmod(index, COLS)
        cy, cx = int((row * BLOCK + BLOCK / 2) * sy), int((col * BLOCK + BLOCK / 2) * sx)
        patch = image[cy - 3:cy + 3, cx - 3:cx + 3]
        bits.append(1 if float(patch.mean()) > 125 else 0)
    values: dict[str, int] = {}
    pos = 0
    for width, name in _FIELDS:
        value = 0
        for bit in bits[pos:pos + width]:
            value = (value << 1) | bit
        values[name] = value
        pos += width
    if values["magic"] != MAGIC:
        return None
    if values["check"] != _check(values["tag"], values["seq"], values["time_ms"]):
        return None
    return Stamp(values["tag"], values["seq"], values["time_ms"])


def converted(frame: VideoFrame, **options: object) -> VideoFrame:
    """``frame.reformat(**options)`` with a reformatter of its own. PyAV keeps one per frame,
    and one frame reaches several threads at once (a tile's worker, the encoder, the
    recorder): two threads in one SwsContext hung a test run at exit. Like ``reformat`` it
    returns ``frame`` itself when nothing changes, so treat the result as read-only."""
    return VideoReformatter().reformat(frame, **options)  # type: ignore[arg-type]


def private_copy(frame: VideoFrame, **options: object) -> VideoFrame:
    """:func:`converted`, always a new frame: one whose ``pts`` the caller may set without
    touching a frame that other threads hold."""
    out = converted(frame, **options)
    if out is frame:
        out = VideoFrame.from_ndarray(frame.to_ndarray(), format=frame.format.name)
    return out


def read_frame_stamp(frame: VideoFrame) -> Stamp | None:
    return read_stamp(converted(frame, format="gray").to_ndarray())


def frame_to_rgb(frame: VideoFrame) -> np.ndarray:
    """A decoded frame as an (H, W, 3) uint8 RGB array, for a view to show."""
    return converted(frame, format="rgb24").to_ndarray()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class SyntheticVideoTrack(VideoStreamTrack):
    """A stand-in camera: 320x240 at 30 fps, each frame stamped with tag, seq and the time.

    Below the stamp a moving bar, so the encoder sees motion.
    """

    kind = "video"

    def __init__(self, tag: int) -> None:
        super().__init__()
        self.tag = tag & 0xFFFF
        self.seq = 0
        self._background = np.full((HEIGHT, WIDTH), 96, dtype=np.uint8)

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        image = self._background.copy()
        bar = (self.seq * 4) % WIDTH
        image[ROWS * BLOCK + 8:, bar:bar + 12] = 200
        draw_stamp(image, Stamp(self.tag, self.seq, now_ms()))
        self.seq += 1
        frame = VideoFrame.from_ndarray(image, format="gray").reformat(format="yuv420p")
        frame.pts, frame.time_base = pts, time_base
        return frame


class ToneAudioTrack(AudioStreamTrack):
    """A stand-in microphone: a 440 Hz tone, 20 ms frames, 48 kHz mono s16."""

    kind = "audio"
    rate = 48_000
    samples = 960

    def __init__(self, frequency: float = 440.0) -> None:
        super().__init__()
        self.frequency = frequency
        self._sent = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._sent / self.rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (np.arange(self.samples) + self._sent) / self.rate
        wave = (np.sin(2 * np.pi * self.frequency * t) * 8000).astype(np.int16)
        frame = AudioFrame.from_ndarray(wave.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, self.rate)
        self._sent += self.samples
        return frame


def audio_level(frame: AudioFrame) -> float:
    """RMS level of an audio frame, 0 (silence) .. 1 (full scale); for the active speaker."""
    samples = frame.to_ndarray()
    if samples.size == 0:
        return 0.0
    if samples.dtype.kind == "f":
        values = samples.astype(np.float32)
    else:
        values = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max)
    return float(min(1.0, np.sqrt(np.mean(values * values))))


def _blank_video(frame: VideoFrame) -> VideoFrame:
    gray = np.zeros((frame.height, frame.width), dtype=np.uint8)
    blank = VideoFrame.from_ndarray(gray, format="gray").reformat(format="yuv420p")
    blank.pts, blank.time_base = frame.pts, frame.time_base
    return blank


def _silent_audio(frame: AudioFrame) -> AudioFrame:
    silent = AudioFrame.from_ndarray(np.zeros_like(frame.to_ndarray()),
                                     format=frame.format.name, layout=frame.layout.name)
    silent.sample_rate = frame.sample_rate
    silent.pts, silent.time_base = frame.pts, frame.time_base
    return silent


class GatedTrack(MediaStreamTrack):
    """A camera or microphone with an off switch (camera off, mute).

    While :attr:`enabled` is False the source is still read (so timing stays the source's)
    but what goes on is black video or silence of the same shape: the receiving side keeps
    seeing media arrive (its stall watchdog does not rebuild the link) and no captured
    pixel or sample leaves. Stopping the gate stops the source.
    """

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        self.enabled = True

    async def recv(self):
        frame = await self.source.recv()
        if self.enabled:
            return frame
        if self.kind == "video":
            return _blank_video(frame)
        return _silent_audio(frame)

    def stop(self) -> None:
        super().stop()
        self.source.stop()
