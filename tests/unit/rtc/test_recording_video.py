"""A recording's picture read from the segment itself, not from a copy of it
(SegmentReader.frames): the reader keeps an index of the video packets (time, keyframe,
pts), not their bytes, and decodes from its own demuxer sought to the keyframe before the
position -- the same frames, at the same times, as PyAV decoding the whole segment from the
start; memory that is a small fraction of the segment's video.

The segment is written by the real recorder (``_Segment``: VP8 at 1 Mbit/s + PCM Matroska,
no cues) from noise pictures -- so that the video bytes are what a camera's would be, not a
few bytes a still picture compresses to -- and read back into memory."""

from __future__ import annotations

import hashlib
import io
import secrets
import tracemalloc

import av
import numpy as np
import pytest
from av import VideoFrame

from app.crypto.files import new_file_key
from app.rtc.recorder import KEYFRAME_INTERVAL, SealedSpool, SegmentReader, _Segment
from tests.unit.rtc.test_recording_sound import tone_frame

FPS = 30
SECONDS = 30
RATE = 48_000


def noise_segment(tmp_path) -> bytes:
    rng = np.random.default_rng(3)
    pictures = [VideoFrame.from_ndarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8),
                                        format="rgb24") for _ in range(16)]
    key, sid = new_file_key(), secrets.token_bytes(8)
    spool = SealedSpool(tmp_path / "noise.spool", key, sid)
    seg = _Segment(0.0, spool)
    sound = 0
    for i in range(SECONDS * FPS):
        seg.add_video(pictures[i % len(pictures)], i / FPS)
        while sound * 0.02 <= i / FPS:  # 20 ms of a tone per audio frame
            seg.add_audio(tone_frame(sound, 440))
            sound += 1
    seg.finish()
    return b"".join(SealedSpool.read(spool.path, key, sid, spool.records))


@pytest.fixture(scope="module")
def segment(tmp_path_factory) -> bytes:
    return noise_segment(tmp_path_factory.mktemp("video"))


def digest(rgb: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).digest()


@pytest.fixture(scope="module")
def linear(segment) -> list[tuple[int, bytes]]:
    """The reference: every frame PyAV decodes from the start, as (ms, pixels' digest)."""
    with av.open(io.BytesIO(segment)) as container:
        return [(int(f.pts * f.time_base * 1000), digest(f.to_ndarray(format="rgb24")))
                for f in container.decode(video=0)]


def video_bytes(segment: bytes) -> int:
    with av.open(io.BytesIO(segment)) as container:
        return sum(packet.size for packet in container.demux(video=0))


def from_position(linear: list[tuple[int, bytes]], ms: int, count: int) -> list:
    """What a player must show from ``ms``: the frames at or after it (the last frame if
    ``ms`` is past the end), ``count`` of them."""
    at = next((i for i, (t, _d) in enumerate(linear) if t >= ms), len(linear) - 1)
    return linear[at:at + count]


def taken(frames, count: int) -> list[tuple[int, bytes]]:
    return [(ms, digest(rgb)) for _, (ms, rgb) in zip(range(count), frames, strict=False)]


def test_frames_from_positions_are_the_decode_from_the_start(segment, linear):
    reader = SegmentReader(segment)
    keys = reader.keyframes_ms
    assert keys[0] == 0 and len(keys) >= SECONDS // 2 - 1
    assert linear[-1][0] - 40 <= reader.duration_ms <= linear[-1][0]
    # Several positions -- the start, mid-interval, on a keyframe, late, past the end --
    # each played on across the next keyframe: the same frames at the same ms, pixel for
    # pixel, decoding at most one keyframe interval to reach the position.
    for ms in (0, 7_345, keys[5], keys[5] - 1, 26_789, 29_950, 10 ** 9):
        count = KEYFRAME_INTERVAL + 10
        assert taken(reader.frames(ms), count) == from_position(linear, ms, count), ms
        if ms < reader.duration_ms:
            assert reader.last_decoded <= KEYFRAME_INTERVAL + 1
    # To the end from late on: every frame, none more.
    assert taken(reader.frames(27_000), 10 ** 6) == from_position(linear, 27_000, 10 ** 6)

    # The sound has a demuxer of its own: reading it between the picture's frames moves
    # neither.
    with av.open(io.BytesIO(segment)) as container:
        whole = np.concatenate([f.to_ndarray().reshape(-1)
                                for f in container.decode(audio=0)])
    picture, sound = reader.frames(5_000), reader.sound_from(20_000)
    got, pcm = taken(picture, 3), [next(sound)[1]]
    got += taken(picture, 3)
    pcm.append(next(sound)[1])
    assert got == from_position(linear, 5_000, 6)
    pcm = np.concatenate(pcm)
    assert np.array_equal(pcm, whole[20 * RATE:20 * RATE + len(pcm)])

    # One picture iterator at a time (one demuxer): a new position ends the old iterator,
    # which takes none of the new one's packets.
    old = reader.frames(3_000)
    assert taken(old, 2) == from_position(linear, 3_000, 2)
    new = reader.frames(21_000)
    first = taken(new, 1)
    assert list(old) == []
    assert first + taken(new, 40) == from_position(linear, 21_000, 41)


def test_a_demuxer_that_cannot_seek_reads_from_the_start(segment, linear):
    reader = SegmentReader(segment)

    class Unseekable:  # the picture's demuxer, whose seeks fail
        def __init__(self, inner) -> None:
            self.inner, self.closed = inner, False

        def seek(self, *args, **kwargs):
            raise av.error.PermissionError(1, "no seeking")

        def close(self) -> None:
            self.closed = True
            self.inner.close()

        def __getattr__(self, name):
            return getattr(self.inner, name)

    stuck = reader._video_container = Unseekable(reader._open())
    for ms in (12_500, 4_000):
        assert taken(reader.frames(ms), 5) == from_position(linear, ms, 5)
    assert stuck.closed  # replaced by a fresh demuxer read from the start


def test_the_reader_keeps_no_copy_of_the_video(segment, linear):
    size = video_bytes(segment)
    assert size > 3 * 2**20  # ~1 Mbit/s for 30 s: what the old per-packet copies held
    tracemalloc.start()
    try:
        reader = SegmentReader(segment)
        kept, built_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got = taken(reader.frames(25_000), 10)
        _now, seek_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == from_position(linear, 25_000, 10)
    print(f"\nvideo {size / 2**20:.1f} MiB: reader kept {kept / 1024:.0f} KiB "
          f"(construction peak {built_peak / 1024:.0f} KiB); a seek and 10 frames: "
          f"peak {seek_peak / 1024:.0f} KiB")
    # The tracer sees the whole process (in the full suite, other tests' leftovers too:
    # 247 KiB kept was seen there, 21 KiB alone); the old per-packet copies kept more than
    # the video itself, so a quarter of it still tells the two apart.
    assert kept < size / 4 and built_peak < size / 2
    assert seek_peak < size / 4
