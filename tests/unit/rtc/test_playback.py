"""Sound out (app/rtc/playback.py) at the sounddevice edge: this machine has no speaker, so a
stand-in for PortAudio's output stream calls back in its own thread at the device's pace and
keeps what reached it -- the samples are checked (frequency by FFT, mixing, bounded latency,
mute), and a real aiortc call's tone arrives at the other side's speaker."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import ClassVar

import numpy as np
from av import AudioFrame

from app.rtc import playback


class FakeOutputStream:
    """A stand-in for ``sounddevice.OutputStream``: on start() its own thread asks the
    callback for blocks at the device's pace (10 ms), as PortAudio would, and keeps them."""

    instances: ClassVar[list] = []

    def __init__(self, *, device, samplerate, channels, dtype, blocksize, callback) -> None:
        assert (channels, dtype) == (1, "int16")
        self.device, self.rate, self.block, self.callback = device, samplerate, blocksize, callback
        self.running = threading.Event()
        self.closed = False
        self.out: list[np.ndarray] = []
        FakeOutputStream.instances.append(self)

    def start(self) -> None:
        self.running.set()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        pause = threading.Event()
        next_at = time.monotonic()
        while self.running.is_set():
            outdata = np.full((self.block, 1), 12345, np.int16)  # garbage the player must overwrite
            self.callback(outdata, self.block, None, None)
            self.out.append(outdata[:, 0].copy())
            next_at += self.block / self.rate  # the device's clock: no drift from our work
            pause.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self.running.clear()

    def close(self) -> None:
        self.closed = True

    def pcm(self) -> np.ndarray:
        return np.concatenate(self.out) if self.out else np.zeros(0, np.int16)


def sine_frames(hz: float, seconds: float, rate: int = 48_000, layout: str = "stereo"):
    n = rate // 50
    total = int(seconds * rate)
    for start in range(0, total, n):
        t = (np.arange(n) + start) / rate
        wave = (np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16)
        channels = 2 if layout == "stereo" else 1
        data = np.repeat(wave, channels).reshape(1, -1)  # packed s16, like aiortc's decoder
        frame = AudioFrame.from_ndarray(data, format="s16", layout=layout)
        frame.sample_rate, frame.pts = rate, start
        yield frame


def peaks(pcm: np.ndarray, rate: int, count: int = 1) -> list[float]:
    spectrum = np.abs(np.fft.rfft(pcm.astype(float) * np.hanning(len(pcm))))
    found: list[float] = []
    for _ in range(count):
        i = int(np.argmax(spectrum))
        found.append(i * rate / len(pcm))
        spectrum[max(0, i - 20):i + 20] = 0
    return sorted(found)


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


def playing(stream: FakeOutputStream) -> np.ndarray:
    """The output from the first non-silent sample on."""
    pcm = stream.pcm()
    nonzero = np.flatnonzero(pcm)
    return pcm[nonzero[0]:] if nonzero.size else pcm[:0]


async def test_remote_audio_is_resampled_to_the_device_rate_and_played():
    player = playback.open_speaker("sd:2", stream_factory=FakeOutputStream, rate=44_100)
    stream = FakeOutputStream.instances[-1]
    assert player is not None and stream.device == 2 and stream.rate == 44_100
    try:
        for frame in sine_frames(1000, 1.0):  # 48 kHz stereo, as aiortc decodes Opus
            player.push("peer", frame)
            await asyncio.sleep(0.02)
        await wait_until(lambda: len(playing(stream)) > 44_100 * 0.6)
    finally:
        player.close()
    assert stream.closed and not stream.running.is_set()
    pcm = playing(stream)[:int(44_100 * 0.6)]
    assert abs(peaks(pcm, 44_100)[0] - 1000) < 5
    assert 5000 < np.abs(pcm).max() <= 8100  # the level kept, not the stream's garbage


async def test_two_sources_are_mixed_and_mute_gives_silence():
    player = playback.open_speaker("default", stream_factory=FakeOutputStream, rate=48_000)
    stream = FakeOutputStream.instances[-1]
    assert stream.device is None
    try:
        for a, b in zip(sine_frames(440, 0.8), sine_frames(1500, 0.8), strict=True):
            player.push("bob", a)
            player.push("carol", b)
            await asyncio.sleep(0.02)
        await wait_until(lambda: len(playing(stream)) > 48_000 * 0.5)
        mixed = playing(stream)[:24_000]
        assert [round(p / 10) * 10 for p in peaks(mixed, 48_000, 2)] == [440, 1500]
        player.muted = True
        before = len(stream.out)
        for frame in sine_frames(440, 0.3):
            player.push("bob", frame)
        await wait_until(lambda: len(stream.out) > before + 20)
        assert not np.concatenate(stream.out[before + 2:]).any()  # muted: silence
        assert player.buffered_ms("bob") < 50  # consumed while muted: no backlog for later
    finally:
        player.close()


async def test_latency_stays_bounded_when_audio_arrives_in_a_burst():
    player = playback.open_speaker("sd:0", stream_factory=FakeOutputStream, rate=48_000)
    stream = FakeOutputStream.instances[-1]
    try:
        for frame in sine_frames(440, 2.0):  # 2 s at once (after a network stall)
            player.push("bob", frame)
        await wait_until(lambda: len(stream.out) > 10)
        assert player.buffered_ms("bob") <= 160
        assert player.dropped > 48_000  # the backlog was dropped, not played late
    finally:
        player.close()


async def test_no_speaker_here_plays_nothing():
    # This machine: PortAudio (if installed) finds no output device.
    assert playback.speakers() == []
    assert playback.open_speaker("default") is None
    assert playback.open_speaker("sd:0") is None
    assert playback.open_speaker(playback.NONE, stream_factory=FakeOutputStream) is None

    class Broken(FakeOutputStream):
        def __init__(self, **kw) -> None:
            raise ValueError("no such device")

    assert playback.open_speaker("sd:7", stream_factory=Broken) is None


async def test_the_test_sound_is_a_clean_tone():
    pcm = playback.tone(0.5)
    assert len(pcm) == 24_000 and abs(int(pcm[0])) < 100 and abs(int(pcm[-1])) < 100
    assert abs(peaks(pcm, 48_000)[0] - 440) < 3


async def test_the_other_peers_tone_reaches_our_speaker(devices, wire):
    """Real aiortc peers: Alice sends a 440 Hz tone (Opus), Bob's call plays it."""
    alice, bob = devices[:2]
    ca = wire.call_for(alice)
    cb = wire.call_for(bob)
    player = playback.open_speaker("default", stream_factory=FakeOutputStream, rate=44_100)
    stream = FakeOutputStream.instances[-1]
    cb.taps.append(playback.audio_tap(player))
    try:
        await ca.connect(bob.party, offerer=True)
        await wait_until(lambda: len(playing(stream)) > 44_100 * 1.0, 20)
    finally:
        player.close()
        await ca.hangup()
        await cb.hangup()
    pcm = playing(stream)[-44_100:]
    assert abs(peaks(pcm, 44_100)[0] - 440) < 5
