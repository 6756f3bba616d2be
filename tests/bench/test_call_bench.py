"""Call benchmark (docs/performance.md, "Calls"): setup time to the first remote frame and
capture -> display latency, against stock aiortc measured in the same run.

Ours: two signed-in workstations in one room of the real server over TLS, signed SDP through
POST /signal and the push socket, CallsService on both ends (auto-accept), loopback media;
then the same relay-only through a real coturn. Reference: two plain RTCPeerConnections in
one process exchanging SDP directly (no server, no signing), with the same synthetic track.
Latency is read from the capture time stamped into each frame (app.rtc.tracks), decoded at
the receiver. Only correctness is asserted; the figures are printed and recorded.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
from aiortc import RTCPeerConnection

from app.rtc.tracks import SyntheticVideoTrack, now_ms, read_frame_stamp
from tests.integration.test_calls import (  # the same real fixtures as the tests
    consult,
    coturn,  # noqa: F401
    flowing,
    link,
    new_peer,
    turn_server,  # noqa: F401
    wait_for,
)

pytestmark = pytest.mark.bench

SETUP_RUNS = 5
STREAM_S = 6.0
WARMUP_S = 1.0


async def reference_call() -> tuple[float, list[int]]:
    """Stock aiortc loopback: seconds to the first frame, and latencies (ms) after warm-up."""
    a, b = RTCPeerConnection(), RTCPeerConnection()
    first: list[float] = []
    latencies: list[int] = []
    done = asyncio.Event()
    t0 = time.monotonic()

    @b.on("track")
    def on_track(track) -> None:
        async def consume() -> None:
            while not done.is_set():
                frame = await track.recv()
                now = time.monotonic()
                if not first:
                    first.append(now - t0)
                stamp = read_frame_stamp(frame)
                if stamp is not None and now - t0 - first[0] > WARMUP_S:
                    latencies.append(now_ms() - stamp.time_ms)
        asyncio.get_running_loop().create_task(consume())

    track = SyntheticVideoTrack(1)
    a.addTrack(track)
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    await wait_for(lambda: bool(first), 10)
    await asyncio.sleep(STREAM_S)
    done.set()
    track.stop()
    await a.close()
    await b.close()
    return first[0], latencies


async def our_call(server, tmp_path, tag: str, **options) -> tuple[list[float], list[int], str]:
    alice = await new_peer(server, tmp_path, f"a{tag}", **options)
    bob = await new_peer(server, tmp_path, f"b{tag}", **options)
    setups: list[float] = []
    try:
        room_id = await consult(alice, bob)
        for _ in range(SETUP_RUNS):
            t0 = time.monotonic()
            call = await alice.calls.place_call(room_id)
            await wait_for(lambda: link(alice, bob) is not None
                           and link(alice, bob).stats.first_frame_at is not None
                           and link(bob, alice) is not None
                           and link(bob, alice).stats.first_frame_at is not None, 15)
            ab, ba = link(alice, bob), link(bob, alice)
            setups.append(max(ab.stats.first_frame_at, ba.stats.first_frame_at) - t0)
            last = call
            if len(setups) < SETUP_RUNS:
                await alice.calls.hangup(call.call_id)
                await wait_for(lambda ba=ba: ba.state.value == "closed", 5)
                await bob.calls.hangup(call.call_id)
        await wait_for(lambda: flowing(alice, bob, 5), 10)
        ab = link(alice, bob)
        skip = ab.stats.stamped_frames + int(WARMUP_S * 30)
        await asyncio.sleep(STREAM_S)
        route = ab.route() or "?"
        latencies = ab.stats.latencies_ms[skip:]
        await alice.calls.hangup(last.call_id)
        return setups, latencies, route
    finally:
        await alice.close()
        await bob.close()


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def test_call_setup_and_latency(open_server, turn_server, tmp_path):  # noqa: F811
    ref_setup, ref_lat = await reference_call()
    loop_setups, loop_lat, loop_route = await our_call(open_server, tmp_path, "loop",
                                                       use_turn=False)
    turn_setups, turn_lat, turn_route = await our_call(turn_server, tmp_path, "turn",
                                                       relay_only=True)
    ref2_setup, ref2_lat = await reference_call()  # again, to see the machine's drift
    ref_lat_all = ref_lat + ref2_lat
    ref_med = statistics.median(ref_lat_all)

    print("\n-- calls benchmark --")
    print(f"reference aiortc loopback: first frame {ref_setup * 1000:.0f} / "
          f"{ref2_setup * 1000:.0f} ms; latency median {ref_med:.0f} ms, "
          f"p95 {pct(ref_lat_all, 0.95):.0f} ms ({len(ref_lat_all)} frames)")
    for name, setups, lat, route in (("loopback via server", loop_setups, loop_lat, loop_route),
                                     ("TURN relay-only", turn_setups, turn_lat, turn_route)):
        med = statistics.median(lat)
        print(f"{name} [{route}]: setup to first remote frame (both ends) median "
              f"{statistics.median(setups) * 1000:.0f} ms, min {min(setups) * 1000:.0f}, "
              f"max {max(setups) * 1000:.0f} ({len(setups)} calls); latency median "
              f"{med:.0f} ms, p95 {pct(lat, 0.95):.0f} ms ({len(lat)} frames); "
              f"ratio to reference {med / ref_med:.2f}x")
    assert loop_route == "direct" and turn_route == "relay"
    assert len(loop_lat) > STREAM_S * 15 and len(turn_lat) > STREAM_S * 15
