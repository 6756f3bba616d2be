"""Recording a call's decoded remote media, encoded off the event loop, streamed to disk
sealed.

One Matroska segment per recorded participant (video VP8, audio PCM, written live: no
seeking back), muxed by a worker thread fed through a queue: the event loop only enqueues
frames. Each segment streams into a :class:`SealedSpool`: every ``SPOOL_CHUNK`` bytes of
Matroska are sealed at once as one SCF1 record (``app.crypto.files``, AES-256-GCM) under the
recording's spool key -- which the service keeps in the cache's secrets table, never beside
the spool -- and appended to the spool file. Memory stays at about one chunk per participant
whatever the call's length; a crash mid-recording leaves ciphertext only. On stop the service
streams the spools, decrypted chunk by chunk, into the one sealed recording file.

Only participants in :attr:`CallRecorder.allowed` are recorded: a late joiner's frames are
dropped until their consent arrives.
"""

from __future__ import annotations

import fractions
import io
import logging
import os
import queue
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
from av import AudioFrame, VideoFrame

from app.crypto.files import FileTampered, decrypt_bytes, encrypt_bytes, read_header
from app.rtc.signing import Party
from app.rtc.tracks import private_copy

log = logging.getLogger(__name__)

VIDEO_RATE = 90_000
KEYFRAME_INTERVAL = 60  # frames (2 s at 30 fps)
VIDEO_BITRATE = 1_000_000  # bits/s per participant
SPOOL_CHUNK = 256 * 1024
SPOOL_SUFFIX = ".spool"
_RECORD = struct.Struct(">I")
_STOP = object()


class SealedSpool:
    """An append-only file of sealed records: ``len:u32 | SCF1(key, chunk)`` each. Record
    ``i`` carries the file id ``spool_id | i`` (checked on reading), so records cannot be
    reordered, dropped or mixed in from another spool without :class:`FileTampered`."""

    def __init__(self, path: Path, key: bytes, spool_id: bytes,
                 chunk: int = SPOOL_CHUNK) -> None:
        if len(spool_id) != 8:
            raise ValueError("spool id must be 8 bytes")
        self.path, self._key, self.spool_id, self._chunk = path, key, spool_id, chunk
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o600)
        self._out = os.fdopen(fd, "wb")
        self._pending = bytearray()
        self.records = 0
        self.length = 0  # plaintext bytes sealed so far

    def write(self, data: Any) -> int:
        self._pending += data
        while len(self._pending) >= self._chunk:
            self._seal(bytes(self._pending[:self._chunk]))
            del self._pending[:self._chunk]
        return len(data)

    def _seal(self, plain: bytes) -> None:
        file_id = self.spool_id + self.records.to_bytes(8, "big")
        blob = encrypt_bytes(plain, self._key, file_id=file_id)
        self._out.write(_RECORD.pack(len(blob)) + blob)
        self._out.flush()
        self.records += 1
        self.length += len(plain)

    def close(self) -> None:
        if self._out.closed:
            return
        if self._pending:
            self._seal(bytes(self._pending))
            self._pending.clear()
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()

    @staticmethod
    def read(path: Path, key: bytes, spool_id: bytes, records: int) -> Iterator[bytes]:
        """The plaintext, record by record (one record in memory at a time)."""
        with open(path, "rb") as src:
            for index in range(records):
                size_bytes = src.read(_RECORD.size)
                if len(size_bytes) != _RECORD.size:
                    raise FileTampered("spool truncated")
                (size,) = _RECORD.unpack(size_bytes)
                blob = src.read(size)
                if len(blob) != size:
                    raise FileTampered("spool truncated")
                header = read_header(io.BytesIO(blob))
                if header.file_id != spool_id + index.to_bytes(8, "big"):
                    raise FileTampered("spool record out of place")
                yield decrypt_bytes(blob, key)
            if src.read(1):
                raise FileTampered("data after the spool's last record")


class _Segment:
    def __init__(self, started: float, spool: SealedSpool) -> None:
        self.spool = spool
        self.container = av.open(spool, mode="w", format="matroska")
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
            # Live encoding must keep up with the call (libvpx's default "good" deadline
            # takes ~3x longer a frame and the queue would overflow); a keyframe every 2 s
            # bounds what a seek decodes (SegmentReader).
            self.video.options = {"deadline": "realtime", "cpu-used": "8",
                                  "lag-in-frames": "0"}
            self.video.codec_context.gop_size = KEYFRAME_INTERVAL
            self.video.bit_rate = VIDEO_BITRATE  # FFmpeg's 200 kb/s default blurs a consult
            self._ensure_audio_stream()
        pts = max(int((now - self.started) * VIDEO_RATE), self.last_video_pts + 1)
        self.last_video_pts = pts
        # The frame is shared (a tile shows it, the encoder may send it): a copy of our own
        # to convert and stamp.
        out = private_copy(frame, width=self.video.width, height=self.video.height,
                           format="yuv420p")
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

    def finish(self) -> SealedSpool:
        try:
            for stream in (self.video, self.audio):
                if stream is not None:
                    for packet in stream.encode(None):
                        self.container.mux(packet)
            self.container.close()
        finally:
            self.spool.close()
        return self.spool


