"""Call benchmark (docs/performance.md, "Calls"): setup time to the first remote frame and
capture -> display latency, against stock aiortc measured in the same run.

Ours: two signed-in workstations in one room of the real server over TLS, signed SDP through
POST /signal and the push socket, CallsService on both ends (auto-accept), loopback media;
then the same relay-only through a real coturn. Reference: two plain RTCPeerConnections in
one process exchanging SDP directly (no server, no signing), with the same synthetic track.
Latency is read from the capture time stamped into each frame (app.rtc.tracks), decoded at
the receiver. Ours decodes a video frame as soon as its last packet is in
(app.rtc.call.PromptJitterBuffer); the loopback call is run once more with aiortc's own
receive path (CallOptions.prompt_video off) to show what that saves. Only correctness is
asserted; the figures are printed and recorded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import statistics
import time

import pytest
from aiortc import RTCPeerConnection

from app.rtc.call import CallOptions
from app.rtc.ice import IcePolicy, TurnCredentials, configuration
from app.rtc.tracks import SyntheticVideoTrack, now_ms, read_frame_stamp
from tests.integration.test_calls import (  # the same real fixtures as the tests
    TURN_SECRET,
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
STREAM_S = 5.0
WARMUP_S = 1.0


def turn_policy(port: int) -> IcePolicy:
    """coturn REST credentials made here (what the server would hand out), relay-only."""
    username = f"{int(time.time()) + 600}:bench"
    credential = base64.b64encode(hmac.new(TURN_SECRET.encode(), username.encode(),
                                           hashlib.sha1).digest()).decode()
    return IcePolicy(TurnCredentials((f"turn:127.0.0.1:{port}?transport=udp",), username,
                                     credential), relay_only=True)


async def reference_call(policy: IcePolicy | None = None) -> tuple[float, list[int]]:
    """Stock aiortc in one process (SDP handed over directly): seconds to the first frame,
    and latencies (ms) after warm-up."""
    config = configuration(policy) if policy is not None else None
    a, b = RTCPeerConnection(config), RTCPeerConnection(config)
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


async def test_call_setup_and_latency(open_server, turn_server, coturn, tmp_path):  # noqa: F811
    refs = [await reference_call() for _ in range(3)]
    turn_refs = [await reference_call(turn_policy(coturn.port)) for _ in range(3)]
    loop_setups, loop_lat, loop_route = await our_call(open_server, tmp_path, "loop",
                                                       use_turn=False)
    plain_options = {"call_options": CallOptions(video_tag=4, prompt_video=False)}
    plain_setups, plain_lat, plain_route = await our_call(open_server, tmp_path, "plain",
                                                          use_turn=False, **plain_options)
    turn_setups, turn_lat, turn_route = await our_call(turn_server, tmp_path, "turn",
                                                       relay_only=True)
    refs.append(await reference_call())  # again, to see the machine's drift
    ref_lat = [ms for _, lat in refs for ms in lat]
    ref_med = statistics.median(ref_lat)
    turn_ref_lat = [ms for _, lat in turn_refs for ms in lat]
    turn_ref_med = statistics.median(turn_ref_lat)

    def ms(values) -> str:
        return "/".join(f"{v * 1000:.0f}" for v in values)

    print("\n-- calls benchmark --")
    print(f"stock aiortc loopback: first frame {ms(s for s, _ in refs)} ms; latency median "
          f"{ref_med:.0f} ms, p95 {pct(ref_lat, 0.95):.0f} ms ({len(ref_lat)} frames)")
    print(f"stock aiortc relay-only via coturn: first frame {ms(s for s, _ in turn_refs)} ms;"
          f" latency median {turn_ref_med:.0f} ms, p95 {pct(turn_ref_lat, 0.95):.0f} ms")
    for name, setups, lat, route, ref, ref_setup in (
            ("loopback via server", loop_setups, loop_lat, loop_route, ref_med,
             statistics.median(s for s, _ in refs)),
            ("loopback via server, aiortc's own receive path", plain_setups, plain_lat,
             plain_route, ref_med, statistics.median(s for s, _ in refs)),
            ("TURN relay-only", turn_setups, turn_lat, turn_route, turn_ref_med,
             statistics.median(s for s, _ in turn_refs))):
        med = statistics.median(lat)
        setup = statistics.median(setups)
        print(f"{name} [{route}]: setup to first remote frame (both ends, through the server "
              f"and its TURN credentials) median {setup * 1000:.0f} ms, min "
              f"{min(setups) * 1000:.0f}, max {max(setups) * 1000:.0f} ({len(setups)} calls),"
              f" {setup / ref_setup:.2f}x stock; latency median {med:.0f} ms, p95 "
              f"{pct(lat, 0.95):.0f} ms ({len(lat)} frames), {med / ref:.2f}x stock")
    assert loop_route == plain_route == "direct" and turn_route == "relay"
    assert min(len(loop_lat), len(plain_lat), len(turn_lat)) > STREAM_S * 15
