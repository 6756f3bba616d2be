"""Playback of a recording segment from memory: seeking through the reader's own keyframe
index (decoding at most one keyframe interval, wherever the position is, and the same pixels
as decoding from the start), and the sound decoded to PCM (the 440 Hz it was recorded from;
the sound from a position, memory, damage: test_recording_sound.py).
The audio *output* is an edge this build lacks; the decode path is what is tested."""

from __future__ import annotations

import io
import secrets

import av
import numpy as np
from av import AudioFrame

from app.crypto.files import new_file_key
from app.rtc.recorder import KEYFRAME_INTERVAL, SealedSpool, SegmentReader, _Segment
from tests.ui.call.test_recording_player import FPS, pattern

RATE = 48_000


def tone(index: int, samples: int = 960) -> AudioFrame:
    t = (np.arange(samples) + index * samples) / RATE
    pcm = (np.sin(2 * np.pi * 440 * t) * 12_000).astype(np.int16).reshape(1, -1)
    frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate = RATE
    return frame


def make_segment(tmp_path, frames: int, *, audio: bool = False) -> bytes:
    key, sid = new_file_key(), secrets.token_bytes(8)
    spool = SealedSpool(tmp_path / f"seg-{frames}.spool", key, sid)
    seg = _Segment(0.0, spool)
    audio_done = 0
    for i in range(frames):
        seg.add_video(pattern(i, 160, 120), i / FPS)  # small: encoding is the cost
        while audio and audio_done * 0.02 <= i / FPS:  # 20 ms of tone per audio frame
            seg.add_audio(tone(audio_done))
            audio_done += 1
    seg.finish()
    return b"".join(SealedSpool.read(spool.path, key, sid, spool.records))


def test_seeking_a_long_recording_decodes_from_the_keyframe_before(tmp_path):
    segment = make_segment(tmp_path, 10 * FPS)  # 10 s
    reader = SegmentReader(segment)
    assert 9_800 <= reader.duration_ms <= 10_000
    keys = reader.keyframes_ms
    assert keys[0] == 0 and len(keys) >= 5  # one every 2 s (KEYFRAME_INTERVAL)
    with av.open(io.BytesIO(segment)) as container:  # the reference: decoded from the start
        linear = {int(f.pts * f.time_base * 1000): f.to_ndarray(format="rgb24")
                  for f in container.decode(video=0)}
    for target in (0, 4_500, 8_000, 9_950):
        ms, rgb = next(reader.frames(target))
        assert target <= ms < target + 40 or (target > reader.duration_ms - 40)
        assert np.array_equal(rgb, linear[ms])  # the same pixels as a decode from the start
        assert reader.last_decoded <= KEYFRAME_INTERVAL + 1  # one keyframe interval at most
    assert reader.last_decoded < 10 * FPS / 2
    ms, _ = next(reader.frames(10 ** 9))  # past the end: the last frame
    assert ms == max(linear)
    # Playing on from a seek continues in order.
    got = [ms for _, (ms, _rgb) in zip(range(5), reader.frames(8_000), strict=False)]
    assert got == sorted(got) and len(set(got)) == 5 and got[0] >= 8_000


def whole_sound(reader: SegmentReader, from_ms: int = 0) -> tuple[int, np.ndarray]:
    rates, pieces = {RATE}, []
    for rate, pcm in reader.sound_from(from_ms):
        rates.add(rate)
        pieces.append(pcm)
    assert len(rates) == 1  # one rate throughout
    return rates.pop(), (np.concatenate(pieces) if pieces else np.zeros(0, np.int16))


def test_the_sound_is_decoded_from_memory(tmp_path):
    reader = SegmentReader(make_segment(tmp_path, 2 * FPS, audio=True))
    rate, pcm = whole_sound(reader)
    assert rate == RATE and pcm.dtype == np.int16
    assert 1.8 * RATE <= len(pcm) <= 2.2 * RATE
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    peak_hz = np.argmax(spectrum) * rate / len(pcm)
    assert abs(peak_hz - 440) < 5
    silent = whole_sound(SegmentReader(make_segment(tmp_path, 10)))[1]
    assert not np.any(silent)  # no sound recorded: nothing (not noise) decoded
