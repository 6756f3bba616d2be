"""Sound out: remote call audio and a recording's sound through a speaker (docs/calls.md,
"Sound output").

:class:`AudioPlayer` owns one PortAudio output stream (``sounddevice.OutputStream``, mono
s16 at the device's own rate, 10 ms blocks). Sources -- one per remote device, or a
recording -- hand it decoded ``av.AudioFrame`` objects (or PCM) from the event loop; that
only appends the frame to the source's inbox. Everything else happens in PortAudio's
callback thread: resampling to the device rate (``av.AudioResampler``, one per source),
the per-source jitter buffer, mixing and clipping. So the GUI thread never resamples or
mixes.

Latency is bounded: a source starts playing once ``prebuffer_ms`` (40 ms) are buffered;
when more than ``max_buffer_ms`` (160 ms) pile up (a burst after a network stall, a clock
running faster than the device's), the oldest samples are dropped down to the prebuffer
again; an underrun plays silence for that source and waits for the prebuffer anew.

No sounddevice, no PortAudio library, no output device, or one that does not open:
:func:`open_speaker` returns None, and the caller plays nothing (logged, no device name).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Hashable
from typing import Any

import numpy as np
from av import AudioFrame, AudioResampler

from app.rtc import capture
from app.rtc.capture import Device

log = logging.getLogger(__name__)

DEFAULT = "default"  # the system's default output device
NONE = "none"  # play nothing
FALLBACK_RATE = 48_000


def speakers() -> list[Device]:
    """The output devices PortAudio finds (none without sounddevice/PortAudio)."""
    sd = capture._sd()
    if sd is None:
        return []
    try:
        devices = list(sd.query_devices())
    except Exception:  # PortAudio could not enumerate: no speaker
        return []
    return [Device(f"sd:{index}", str(info.get("name", "")), "output")
            for index, info in enumerate(devices)
            if int(info.get("max_output_channels", 0) or 0) > 0]


def open_speaker(key: str, *, stream_factory: Any = None, rate: int | None = None,
                 **options: Any) -> AudioPlayer | None:
    """A player on speaker ``key`` (``sd:<index>`` or ``default``); None for ``none``,
    without sounddevice/PortAudio, or when the device cannot be opened."""
    if key == NONE or not key:
        return None
    if key != DEFAULT and not (key.startswith("sd:") and key[3:].isdigit()):
        return None
    sd = None if stream_factory is not None else capture._sd()
    if stream_factory is None and sd is None:
        return None
    device = None if key == DEFAULT else int(key[3:])
    try:
        if rate is None and sd is not None:
            info = sd.query_devices(device, "output")
            rate = int(info.get("default_samplerate") or FALLBACK_RATE)
        return AudioPlayer(device, rate=rate or FALLBACK_RATE,
                           stream_factory=stream_factory or sd.OutputStream, **options)
    except Exception:  # PortAudioError, ValueError: no such device, busy, none at all
        log.warning("speaker not available, no sound played",
                    extra={"event": "speaker_fallback"})
        return None


class _Source:
    __slots__ = ("buffered", "inbox", "pcm", "playing", "resampler")

    def __init__(self) -> None:
        self.inbox: deque[Any] = deque(maxlen=100)  # frames not yet resampled (2 s at most)
        self.pcm: deque[np.ndarray] = deque()
        self.buffered = 0  # samples in pcm
        self.playing = False
        self.resampler: AudioResampler | None = None


class AudioPlayer:
    """One output stream, many sources mixed (see the module's docstring)."""

    def __init__(self, device: int | None, *, rate: int = FALLBACK_RATE, stream_factory: Any,
                 prebuffer_ms: float = 40.0, max_buffer_ms: float = 160.0) -> None:
        self.rate = int(rate)
        self.block = self.rate // 100  # 10 ms
        self.prebuffer = int(self.rate * prebuffer_ms / 1000)
        self.max_buffer = int(self.rate * max_buffer_ms / 1000)
        self.muted = False  # silence out, sources still consumed (no backlog on unmute)
        self.dropped = 0  # samples dropped to keep latency bounded
        self.underruns = 0
        self.status_flags = 0  # PortAudio's over/underflow reports seen
        self.played = 0  # samples handed to the device
        self._lock = threading.Lock()
        self._sources: dict[Hashable, _Source] = {}
        self._closed = False
        self._stream = stream_factory(device=device, samplerate=self.rate, channels=1,
                                      dtype="int16", blocksize=self.block,
                                      callback=self._callback)
        self._stream.start()

    # -- the event loop's side: cheap -------------------------------------------------------

    def push(self, source: Hashable, frame: AudioFrame) -> None:
        """Queue a decoded frame of ``source`` (any rate/layout); resampled off this thread."""
        if self._closed:
            return
        with self._lock:
            entry = self._sources.get(source)
            if entry is None:
                entry = self._sources[source] = _Source()
            entry.inbox.append(frame)

    def push_pcm(self, source: Hashable, pcm: np.ndarray, rate: int) -> None:
        """Queue mono s16 PCM at ``rate`` (a recording's sound, the test sound)."""
        samples = np.ascontiguousarray(pcm, np.int16).reshape(1, -1)
        for start in range(0, samples.shape[1], rate // 50 or 1):  # 20 ms frames
            frame = AudioFrame.from_ndarray(samples[:, start:start + rate // 50],
                                            format="s16", layout="mono")
            frame.sample_rate = rate
            self.push(source, frame)

    def remove(self, source: Hashable) -> None:
        """Forget ``source`` (a peer that left, a seek in a recording)."""
        with self._lock:
            self._sources.pop(source, None)

    def buffered_ms(self, source: Hashable) -> float:
        with self._lock:
            entry = self._sources.get(source)
            if entry is None:
                return 0.0
            pending = sum(f.samples * self.rate // max(f.sample_rate, 1) for f in entry.inbox)
            return (entry.buffered + pending) * 1000.0 / self.rate

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            self._stream.stop()
        with contextlib.suppress(Exception):
            self._stream.close()
        with self._lock:
            self._sources.clear()

    # -- PortAudio's thread -----------------------------------------------------------------

    def _resample(self, entry: _Source, frame: AudioFrame) -> None:
        if entry.resampler is None:
            entry.resampler = AudioResampler(format="s16", layout="mono", rate=self.rate)
        for out in entry.resampler.resample(frame):
            pcm = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
            if pcm.size:
                entry.pcm.append(pcm)
                entry.buffered += pcm.size

    def _take(self, entry: _Source, n: int) -> np.ndarray | None:
        if not entry.playing:
            if entry.buffered < self.prebuffer:
                return None
            entry.playing = True
        if entry.buffered > self.max_buffer:  # too far behind: keep the newest prebuffer
            excess = entry.buffered - self.prebuffer
            self.dropped += excess
            self._skip(entry, excess)
        out = np.zeros(n, np.int32)
        filled = 0
        while filled < n and entry.pcm:
            head = entry.pcm[0]
            take = min(n - filled, head.size)
            out[filled:filled + take] = head[:take]
            filled += take
            if take == head.size:
                entry.pcm.popleft()
            else:
                entry.pcm[0] = head[take:]
        entry.buffered -= filled
        if filled < n:  # ran dry: silence, and wait for the prebuffer again
            self.underruns += 1
            entry.playing = False
        return out

    @staticmethod
    def _skip(entry: _Source, count: int) -> None:
        entry.buffered -= count
        while count > 0 and entry.pcm:
            head = entry.pcm[0]
            if head.size <= count:
                count -= head.size
                entry.pcm.popleft()
            else:
                entry.pcm[0] = head[count:]
                count = 0

    def _callback(self, outdata: Any, frames: int, _time: Any, status: Any) -> None:
        if status:
            self.status_flags += 1
        mix = np.zeros(frames, np.int32)
        try:
            with self._lock:
                for entry in self._sources.values():
                    while entry.inbox:
                        self._resample(entry, entry.inbox.popleft())
                    part = self._take(entry, frames)
                    if part is not None:
                        mix += part
        except Exception:  # never raise into PortAudio: a bad frame is silence
            log.warning("audio output mixing failed", extra={"event": "speaker_mix_failed"})
            mix[:] = 0
        if self.muted:
            mix[:] = 0
        block = np.clip(mix, -32768, 32767).astype(np.int16)
        if outdata.ndim == 2:
            outdata[:, 0] = block
            if outdata.shape[1] > 1:
                outdata[:, 1:] = block[:, None]
        else:
            outdata[:] = block
        self.played += frames


def tone(seconds: float = 0.6, *, rate: int = FALLBACK_RATE, hz: float = 440.0) -> np.ndarray:
    """The pre-join test sound: a tone with 10 ms fades (no clicks), mono s16."""
    t = np.arange(int(seconds * rate)) / rate
    wave = np.sin(2 * np.pi * hz * t) * 8000
    fade = min(len(t) // 2, rate // 100)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave[:fade] *= ramp
        wave[-fade:] *= ramp[::-1]
    return wave.astype(np.int16)


def audio_tap(player: AudioPlayer) -> Any:
    """A ``Call.taps`` entry: every decoded remote audio frame into ``player``, one source
    per remote device (video frames pass by)."""

    def tap(peer: Hashable, frame: Any) -> None:
        if isinstance(frame, AudioFrame):
            player.push(peer, frame)

    return tap