class CallRecorder:
    """``tap(peer, frame)`` is a :attr:`app.rtc.call.Call.taps` entry; :meth:`finish` returns
    ``{party: closed SealedSpool}`` (one Matroska segment each) for the participants that
    were recorded. ``spool_dir`` holds the spools, sealed with ``key``."""

    def __init__(self, allowed: set[Party] | None = None, *, spool_dir: Path, key: bytes,
                 spool_id: bytes, max_queue: int = 240) -> None:
        self.allowed: set[Party] = set(allowed or ())
        self.spool_dir, self.key, self.spool_id = Path(spool_dir), key, spool_id
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
                    n = len(self._segments)
                    spool = SealedSpool(
                        self.spool_dir / f"{self.spool_id.hex()}-{n}{SPOOL_SUFFIX}", self.key,
                        self.spool_id[:7] + bytes([n]))
                    segment = self._segments[peer] = _Segment(at, spool)
                if isinstance(frame, VideoFrame):
                    segment.add_video(frame, at)
                elif isinstance(frame, AudioFrame):
                    segment.add_audio(frame)
            except Exception as exc:  # a bad frame must not end the recording
                self.error = exc.__class__.__name__
                log.warning("recording frame dropped", extra={
                    "event": "recording_frame_failed", "reason_code": self.error})

    def finish(self, timeout: float = 10.0) -> dict[Party, SealedSpool]:
        """Stop (blocking: call it from a worker thread) and return the closed spools."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        out: dict[Party, SealedSpool] = {}
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


class SegmentReader:
    """Playback of one finished segment held in memory (no file): its video duration, its
    video frames as ``(ms, RGB array)`` decoded on demand, a keyframe index for seeking, and
    its sound as PCM.

    The segments are written live, without Matroska cues, so the reader makes its own index
    in one demux pass (no decoding): every video packet's time and whether it is a keyframe.
    A seek decodes from the last keyframe at or before the target (the recorder writes one
    every ``KEYFRAME_INTERVAL`` frames, 2 s; older segments at least every 128) instead of
    from the start: a position late in an hour's consult costs the same as one early in it."""

    def __init__(self, segment: bytes) -> None:
        self._segment = segment
        self.duration_ms = 0
        self._packets: list[tuple[int, bool, bytes, int]] = []  # (ms, key, data, pts)
        self._time_base: Any = None
        self._codec = "vp8"
        self.last_decoded = 0  # frames the last seek decoded (for tests)
        with av.open(io.BytesIO(segment), mode="r") as container:
            if not container.streams.video:
                return
            stream = container.streams.video[0]
            self._codec = stream.codec_context.name or "vp8"
            self._time_base = stream.time_base
            for packet in container.demux(video=0):
                if packet.pts is None or packet.size == 0:
                    continue
                ms = int(packet.pts * packet.time_base * 1000)
                self.duration_ms = max(self.duration_ms, ms)
                self._packets.append((ms, bool(packet.is_keyframe), bytes(packet), packet.pts))

    @property
    def keyframes_ms(self) -> list[int]:
        return [ms for ms, key, _data, _pts in self._packets if key]

    def _decode_from(self, index: int) -> Iterator[tuple[int, VideoFrame]]:
        codec = av.CodecContext.create(self._codec, "r")
        for _ms, _key, data, pts in self._packets[index:]:
            packet = av.Packet(data)
            packet.pts, packet.time_base = pts, self._time_base
            for frame in codec.decode(packet):
                ms = int(frame.pts * self._time_base * 1000) if frame.pts is not None else 0
                yield ms, frame

    def frames(self, from_ms: int = 0) -> Iterator[tuple[int, Any]]:
        """RGB frames from the first at or after ``from_ms`` (the last one if past the end),
        decoding from the keyframe before it."""
        start = 0
        for index, (ms, key, _data, _pts) in enumerate(self._packets):
            if ms > from_ms:
                break
            if key:
                start = index
        self.last_decoded = 0
        decoded = self._decode_from(start)
        last: tuple[int, VideoFrame] | None = None
        for ms, frame in decoded:
            self.last_decoded += 1
            if ms >= from_ms:
                yield ms, frame.to_ndarray(format="rgb24")
                break
            last = (ms, frame)
        else:
            if last is not None:  # past the end: the last frame
                yield last[0], last[1].to_ndarray(format="rgb24")
            return
        for ms, frame in decoded:  # on with the same decoder
            yield ms, frame.to_ndarray(format="rgb24")

    def audio(self) -> tuple[int, Any]:
        """(sample rate, mono int16 samples) of the segment's sound, decoded from memory."""
        import numpy as np

        rate, chunks = 48_000, []
        with av.open(io.BytesIO(self._segment), mode="r") as container:
            if not container.streams.audio:
                return rate, np.zeros(0, np.int16)
            rate = container.streams.audio[0].rate or rate
            for frame in container.decode(audio=0):
                samples = frame.to_ndarray()
                chunks.append(samples.reshape(-1) if samples.ndim == 1 or samples.shape[0] == 1
                              else samples[0])
        return rate, (np.concatenate(chunks).astype(np.int16) if chunks
                      else np.zeros(0, np.int16))
