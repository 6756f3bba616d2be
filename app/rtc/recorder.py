"""Recording a call's decoded remote media into memory, encoded off the event loop.

One Matroska segment per recorded participant (video VP8, audio PCM), built in a
``BytesIO`` by a worker thread fed through a queue: the event loop only enqueues frames.
Nothing is written to disk here -- the service seals the finished segments into an encrypted
file (``app.crypto.files`` via ``app.storage.files.EncryptedFileStore``), so no plaintext
media ever touches the disk. Memory grows with the recording's length (a streaming sealed
writer is the next step for long recordings; docs/calls.md).

Only participants in :attr:`CallRecorder.allowed` are recorded: a late joiner's frames are
dropped until their consent arrives.
"""

from __future__ import annotations

import fractions
import io
import logging
import queue
import threading
import time
from typing import Any

import av
from av import AudioFrame, VideoFrame

from app.rtc.signing import Party

log = logging.getLogger(__name__)

VIDEO_RATE = 90_000
_STOP = object()


class _Segment:
    def __init__(self, started: float) -> None:
        self.buffer = io.BytesIO()
        self.container = av.open(self.buffer, mode="w", format="matroska")
        self.video: Any = None
        self.audio: Any = None
        self.started = started
        self.last_video_pts = -1
        self.audio_samples = 0
        self.frames = 0

    def add_video(self, frame: VideoFrame, now: float) -> None:
        if self.video is None:
            if self.frames:  # streams are fixed once muxing began
                return
            self.video = self.container.add_stream("libvpx", rate=30)
            self.video.width, self.video.height = frame.width, frame.height
            self.video.pix_fmt = "yuv420p"
            self.video.time_base = fractions.Fraction(1, VIDEO_RATE)
            self._ensure_audio_stream()
        if (frame.width, frame.height) != (self.video.width, self.video.height):
            frame = frame.reformat(width=self.video.width, height=self.video.height)
        pts = max(int((now - self.started) * VIDEO_RATE), self.last_video_pts + 1)
        self.last_video_pts = pts
        out = frame.reformat(format="yuv420p")
        out.pts, out.time_base = pts, fractions.Fraction(1, VIDEO_RATE)
        for packet in self.video.encode(out):
            self.container.mux(packet)
        self.frames += 1

    def _ensure_audio_stream(self) -> None:
        if self.audio is None:
            self.audio = self.container.add_stream("pcm_s16le", rate=48_000, layout="mono")

    def add_audio(self, frame: AudioFrame) -> None:
        if self.video is None or self.audio is None:
            return  # audio follows the first video frame (the streams are set up together)
        samples = frame.to_ndarray()
        if samples.dtype.kind != "i":
            return
        channels = max(1, len(frame.layout.channels))
        mono = samples[0] if frame.format.is_planar else samples.reshape(-1)[::channels]
        out = AudioFrame.from_ndarray(mono.astype("int16").reshape(1, -1), format="s16",
                                      layout="mono")
        out.sample_rate = frame.sample_rate or 48_000
        out.pts = self.audio_samples
        out.time_base = fractions.Fraction(1, out.sample_rate)
        self.audio_samples += out.samples
        for packet in self.audio.encode(out):
            self.container.mux(packet)

    def finish(self) -> bytes:
        for stream in (self.video, self.audio):
            if stream is not None:
                for packet in stream.encode(None):
                    self.container.mux(packet)
        self.container.close()
        return self.buffer.getvalue()


class CallRecorder:
    """``tap(peer, frame)`` is a :attr:`app.rtc.call.Call.taps` entry; :meth:`finish` returns
    ``{party: Matroska bytes}`` for the participants that were recorded."""

    def __init__(self, allowed: set[Party] | None = None, *, max_queue: int = 240) -> None:
        self.allowed: set[Party] = set(allowed or ())
        self._queue: queue.Queue = queue.Queue(max_queue)
        self._segments: dict[Party, _Segment] = {}
        self._started = time.monotonic()
        self.dropped = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="call-recorder", daemon=True)
        self._thread.start()

    def tap(self, peer: Party, frame: Any) -> None:
        if peer not in self.allowed:
            return  # no consent (yet): never recorded
        try:
            self._queue.put_nowait((peer, frame, time.monotonic()))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            peer, frame, at = item
            try:
                segment = self._segments.get(peer)
                if segment is None:
                    segment = self._segments[peer] = _Segment(at)
                if isinstance(frame, VideoFrame):
                    segment.add_video(frame, at)
                elif isinstance(frame, AudioFrame):
                    segment.add_audio(frame)
            except Exception as exc:  # a bad frame must not end the recording
                self.error = exc.__class__.__name__
                log.warning("recording frame dropped", extra={
                    "event": "recording_frame_failed", "reason_code": self.error})

    def finish(self, timeout: float = 10.0) -> dict[Party, bytes]:
        """Stop (blocking: call it from a worker thread) and return the segments."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        out: dict[Party, bytes] = {}
        for peer, segment in self._segments.items():
            try:
                out[peer] = segment.finish()
            except Exception as exc:
                log.warning("recording segment failed", extra={
                    "event": "recording_segment_failed", "reason_code": exc.__class__.__name__})
        return out

    @staticmethod
    def frame_count(segment: bytes) -> dict[str, int]:
        """Decoded frames per kind in a finished segment (for tests and playback checks)."""
        counts = {"video": 0, "audio": 0}
        with av.open(io.BytesIO(segment), mode="r") as container:
            for packet in container.demux():
                for frame in packet.decode():
                    kind = "video" if isinstance(frame, VideoFrame) else "audio"
                    counts[kind] += 1
        return counts
