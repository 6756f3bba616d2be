"""Real aiortc peers in one process, signals through an in-memory wire: the Call/PeerLink
logic (signing, verification, refusal, rebuild, mesh) without the server."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from app.rtc.call import LinkState, PromptJitterBuffer
from app.rtc.signing import FingerprintMismatch, SignatureInvalid


async def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def test_two_peers_exchange_stamped_video_both_ways(devices, wire):
    alice, bob = devices[:2]
    ca, cb = wire.call_for(alice), wire.call_for(bob)
    try:
        link = await ca.connect(bob.party, offerer=True)
        await wait_for(lambda: bob.party in ca.links and alice.party in cb.links
                       and ca.links[bob.party].stats.stamped_frames >= 10
                       and cb.links[alice.party].stats.stamped_frames >= 10)
        back = cb.links[alice.party]
        assert link.stats.tags == {cb.options.video_tag}
        assert back.stats.tags == {ca.options.video_tag}
        assert link.stats.audio_frames > 0 and back.stats.audio_frames > 0
        assert link.code is not None and link.code == back.code
        assert re.fullmatch(r"\d{3} \d{3}", link.code)
        assert link.route() == "direct"
    finally:
        await ca.hangup()
        await cb.hangup()


def _swap_fingerprint(sender, peer, kind, payload):
    if kind != "offer":
        return payload
    sdp = re.sub(r"(a=fingerprint:sha-256 )([0-9A-F]{2})",
                 lambda m: m.group(1) + ("00" if m.group(2) != "00" else "11"), payload["sdp"])
    return {**payload, "sdp": sdp}


async def test_a_relay_that_swaps_the_fingerprint_is_refused(devices, wire):
    alice, bob = devices[:2]
    wire.tamper = _swap_fingerprint
    ca, cb = wire.call_for(alice), wire.call_for(bob)
    events = []
    cb.on_event = lambda what, link: events.append(what)
    try:
        await ca.connect(bob.party, offerer=True)
        await wait_for(lambda: alice.party in cb.links
                       and cb.links[alice.party].state is LinkState.REFUSED)
        link = cb.links[alice.party]
        assert isinstance(link.refusal, FingerprintMismatch)
        assert link.pc is None and events == ["refused"]
        assert [k for _, _, k, _ in wire.log] == ["offer"]  # no answer went back
        assert ca.links[bob.party].state is not LinkState.CONNECTED
    finally:
        await ca.hangup()
        await cb.hangup()


async def test_an_offer_signed_by_another_device_is_refused(devices, wire):
    alice, bob, carol = devices
    # Carol's device signs, the relay claims the offer came from Alice's device (and the
    # statement names Alice too): only Alice's key, from Bob's own directory, is tried.
    wire.spoof[carol.party] = alice.party
    ca, cb = wire.call_for(carol), wire.call_for(bob)
    try:
        ca.local = alice.party
        await ca.connect(bob.party, offerer=True)
        await wait_for(lambda: alice.party in cb.links
                       and cb.links[alice.party].state is LinkState.REFUSED)
        assert isinstance(cb.links[alice.party].refusal, SignatureInvalid)
    finally:
        await ca.hangup()
        await cb.hangup()


async def test_three_party_mesh(devices, wire):
    alice, bob, carol = devices
    calls = {d.party: wire.call_for(d) for d in devices}
    try:
        await calls[alice.party].connect(bob.party, offerer=True)
        await calls[alice.party].connect(carol.party, offerer=True)
        await calls[bob.party].connect(carol.party, offerer=bob.party.device_id
                                       < carol.party.device_id)
        await calls[carol.party].connect(bob.party, offerer=carol.party.device_id
                                         < bob.party.device_id)

        def everyone_sees_everyone() -> bool:
            for call in calls.values():
                if len(call.links) != 2:
                    return False
                if any(link.stats.stamped_frames < 5 for link in call.links.values()):
                    return False
            return True

        await wait_for(everyone_sees_everyone, 30)
        for me, call in calls.items():
            for peer, link in call.links.items():
                assert link.stats.tags == {calls[peer].options.video_tag}, (me, peer)
    finally:
        for call in calls.values():
            await call.hangup()


@pytest.mark.parametrize("side", ["offerer", "answerer"])
async def test_a_dropped_connection_is_rebuilt_without_user_action(devices, wire, side):
    alice, bob = devices[:2]
    ca, cb = wire.call_for(alice, stall_s=1.0), wire.call_for(bob, stall_s=1.0)
    try:
        link = await ca.connect(bob.party, offerer=True)
        await wait_for(lambda: link.stats.stamped_frames >= 5)
        victim = link if side == "offerer" else cb.links[alice.party]
        first_generation = link.generation
        await victim.pc.close()  # the transport goes away under the call
        await wait_for(lambda: link.generation > first_generation
                       and link.state is LinkState.CONNECTED, 20)
        before = link.stats.stamped_frames
        await wait_for(lambda: link.stats.stamped_frames >= before + 10)
        assert link.rebuilds == link.generation - 1  # one rebuild per failed generation
        # The rebuilt link was verified again: offers of both generations were signed.
        offers = [p["generation"] for _, _, k, p in wire.log if k == "offer"]
        assert offers[:1] == [first_generation] and max(offers) == link.generation
    finally:
        await ca.hangup()
        await cb.hangup()


async def test_a_replayed_offer_does_not_disturb_a_working_link(devices, wire):
    alice, bob = devices[:2]
    ca, cb = wire.call_for(alice), wire.call_for(bob)
    try:
        link = await ca.connect(bob.party, offerer=True)
        await wait_for(lambda: link.stats.stamped_frames >= 5)
        back = cb.links[alice.party]
        (offer,) = [p for _, _, k, p in wire.log if k == "offer"]
        await cb.handle(alice.party, "offer", offer)  # the relay replays it
        await cb.handle(alice.party, "offer", {**offer, "generation": 0})
        before = back.stats.stamped_frames
        await wait_for(lambda: back.stats.stamped_frames >= before + 10)
        assert back.state is LinkState.CONNECTED and back.generation == 1
        assert back.refusal is None
    finally:
        await ca.hangup()
        await cb.hangup()


async def test_a_peer_that_vanishes_is_given_up(devices, wire):
    alice, bob = devices[:2]
    ca = wire.call_for(alice, stall_s=0.5, connect_timeout_s=0.5, give_up_s=2.0)
    cb = wire.call_for(bob)
    events = []
    ca.on_event = lambda what, link: events.append(what)
    try:
        link = await ca.connect(bob.party, offerer=True)
        await wait_for(lambda: link.stats.stamped_frames >= 5)
        del wire.calls[bob.party]  # Bob's machine crashes: no hang-up, no answers any more
        await cb.links[alice.party].pc.close()
        # The watchdog closes the link (state CLOSED at once, then the peer connection's
        # close is awaited) and only then reports "lost": wait for the report, not the state.
        await wait_for(lambda: "lost" in events, 10)
        assert events[0] == "connected" and "rebuilding" in events and events[-1] == "lost"
        assert link.state is LinkState.CLOSED
        assert link.rebuilds >= 1 and link.pc is None
    finally:
        await ca.hangup()
        await cb.hangup()


def _packet(seq: int, timestamp: int, data: bytes, *, marker: bool = False) -> RtpPacket:
    packet = RtpPacket(payload_type=96, marker=int(marker), sequence_number=seq,
                       timestamp=timestamp)
    packet._data = data  # what the receiver's depayloader leaves for the jitter buffer
    return packet


@pytest.mark.parametrize("prompt", [True, False])
def test_a_video_frame_is_released_once_its_last_packet_is_in(prompt):
    buffer = (PromptJitterBuffer if prompt else JitterBuffer)(capacity=64, is_video=True)
    released = []
    for packet in (_packet(10, 3000, b"a"),
                   _packet(12, 3000, b"c", marker=True),  # 11 still missing
                   _packet(11, 3000, b"b"),  # late: the frame is whole now
                   _packet(13, 6000, b"d", marker=True),
                   _packet(14, 9000, b"e", marker=True)):
        _, frame = buffer.add(packet)
        released.append(None if frame is None else (frame.data, frame.timestamp))
    if prompt:
        assert released == [None, None, (b"abc", 3000), (b"d", 6000), (b"e", 9000)]
    else:  # aiortc's own: a frame goes out only when the next one starts
        assert released == [None, None, None, (b"abc", 3000), (b"d", 6000)]


async def test_links_decode_video_through_the_prompt_jitter_buffer(devices, wire):
    alice, bob = devices[:2]
    ca, cb = wire.call_for(alice), wire.call_for(bob)
    try:
        link = await ca.connect(bob.party, offerer=True)
        await wait_for(lambda: link.stats.stamped_frames >= 10)
        buffers = [t.receiver._RTCRtpReceiver__jitter_buffer
                   for t in link.pc.getTransceivers() if t.kind == "video"]
        assert buffers and all(isinstance(b, PromptJitterBuffer) for b in buffers)
    finally:
        await ca.hangup()
        await cb.hangup()


async def test_a_link_closed_while_it_reconnects_makes_no_new_connection(devices, wire):
    """A rebuild in flight (its old connection closing) when the link is closed -- the peer
    hung up, or the call dropped it -- must not open a new connection afterwards: nobody
    would close it, and aiortc's decoder threads would keep the process alive."""
    alice, bob = devices[:2]
    ca, cb = wire.call_for(alice), wire.call_for(bob)
    try:
        link = await ca.connect(bob.party, offerer=True)
        await wait_for(lambda: link.state is LinkState.CONNECTED)
        rebuilding = asyncio.create_task(link._offer())
        await asyncio.sleep(0)  # the rebuild is closing the old connection
        await link.close()
        await rebuilding
        assert link.pc is None and link.state is LinkState.CLOSED
    finally:
        await ca.hangup()
        await cb.hangup()


async def test_a_call_that_is_hanging_up_starts_no_new_connection(devices, wire):
    """While the hang-up tells the others, nothing new may start: a link begun then would
    not be among those the hang-up closes."""
    alice, bob, carol = devices
    ca, cb = wire.call_for(alice), wire.call_for(bob)
    try:
        link = await ca.connect(bob.party, offerer=True)
        await wait_for(lambda: link.state is LinkState.CONNECTED)
        ending = asyncio.create_task(ca.hangup())
        await asyncio.sleep(0)  # the hang-up is telling bob
        late = await ca.connect(carol.party, offerer=True)
        await ending
        assert late.pc is None and all(lk.pc is None for lk in ca.links.values())
    finally:
        await ca.hangup()
        await cb.hangup()
