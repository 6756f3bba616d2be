"""The redacting track inside a call (real aiortc peers in one process, no Qt): it replaces the
camera on the running link, stays across a rebuild, and the camera comes back after."""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np

from app.rtc.call import LinkState
from app.rtc.redaction import Outcome, Rect, Redactor, Snapshot
from app.rtc.screen_track import ScreenShareTrack
from tests.unit.rtc.test_call_loopback import wait_for

SECRET = Rect(100, 60, 200, 80)


def screen() -> np.ndarray:
    image = np.full((240, 400, 3), 230, np.uint8)
    image[SECRET.y:SECRET.y + SECRET.h, SECRET.x:SECRET.x + SECRET.w] = (250, 40, 40)  # "PHI"
    return image


async def feed(track: ScreenShareTrack) -> None:
    image = screen()
    while True:
        now = time.monotonic()
        track.push(Snapshot(image, (SECRET,), now, now))
        await asyncio.sleep(0.05)


async def test_the_share_replaces_the_camera_survives_a_rebuild_and_gives_way_again(
        devices, wire):
    alice, bob = devices[:2]
    ca, cb = wire.call_for(alice, stall_s=1.0), wire.call_for(bob, stall_s=1.0)
    got: list[tuple[float, np.ndarray]] = []
    cb.sink = lambda peer, rgb: got.append((time.monotonic(), rgb))
    sent: list[Outcome] = []
    track = ScreenShareTrack(Redactor(), fps=10, on_sent=lambda image, outcome:
                             sent.append(outcome))
    feeder = asyncio.get_running_loop().create_task(feed(track))

    def shares(since: float = 0.0):
        return [f for t, f in got if f.shape[:2] == (240, 400) and t >= since]

    try:
        link = await ca.connect(bob.party, offerer=True)
        await wait_for(lambda: link.state is LinkState.CONNECTED and cb.links
                       and cb.links[alice.party].stats.stamped_frames >= 3)
        ca.send_video(track)
        assert ca.sharing
        await wait_for(lambda: len(shares()) >= 5)
        for frame in shares():
            area = frame[SECRET.y:SECRET.y + SECRET.h, SECRET.x:SECRET.x + SECRET.w]
            assert area.mean() < 12  # the "PHI" rectangle arrives black
            assert frame[10:50, 10:90].mean() > 200  # the rest arrives
        assert set(sent) == {Outcome.REDACTED}

        generation = link.generation
        await link.pc.close()  # the transport goes away: the offerer rebuilds
        await wait_for(lambda: link.generation > generation
                       and link.state is LinkState.CONNECTED, 20)
        rebuilt_at = time.monotonic()
        await wait_for(lambda: len(shares(rebuilt_at)) >= 5, 15)  # still the share

        ca.send_video(None)
        assert not ca.sharing
        back = cb.links[alice.party].stats.stamped_frames
        await wait_for(lambda: cb.links[alice.party].stats.stamped_frames >= back + 5)
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        track.stop()
        await ca.hangup()
        await cb.hangup()
