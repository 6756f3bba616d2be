"""Call benchmark, sustained frame rate and CPU (docs/performance.md, "Calls"): a 2-party call
at 640x480 and at 1280x720, 30 fps, against stock aiortc measured in the same run.

Ours: two signed-in workstations in one room of the real server over TLS, signed SDP through
POST /signal and the push socket, CallsService on both ends (auto-accept), loopback media,
video and the tone both ways. Reference: two plain RTCPeerConnections in one process handing
SDP over directly, each sending the same synthetic video track and the tone. After a warm-up
each side's decoded video frames are counted once a second for WINDOW_S: sustained fps (frames
over the window) and the 5th percentile of the per-second rates; CPU is the process's CPU time
(time.process_time: every thread -- both ends' encoders and decoders, the event loop, and for
ours the in-process reference server) over the window, as % of one core. Ours runs twice per
round: as shipped (PromptJitterBuffer) and with aiortc's own receive path (prompt_video off);
rounds interleave the three calls in rotated order, the machine being shared. Only
correctness is asserted; the figures and ratios are printed and recorded.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time
from dataclasses import dataclass

import pytest
from aiortc import RTCPeerConnection
from av import VideoFrame

from app.rtc.call import CallOptions
from app.rtc.tracks import SyntheticVideoTrack, ToneAudioTrack, read_frame_stamp
from tests.integration.test_calls import consult, flowing, link, new_peer, wait_for

pytestmark = pytest.mark.bench

SIZES = ((640, 480), (1280, 720))
WARMUP_S = 2.0
WINDOW_S = 10.0
ROUNDS = 3


class SizedVideoTrack(SyntheticVideoTrack):
    """The synthetic camera (stamp and moving bar) scaled to ``width`` x ``height``; the stamp
    scales with the image, so ``read_frame_stamp`` still reads it."""

    def __init__(self, tag: int, width: int, height: int) -> None:
        super().__init__(tag)
        self.width, self.height = width, height

    async def recv(self) -> VideoFrame:
        small = await super().recv()
        frame = small.reformat(width=self.width, height=self.height, format="yuv420p")
        frame.pts, frame.time_base = small.pts, small.time_base
        return frame


@dataclass
class Window:
    fps: list[float]  # sustained fps per direction
    per_second: list[float]  # every direction's per-second rates
    cpu_pct: float  # process CPU time over the window, % of one core
    stamped: int  # frames whose stamp was read back (correctness)

    @property
    def sustained(self) -> float:
        return statistics.mean(self.fps)

    @property
    def p5(self) -> float:
        ordered = sorted(self.per_second)
        return ordered[int(0.05 * (len(ordered) - 1))]


async def measure(counters) -> Window:
    """Sample ``counters()`` (decoded frames per direction) once a second over WINDOW_S."""
    samples: list[tuple[float, list[int]]] = []
    cpu0, t0 = time.process_time(), time.monotonic()
    samples.append((t0, counters()))
    while time.monotonic() - t0 < WINDOW_S:
        await asyncio.sleep(1.0)
        samples.append((time.monotonic(), counters()))
    cpu = (time.process_time() - cpu0) / (samples[-1][0] - t0) * 100
    per_second: list[float] = []
    for (ta, ca), (tb, cb) in itertools.pairwise(samples):
        per_second.extend((b - a) / (tb - ta) for a, b in zip(ca, cb, strict=True))
    span = samples[-1][0] - samples[0][0]
    fps = [(b - a) / span for a, b in zip(samples[0][1], samples[-1][1], strict=True)]
    return Window(fps, per_second, cpu, 0)


async def reference_call(width: int, height: int) -> Window:
    """Stock aiortc: two peer connections in one process, video and tone both ways."""
    a, b = RTCPeerConnection(), RTCPeerConnection()
    counts = {a: 0, b: 0}
    stamped = {a: 0, b: 0}
    done = asyncio.Event()
    tasks: list[asyncio.Task] = []
    tracks = []

    for pc, tag in ((a, 1), (b, 2)):
        def on_track(track, pc=pc) -> None:
            async def consume() -> None:
                while not done.is_set():
                    frame = await track.recv()
                    if track.kind == "video":
                        counts[pc] += 1
                        if read_frame_stamp(frame) is not None:  # as our receiver does
                            stamped[pc] += 1
            tasks.append(asyncio.get_running_loop().create_task(consume()))
        pc.on("track", on_track)
        video, audio = SizedVideoTrack(tag, width, height), ToneAudioTrack()
        tracks += [video, audio]
        pc.addTrack(video)
        pc.addTrack(audio)

    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    try:
        await wait_for(lambda: counts[a] >= 5 and counts[b] >= 5, 15)
        await asyncio.sleep(WARMUP_S)
        window = await measure(lambda: [counts[b], counts[a]])
        window.stamped = min(stamped.values())
        return window
    finally:
        done.set()
        for track in tracks:
            track.stop()
        await a.close()
        await b.close()
        for task in tasks:
            task.cancel()


async def our_call(server, tmp_path, width: int, height: int, name: str,
                   prompt_video: bool = True) -> tuple[Window, str]:
    options = {"call_options": CallOptions(video_tag=1, prompt_video=prompt_video)}
    alice = await new_peer(server, tmp_path, f"a{name}", use_turn=False,
                           video=lambda: SizedVideoTrack(1, width, height), **options)
    options = {"call_options": CallOptions(video_tag=2, prompt_video=prompt_video)}
    bob = await new_peer(server, tmp_path, f"b{name}", use_turn=False,
                         video=lambda: SizedVideoTrack(2, width, height), **options)
    try:
        room_id = await consult(alice, bob)
        call = await alice.calls.place_call(room_id)
        await wait_for(lambda: flowing(alice, bob, 5), 15)
        await asyncio.sleep(WARMUP_S)
        ab, ba = link(alice, bob), link(bob, alice)
        window = await measure(lambda: [ab.stats.video_frames, ba.stats.video_frames])
        window.stamped = min(ab.stats.stamped_frames, ba.stats.stamped_frames)
        route = ab.route() or "?"
        await alice.calls.hangup(call.call_id)
        return window, route
    finally:
        await alice.close()
        await bob.close()


def describe(windows: list[Window]) -> str:
    return (f"sustained {'/'.join(f'{w.sustained:.1f}' for w in windows)} fps, p5 of "
            f"per-second fps {'/'.join(f'{w.p5:.0f}' for w in windows)}, CPU "
            f"{'/'.join(f'{w.cpu_pct:.0f}' for w in windows)}% of one core; stamps read "
            f"{'/'.join(str(w.stamped) for w in windows)}")


def median(windows: list[Window], what: str) -> float:
    return statistics.median(getattr(w, what) for w in windows)


@pytest.mark.timeout(600)  # 2 sizes x 3 rounds x 3 calls of ~15 s each
async def test_call_fps_and_cpu(open_server, tmp_path):
    results = []
    for width, height in SIZES:
        load = os.getloadavg()[0]
        refs: list[Window] = []
        ours: list[Window] = []
        plain: list[Window] = []  # ours with aiortc's own receive path (prompt_video off)
        routes: set[str] = set()
        for round_ in range(ROUNDS):  # interleaved, order rotated: the machine's load drifts
            order = ["ref", "ours", "plain"]
            for which in order[round_ % 3:] + order[:round_ % 3]:
                if which == "ref":
                    refs.append(await reference_call(width, height))
                    continue
                window, route = await our_call(open_server, tmp_path, width, height,
                                               f"{width}{which}{round_}",
                                               prompt_video=which == "ours")
                (ours if which == "ours" else plain).append(window)
                routes.add(route)
        results.append((width, height, load, os.getloadavg()[0], refs, ours, plain, routes))

    print("\n-- calls fps/CPU benchmark (2 parties, 30 fps source, video both ways) --")
    for width, height, load, load_after, refs, ours, plain, routes in results:
        print(f"{width}x{height} (load average {load:.1f} -> {load_after:.1f}), "
              f"{ROUNDS} interleaved rounds of {WINDOW_S:.0f} s:")
        print(f"  stock aiortc:             {describe(refs)}")
        print(f"  ours {sorted(routes)}:       {describe(ours)}")
        print(f"  ours, stock receive path: {describe(plain)}")
        for name, windows in (("ours", ours), ("ours, stock receive path", plain)):
            print(f"  {name} / stock (medians): fps "
                  f"{median(windows, 'sustained') / median(refs, 'sustained'):.2f}x, "
                  f"p5 {median(windows, 'p5'):.0f} vs {median(refs, 'p5'):.0f}, CPU "
                  f"{median(windows, 'cpu_pct') / median(refs, 'cpu_pct'):.2f}x")
    for *_, refs, ours, plain, routes in results:
        assert routes == {"direct"}
        # stamps read back at the receivers: real frames flowed
        assert all(w.stamped > 0 and w.sustained > 0 for w in (*refs, *ours, *plain))
