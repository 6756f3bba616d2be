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

import contextlib
import fractions
import io
import logging
import os
import queue
import struct
import threading
import time
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
from av import AudioFrame, VideoFrame

from app.core.errors import SafeConsultError
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


class SegmentUnreadable(SafeConsultError):
    """A recording segment that PyAV cannot demux or decode (damaged or truncated)."""

    user_message = "This part of the recording cannot be played: it is damaged or incomplete."


def _mono_s16(frame: AudioFrame) -> Any:
    """The first channel of a decoded audio frame as int16 samples."""
    import numpy as np

    samples = frame.to_ndarray()
    channels = max(1, len(frame.layout.channels))
    mono = samples[0] if frame.format.is_planar else samples.reshape(-1)[::channels]
    if mono.dtype.kind == "f":
        return np.clip(mono * 32767.0, -32768, 32767).astype(np.int16)
    if mono.dtype.itemsize > 2:  # s32: keep the top 16 bits
        return (mono >> (8 * (mono.dtype.itemsize - 2))).astype(np.int16)
    return mono.astype(np.int16, copy=True)


class SegmentReader:
    """Playback of one finished segment held in memory (no file): its video duration, its
    video frames as ``(ms, RGB array)`` decoded on demand, a keyframe index for seeking, and
    its sound as PCM decoded on demand from a position (:meth:`sound_from`).

    The segments are written live, without Matroska cues, so the reader makes its own index
    in one demux pass (no decoding): every video packet's time, whether it is a keyframe and
    its pts -- 17 bytes a packet in flat arrays, not the packets (an hour at 1 Mbit/s is
    ~450 MB of video packets; its index ~2 MB). A seek decodes from the last keyframe at or
    before the target (the recorder writes one every ``KEYFRAME_INTERVAL`` frames, 2 s; older
    segments at least every 128) instead of from the start: a position late in an hour's
    consult costs the same as one early in it. The packets are read from the segment bytes
    themselves, by two demuxers the reader keeps open for its life, both over the same
    bytes: one for the picture (:meth:`frames`), one for the sound (:meth:`sound_from`), so
    neither moves the other. libavformat indexes the packets it reads: the constructor's
    pass indexed one demuxer, a scan to the end (in C, ~50 ms for 10 min) the other, so
    both seek straight to a keyframe. A demuxer that cannot seek, or lands elsewhere than
    the keyframe, is replaced by a fresh one read from the start (the same packets, slower).

    One picture iterator at a time, as for the sound: calling :meth:`frames` again ends the
    iterator it gave before (one demuxer).

    A segment PyAV cannot read raises :class:`SegmentUnreadable` (from the constructor, or
    from the iterators where the damage is met)."""

    def __init__(self, segment: bytes) -> None:
        self._segment = segment
        self.duration_ms = 0
        # The video index, one entry per packet in demux order (no packet bytes).
        self._ms = array("q")
        self._key = array("b")
        self._pts = array("q")
        self._time_base: Any = None
        self._codec = "vp8"
        self.has_sound = False
        self._sound_origin: int | None = None  # first audio packet, in samples
        self.last_decoded = 0  # frames the last seek decoded (for tests)
        self.sound_skipped = 0  # samples the last sound_from decoded before its position
        self._sound_container: Any = None  # the sound's demuxer, kept for its index
        self._sound_turn = 0  # the latest sound_from; an older one stops
        self._video_container: Any = None  # the picture's demuxer, kept for its index
        self._video_turn = 0  # the latest frames(); an older one stops
        container = self._open()
        try:
            self.has_sound = bool(container.streams.audio)
            if not self.has_sound and not container.streams.video:
                raise SegmentUnreadable("no audio or video stream")
            if container.streams.video:
                stream = container.streams.video[0]
                self._codec = stream.codec_context.name or "vp8"
                self._time_base = stream.time_base
                for packet in container.demux(video=0):
                    if packet.pts is None or packet.size == 0:
                        continue
                    ms = int(packet.pts * packet.time_base * 1000)
                    self.duration_ms = max(self.duration_ms, ms)
                    self._ms.append(ms)
                    self._key.append(bool(packet.is_keyframe))
                    self._pts.append(packet.pts)
            if self.has_sound:
                # That pass read every block, so libavformat indexed the audio packets
                # too (bounded by its max_index_size, 1 MiB): seeking the sound with this
                # demuxer needs no scan from the start.
                self._sound_container, container = container, None
                if self._pts:
                    self._video_container = self._open()
                    self._index_video(self._video_container)
            elif self._pts:
                self._video_container, container = container, None
        except av.FFmpegError as exc:
            raise SegmentUnreadable(exc.__class__.__name__) from None
        finally:
            if container is not None:
                container.close()

    def _index_video(self, container: Any) -> None:
        """Have libavformat index a fresh demuxer's video keyframes: a seek past the last
        packet reads (in C, no packet reaches Python) to the end of the segment."""
        # Failing, a seek later scans as far as it needs, or reads from the start.
        with contextlib.suppress(av.FFmpegError):
            container.seek(max(self._pts) + 1, stream=container.streams.video[0],
                           backward=True, any_frame=False)

    @property
    def keyframes_ms(self) -> list[int]:
        return [ms for ms, key in zip(self._ms, self._key, strict=True) if key]

    def _video_packets(self, start: int, turn: int) -> Iterator[Any]:
        """The video packets from index entry ``start`` on, as the constructor's pass met
        them, while ``turn`` is the latest frames() (checked before each read): the picture's
        demuxer sought to that packet (a keyframe, or the first packet), else -- the seek
        failed or landed elsewhere -- a fresh demuxer read from the start."""
        if self._video_container is None:  # dropped after damage: a fresh one
            self._video_container = self._open()
            self._index_video(self._video_container)
        container = self._video_container
        stream = container.streams.video[0]
        target = self._pts[start]
        try:
            container.seek(target, stream=stream, backward=True, any_frame=False)
        except av.FFmpegError:
            landed = False  # cannot seek: from the start
        else:
            landed = None  # not known until the first packet at or after the target
        packets = self._demux_video(container, stream, turn)
        if landed is None:
            for packet in packets:
                if packet.pts is None or packet.size == 0 or packet.pts < target:
                    continue  # before the keyframe (the demuxer's index is coarser)
                if packet.pts == target:
                    yield packet
                    yield from self._valid(packets)
                    return
                break  # landed after it: from the start
            else:
                if turn != self._video_turn:
                    return
        if turn != self._video_turn:
            return
        container.close()
        container = self._video_container = self._open()
        stream = container.streams.video[0]
        skip = start
        for packet in self._valid(self._demux_video(container, stream, turn)):
            if skip:
                skip -= 1
                continue
            yield packet

    @staticmethod
    def _valid(packets: Iterator[Any]) -> Iterator[Any]:
        """The packets the index has an entry for (a pts, some data)."""
        for packet in packets:
            if packet.pts is not None and packet.size != 0:
                yield packet

    def _demux_video(self, container: Any, stream: Any, turn: int) -> Iterator[Any]:
        """The demuxer's video packets while ``turn`` is the latest frames(); damage raises
        SegmentUnreadable and drops the demuxer (its state is unknown)."""
        packets = container.demux(stream)
        try:
            while turn == self._video_turn:
                packet = next(packets, None)
                if packet is None:
                    return
                yield packet
        except av.FFmpegError as exc:
            if self._video_container is container:
                self._video_container = None
            container.close()
            raise SegmentUnreadable(exc.__class__.__name__) from None

    def _decode_from(self, start: int, turn: int) -> Iterator[tuple[int, VideoFrame]]:
        codec = av.CodecContext.create(self._codec, "r")
        for packet in self._video_packets(start, turn):
            try:
                frames = codec.decode(packet)
            except av.FFmpegError as exc:
                raise SegmentUnreadable(exc.__class__.__name__) from None
            for frame in frames:
                ms = int(frame.pts * self._time_base * 1000) if frame.pts is not None else 0
                yield ms, frame

    def frames(self, from_ms: int = 0) -> Iterator[tuple[int, Any]]:
        """RGB frames from the first at or after ``from_ms`` (the last one if past the end),
        decoding from the keyframe before it. One at a time: calling it again ends the
        iterator it gave before (one demuxer)."""
        self._video_turn += 1
        turn = self._video_turn
        self.last_decoded = 0
        if not self._pts:
            return
        start = 0
        for index, (ms, key) in enumerate(zip(self._ms, self._key, strict=True)):
            if ms > from_ms:
                break
            if key:
                start = index
        decoded = self._decode_from(start, turn)
        last: tuple[int, VideoFrame] | None = None
        for ms, frame in decoded:
            self.last_decoded += 1
            if ms >= from_ms:
                yield ms, frame.to_ndarray(format="rgb24")
                break
            last = (ms, frame)
        else:
            if last is not None and turn == self._video_turn:  # past the end: the last frame
                yield last[0], last[1].to_ndarray(format="rgb24")
            return
        for ms, frame in decoded:  # on with the same decoder
            yield ms, frame.to_ndarray(format="rgb24")

    def sound_from(self, from_ms: int = 0) -> Iterator[tuple[int, Any]]:
        """The segment's sound from ``from_ms`` on, as ``(sample rate, mono int16 PCM)``
        pieces (one per decoded audio frame), decoded lazily: only what the caller takes is
        in memory. Nothing for a segment without sound or a position past its end. One
        at a time: calling it again ends the iterator it gave before (one demuxer).

        Sample ``i`` of the sound plays at ``i / rate`` s of the recording (the first audio
        packet is time 0, as the recorder writes it). The demuxer seeks the audio stream to
        the last packet at or before the position (the segments have no cues: the index
        libavformat made during the constructor's pass serves); the samples before the
        position are dropped, so the first one yielded is sample ``from_ms * rate // 1000``
        -- exact where the packets' millisecond timestamps are (20 ms PCM frames), else
        within one millisecond. From there the samples follow one another as decoded:
        their count, not the rounded timestamps, keeps the place -- except where packets
        are missing (a damaged stretch the demuxer resynchronised past): silence fills the
        gap, so the sound after it stays in step with the picture."""
        import numpy as np

        from_ms = max(0, int(from_ms))
        self._sound_turn += 1
        turn = self._sound_turn
        self.sound_skipped = 0
        for back_ms in (0, 1_000, 10_000, None):  # None: from the very start
            container, stream, origin = self._sound_at(
                None if back_ms is None else from_ms - back_ms)
            if stream is None:
                return
            rate = stream.rate or 48_000
            target = from_ms * rate // 1000  # the first sample wanted
            position: int | None = None
            for frame in self._decode_audio(container, stream, turn):
                at = (round(frame.pts * frame.time_base * rate) - origin
                      if frame.pts is not None and frame.time_base is not None else None)
                if position is None:
                    position = at if at is not None and back_ms is not None else 0
                    if position > target:
                        break  # the demuxer landed after the position: further back
                pcm = _mono_s16(frame)
                if at is not None and at - position > rate // 100:
                    # Packets lost (a damaged stretch the demuxer skipped): silence in
                    # their place keeps the sound in step with the picture.
                    pcm = np.concatenate([np.zeros(at - position, np.int16), pcm])
                start, position = position, position + len(pcm)
                if position <= target:
                    self.sound_skipped += len(pcm)
                    continue
                if start < target:
                    self.sound_skipped += target - start
                    pcm = pcm[target - start:]
                yield rate, pcm
            else:
                return  # the end of the sound (or a newer sound_from took over)
        # Unreachable in practice: the decode from the start begins at sample 0.

    def _open(self) -> Any:
        try:
            return av.open(io.BytesIO(self._segment), mode="r")
        except av.FFmpegError as exc:
            raise SegmentUnreadable(exc.__class__.__name__) from None

    def _sound_at(self, at_ms: int | None) -> tuple[Any, Any, int]:
        """The sound's demuxer, its audio stream (None without sound) sought to the last
        packet at or before ``at_ms`` (the start when it is None or <= 0), and the first
        audio packet's time in samples (the sound's origin)."""
        if not self.has_sound:
            return None, None, 0
        if self._sound_container is None:  # dropped after damage: a fresh one
            self._sound_container = self._open()
        container = self._sound_container
        stream = container.streams.audio[0]
        rate = stream.rate or 48_000
        if self._sound_origin is None:
            self._sound_origin = 0
            with self._open() as first:
                for packet in self._demux(first, first.streams.audio[0]):
                    if packet.pts is not None:
                        self._sound_origin = round(packet.pts * packet.time_base * rate)
                        break
        try:
            container.seek(int(max(0, at_ms or 0) / 1000 / stream.time_base), stream=stream,
                           backward=True, any_frame=False)
        except av.FFmpegError:  # cannot seek (no index): read from the start
            container.close()
            container = self._sound_container = self._open()
            stream = container.streams.audio[0]
        return container, stream, self._sound_origin

    @staticmethod
    def _demux(container: Any, stream: Any) -> Iterator[Any]:
        try:
            yield from container.demux(stream)
        except av.FFmpegError as exc:
            raise SegmentUnreadable(exc.__class__.__name__) from None

    def _decode_audio(self, container: Any, stream: Any, turn: int) -> Iterator[AudioFrame]:
        """The frames from where the demuxer is, while ``turn`` is the latest sound_from:
        checked before each read, so an older iterator never takes a newer one's packet."""
        packets = self._demux(container, stream)
        try:
            while turn == self._sound_turn:
                packet = next(packets, None)
                if packet is None:
                    return
                try:
                    frames = packet.decode()
                except av.FFmpegError as exc:
                    raise SegmentUnreadable(exc.__class__.__name__) from None
                yield from frames
        except SegmentUnreadable:
            if self._sound_container is container:
                self._sound_container = None  # its state is unknown: a fresh one next time
            container.close()
            raise
