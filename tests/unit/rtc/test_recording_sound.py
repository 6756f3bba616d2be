"""A recording's sound decoded from a position, never whole (SegmentReader.sound_from): the
same samples as a whole decode from that position, memory that does not grow with the
recording's length, and damaged segments refused with SegmentUnreadable (no other error).

The segments are written by the real recorder (``_Segment``: VP8 + PCM Matroska, no cues)
into a sealed spool in the test's tmp dir and read back into memory; the reference is PyAV
decoding the whole sound from the start, on its own."""

from __future__ import annotations

import io
import secrets
import tracemalloc

import av
import numpy as np
import pytest
from av import AudioFrame

from app.crypto.files import new_file_key
from app.rtc.recorder import SealedSpool, SegmentReader, SegmentUnreadable, _Segment
from tests.ui.call.test_recording_player import pattern

RATE = 48_000
FRAME = 960  # 20 ms: what the call's audio frames hold


def stepped_hz(second: int) -> int:
    """The tone's pitch tells the time: 400 Hz, +100 Hz every 20 s."""
    return 400 + 100 * (second // 20)


def tone_frame(index: int, hz: float) -> AudioFrame:
    """The ``index``-th 20 ms mono s16 frame of a sine at ``hz`` (phase continuous)."""
    t = (np.arange(FRAME) + index * FRAME) / RATE
    pcm = (np.sin(2 * np.pi * hz * t) * 12_000).astype(np.int16).reshape(1, -1)
    frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate = RATE
    return frame


def tone_segment(tmp_path, seconds: int, *, video_fps: int = 1, name: str = "tone") -> bytes:
    """``seconds`` of a stepped tone (stepped_hz) with a small picture ``video_fps`` times a
    second, made by the recorder's own segment writer."""
    key, sid = new_file_key(), secrets.token_bytes(8)
    spool = SealedSpool(tmp_path / f"{name}-{seconds}.spool", key, sid)
    seg = _Segment(0.0, spool)
    done = 0
    per_video = 50 // video_fps
    for i in range(seconds * video_fps):
        seg.add_video(pattern(i, 64, 48), i / video_fps)
        for _ in range(per_video):
            seg.add_audio(tone_frame(done, stepped_hz(done * FRAME // RATE)))
            done += 1
    seg.finish()
    return b"".join(SealedSpool.read(spool.path, key, sid, spool.records))


def whole_decode(segment: bytes) -> np.ndarray:
    """The reference: PyAV decoding all the sound from the start."""
    with av.open(io.BytesIO(segment)) as container:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])


def taken(reader: SegmentReader, from_ms: int, samples: int | None = None) -> np.ndarray:
    out, have = [], 0
    for rate, pcm in reader.sound_from(from_ms):
        assert rate == RATE and pcm.dtype == np.int16 and pcm.ndim == 1
        out.append(pcm)
        have += len(pcm)
        if samples is not None and have >= samples:
            break
    got = np.concatenate(out) if out else np.zeros(0, np.int16)
    return got if samples is None else got[:samples]


@pytest.fixture(scope="module")
def long_segment(tmp_path_factory) -> bytes:
    return tone_segment(tmp_path_factory.mktemp("sound"), 300)  # 5 min: ~29 MB of PCM


def test_the_sound_from_a_position_is_the_whole_decode_from_there(tmp_path):
    segment = tone_segment(tmp_path, 40)
    whole = whole_decode(segment)
    assert len(whole) == 40 * RATE
    reader = SegmentReader(segment)
    assert reader.has_sound
    for ms in (0, 7, 13_333, 20_000, 25_013, 39_990):
        start = ms * RATE // 1000
        got = taken(reader, ms, RATE // 2)
        assert np.array_equal(got, whole[start:start + RATE // 2]), ms
        assert reader.sound_skipped < FRAME  # sought: at most one frame decoded and dropped
    # On to the end: every remaining sample, none more.
    assert np.array_equal(taken(reader, 31_000), whole[31 * RATE:])
    # Past the end: nothing, and no error.
    assert len(taken(reader, 40_000)) == 0 and len(taken(reader, 10 ** 9)) == 0


def test_a_new_position_ends_the_iterator_from_the_old_one(tmp_path):
    """One demuxer serves the sound (its index makes seeks cheap): a new sound_from takes
    it over, and the old iterator ends instead of stealing the new one's packets."""
    segment = tone_segment(tmp_path, 20)
    whole = whole_decode(segment)
    reader = SegmentReader(segment)
    old = reader.sound_from(2_000)
    first = next(old)[1]
    assert np.array_equal(first, whole[2 * RATE:2 * RATE + len(first)])
    new = reader.sound_from(12_000)
    _rate, piece = next(new)
    assert list(old) == []  # ended: it read nothing more
    rest = np.concatenate([piece] + [pcm for _rate, pcm in new])
    assert np.array_equal(rest, whole[12 * RATE:])  # every sample, none taken by the old


def test_a_short_segment_without_an_index_still_starts_at_the_position(tmp_path):
    """A few seconds in one Matroska cluster, the picture ten times a second: from
    wherever the demuxer lands, the samples before the position are dropped."""
    segment = tone_segment(tmp_path, 3, video_fps=10)
    whole = whole_decode(segment)
    reader = SegmentReader(segment)
    for ms in (0, 1_500, 2_980):
        start = ms * RATE // 1000
        assert np.array_equal(taken(reader, ms), whole[start:]), ms


def test_memory_stays_flat_whatever_the_recording_length(long_segment):
    reader = SegmentReader(long_segment)
    whole_bytes = 300 * RATE * 2
    tracemalloc.start()
    try:
        heard = 0
        for _rate, pcm in reader.sound_from(60_000):  # 4 minutes of it, piece by piece
            heard += len(pcm)
        _now, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        far = taken(reader, 290_000, RATE)  # a seek far in: the position's second only
        _now, far_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        reference = whole_decode(long_segment)  # what decoding it whole costs, same tracer
        _now, whole_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert heard == 240 * RATE
    assert np.array_equal(far, reference[290 * RATE:291 * RATE])
    print(f"\nsound_from(60 s) to the end: peak {peak / 1024:.0f} KiB; "
          f"sound_from(290 s), 1 s: {far_peak / 1024:.0f} KiB; "
          f"whole decode: {whole_peak / 2**20:.1f} MiB (PCM {whole_bytes / 2**20:.1f} MiB)")
    assert whole_peak >= whole_bytes  # the tracer sees decoded samples: the test can fail
    assert peak < 1 * 2**20 and peak < whole_bytes / 20
    assert far_peak < 1 * 2**20


def test_a_seek_far_into_a_long_recording_does_not_decode_up_to_it(long_segment):
    reader = SegmentReader(long_segment)
    got = taken(reader, 287_500, RATE // 10)
    assert reader.sound_skipped < FRAME
    spectrum = np.abs(np.fft.rfft(got.astype(float)))
    assert abs(np.argmax(spectrum) * RATE / len(got) - stepped_hz(287)) < 15


def silent_video(frames: int, fps: int) -> bytes:
    """A Matroska segment with a VP8 test pattern and no sound track at all."""
    with av.open(buffer := io.BytesIO(), mode="w", format="matroska") as container:
        stream = container.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            frame = pattern(i, 64, 48).reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def test_a_segment_without_sound_gives_none(tmp_path):
    reader = SegmentReader(silent_video(10, 10))
    assert not reader.has_sound and reader.duration_ms >= 800
    assert list(reader.sound_from(0)) == [] and list(reader.sound_from(500)) == []


def test_damaged_segments_are_refused_clearly(tmp_path):
    segment = tone_segment(tmp_path, 20)
    whole = whole_decode(segment)
    with pytest.raises(SegmentUnreadable) as refused:
        SegmentReader(secrets.token_bytes(4096))  # not Matroska at all
    assert "damaged or incomplete" in refused.value.user_message
    with pytest.raises(SegmentUnreadable):
        SegmentReader(b"")

    # Cut short: what is there plays, the same samples; the rest is missing, no error.
    cut = SegmentReader(segment[:len(segment) // 2])
    head = taken(cut, 2_000)
    assert 0 < len(head) < len(whole) - 2 * RATE
    assert np.array_equal(head, whole[2 * RATE:2 * RATE + len(head)])
    assert len(taken(cut, 19_000)) == 0  # past what survived: nothing

    # Bytes overwritten in the middle (the demuxer skips to the next good block): the sound
    # keeps its length and place -- silence where packets were lost -- so what follows the
    # damage is heard at its own time, in step with the picture; nothing else is raised.
    rng = np.random.default_rng(7)
    for at in (len(segment) // 3, len(segment) // 2, 2 * len(segment) // 3):
        damaged = bytearray(segment)
        damaged[at:at + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
        reader = SegmentReader(bytes(damaged))
        got = taken(reader, 0)
        assert len(got) == len(whole)
        assert np.array_equal(got[-3 * RATE:], whole[-3 * RATE:])  # after the damage
        assert np.mean(got == whole) > 0.95
        assert np.array_equal(taken(reader, 17_000), whole[17 * RATE:])
        assert sum(1 for _ in reader.frames(0)) >= 18  # the picture plays past it too
    # The header damaged: no stream left to play -- refused, not an empty player.
    damaged = bytearray(segment)
    damaged[100:4196] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(SegmentUnreadable):
        SegmentReader(bytes(damaged))
