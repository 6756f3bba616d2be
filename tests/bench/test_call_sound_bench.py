"""Sound output (docs/calls.md, "Sound output"): the cost of one 10 ms output block in
PortAudio's callback thread, as a ratio to the work no player can avoid, measured in the same
run; and how much sound waits at the speaker in a real aiortc call (the player's added
latency).

* *mix*: ``AudioPlayer._callback`` for a 44.1 kHz device with three remote sources, each fed
  a 20 ms 48 kHz stereo frame every other block (as aiortc decodes Opus): inbox, resampling,
  jitter buffer, mix, clip, write. Reference: the same three frames resampled with
  ``av.AudioResampler`` and summed with numpy, nothing else.
* *buffered*: ``buffered_ms`` of the remote source at our speaker, sampled every 50 ms for 3 s
  of a two-party call through the in-memory wire (real aiortc, real Opus), after 1 s.

Rounds alternate measure and reference; medians are compared.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import numpy as np
import pytest
from av import AudioResampler

from app.rtc import playback
from tests.unit.rtc.conftest import devices, wire  # noqa: F401 -- fixtures
from tests.unit.rtc.test_playback import FakeOutputStream, sine_frames

pytestmark = pytest.mark.bench


class ManualStream:
    """An output stream that never calls back on its own: the bench drives the callback."""

    def __init__(self, **kw) -> None:
        self.callback = kw["callback"]

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


async def test_mix_cost_per_block_and_buffered_sound(devices, wire):  # noqa: F811
    frames = [list(sine_frames(hz, 2.0)) for hz in (440, 700, 1200)]
    rounds, blocks = 7, 200
    ours, ref = [], []
    out = np.zeros((441, 1), np.int16)
    for _ in range(rounds):
        player = playback.AudioPlayer(None, rate=44_100, stream_factory=ManualStream)
        started = time.perf_counter()
        for i in range(blocks):
            if i % 2 == 0:
                for s, source in enumerate(frames):
                    player.push(s, source[i // 2])
            player._callback(out, 441, None, None)
        ours.append((time.perf_counter() - started) / blocks)
        player.close()
        resamplers = [AudioResampler(format="s16", layout="mono", rate=44_100) for _ in frames]
        started = time.perf_counter()
        for i in range(blocks):
            if i % 2 == 0:
                mix = np.zeros(882, np.int32)
                for resampler, source in zip(resamplers, frames, strict=True):
                    for f in resampler.resample(source[i // 2]):
                        pcm = f.to_ndarray().reshape(-1)
                        mix[:pcm.size] += pcm
                np.clip(mix, -32768, 32767).astype(np.int16)
        ref.append((time.perf_counter() - started) / blocks)
    ours_us, ref_us = statistics.median(ours) * 1e6, statistics.median(ref) * 1e6
    print(f"\nmix per 10 ms block, 3 sources: ours {ours_us:.0f} us median "
          f"({min(ours) * 1e6:.0f}-{max(ours) * 1e6:.0f}), reference {ref_us:.0f} us "
          f"({min(ref) * 1e6:.0f}-{max(ref) * 1e6:.0f}), ratio {ours_us / ref_us:.2f}x; "
          f"{ours_us / 100:.1f}% of the block's 10 ms")

    async def call() -> list[float]:
        alice, bob = devices[:2]
        ca, cb = wire.call_for(alice), wire.call_for(bob)
        player = playback.open_speaker("default", stream_factory=FakeOutputStream, rate=44_100)
        cb.taps.append(playback.audio_tap(player))
        seen: list[float] = []
        try:
            await ca.connect(bob.party, offerer=True)
            deadline = time.monotonic() + 20
            while player.played < 44_100 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            for _ in range(60):
                seen.append(player.buffered_ms(alice.party))
                await asyncio.sleep(0.05)
            print(f"dropped {player.dropped} samples, underruns {player.underruns}")
        finally:
            player.close()
            await ca.hangup()
            await cb.hangup()
        return seen

    seen = await call()
    print(f"buffered at the speaker in a call: median {statistics.median(seen):.0f} ms, "
          f"max {max(seen):.0f} ms (prebuffer 40, bound 160)")
    assert max(seen) <= 160
