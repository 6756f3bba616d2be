"""Host hand-over (docs/calls.md, "Host hand-over"): real workstations, the real server,
real aiortc peers. When the host leaves a call that goes on, the longest-present remaining
participant hosts it -- every remaining device picks the same one from the host's last
roster (sent over the end-to-end control channel), the relay has no say -- and the waiting
room, admit and invite keep working."""

from __future__ import annotations

import asyncio

from app.rtc.call import LinkState
from tests.integration.test_calls import consult, flowing, link, new_peer, wait_for


async def learn_call(peer, room_id: str, call_id: str, host) -> None:
    """Sync the room until ``peer`` sees ``call_id`` announced by ``host`` (sc.call)."""
    for _ in range(60):
        await peer.chat.sync_once()
        active = peer.calls.active.get(room_id)
        if active is not None and (active.call_id, active.host) == (call_id, host):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the call's announcement did not arrive")


async def test_the_longest_present_participant_takes_over_and_admits_a_fourth(open_server,
                                                                             tmp_path):
    alice, bob, carol, dave = [
        await new_peer(open_server, tmp_path, name, use_turn=False, announce=True)
        for name in ("dr.alice", "dr.bob", "dr.carol", "dr.dave")]
    peers = (alice, bob, carol, dave)
    handed: list = []
    for peer in (bob, carol):
        peer.calls.host_changed.connect(handed.append)
    try:
        room_id = await consult(alice, bob, carol, dave)
        # Alice calls Bob; Carol joins later through the waiting room: Bob is present longest.
        call = await alice.calls.place_call(room_id, peers=[bob.party])
        await wait_for(lambda: flowing(alice, bob, 5))
        await learn_call(carol, room_id, call.call_id, alice.party)
        await carol.calls.join(room_id)
        await wait_for(lambda: bool(alice.calls.waiting_for(call.call_id)), 10)
        await alice.calls.admit(call.call_id, carol.party)
        await wait_for(lambda: all(flowing(a, b, 5) for a, b in
                                   ((alice, carol), (bob, carol))), 30)
        order = [alice.party, bob.party, carol.party]
        await wait_for(lambda: bob.calls.rosters.get(call.call_id) == order
                       and carol.calls.rosters.get(call.call_id) == order, 10)

        # The host leaves; Bob and Carol go on, and both make Bob the host.
        await alice.calls.hangup(call.call_id)
        bob_call, carol_call = bob.calls.calls[call.call_id], carol.calls.calls[call.call_id]
        await wait_for(lambda: bob_call.host == bob.party and carol_call.host == bob.party, 10)
        assert sorted(handed) == [call.call_id, call.call_id]
        assert link(bob, alice).state is LinkState.CLOSED
        assert link(bob, carol).state is LinkState.CONNECTED
        seen = link(carol, bob).stats.stamped_frames
        await wait_for(lambda: link(carol, bob).stats.stamped_frames > seen + 10, 10)

        # Dave learns of the call from the new host's announcement, knocks there, waits.
        await learn_call(dave, room_id, call.call_id, bob.party)
        request = await dave.calls.join(room_id)
        assert request.host == bob.party
        await wait_for(lambda: [w.party for w in bob.calls.waiting_for(call.call_id)]
                       == [dave.party], 10)
        await asyncio.sleep(0.5)
        assert link(carol, dave) is None  # nobody answers him before the host's word
        await bob.calls.admit(call.call_id, dave.party)
        await wait_for(lambda: all(flowing(a, b, 10) for a, b in
                                   ((bob, dave), (carol, dave), (bob, carol))), 30)
        assert request.state == "admitted"
        assert dave.calls.calls[call.call_id].host == bob.party
        assert link(dave, carol).code == link(carol, dave).code
        await wait_for(lambda: carol.calls.rosters.get(call.call_id)
                       == [bob.party, carol.party, dave.party], 10)
        # Only the host invites: Bob can now; Carol still cannot.
        assert await bob.calls.invite(call.call_id, alice.creds.user_id) == 1
    finally:
        for peer in peers:
            await peer.close()


async def test_a_relay_or_participant_cannot_claim_the_host_role(open_server, tmp_path):
    """Carol (not chosen) claims to be the new host on her control channel: Bob and Dave's
    devices keep their own choice, and her admissions are not followed."""
    alice, bob, carol = [
        await new_peer(open_server, tmp_path, name, use_turn=False, announce=True)
        for name in ("dr.alice", "dr.bob", "dr.carol")]
    try:
        room_id = await consult(alice, bob, carol)
        call = await alice.calls.place_call(room_id, peers=[bob.party, carol.party])
        await wait_for(lambda: all(flowing(a, b, 5) for a, b in
                                   ((alice, bob), (alice, carol), (bob, carol))), 30)
        order = [alice.party, bob.party, carol.party]
        await wait_for(lambda: bob.calls.rosters.get(call.call_id) == order
                       and carol.calls.rosters.get(call.call_id) == order, 10)
        await alice.calls.hangup(call.call_id)
        bob_call, carol_call = bob.calls.calls[call.call_id], carol.calls.calls[call.call_id]
        await wait_for(lambda: bob_call.host == bob.party == carol_call.host, 10)
        # Carol's device (compromised) sends a host claim and an admission to Bob.
        carol_link = carol_call.links[bob.party]
        assert carol_link.send_control({"t": "call.host",
                                        "host": [carol.party.user_id, carol.party.device_id]})
        assert carol_link.send_control({"t": "call.admit", "party": ["@x:test", "DEVX"]})
        await asyncio.sleep(0.5)
        assert bob_call.host == bob.party
        assert all(p.device_id != "DEVX" for p in bob_call.links)
    finally:
        for peer in (alice, bob, carol):
            await peer.close()


async def test_a_member_waiting_when_the_host_leaves_waits_on_at_the_new_host(open_server,
                                                                             tmp_path):
    alice, bob, carol, dave = [
        await new_peer(open_server, tmp_path, name, use_turn=False, announce=True)
        for name in ("dr.alice", "dr.bob", "dr.carol", "dr.dave")]
    peers = (alice, bob, carol, dave)
    try:
        room_id = await consult(alice, bob, carol, dave)
        call = await alice.calls.place_call(room_id, peers=[bob.party, carol.party])
        await wait_for(lambda: all(flowing(a, b, 5) for a, b in
                                   ((alice, bob), (alice, carol), (bob, carol))), 30)
        await learn_call(dave, room_id, call.call_id, alice.party)
        request = await dave.calls.join(room_id)
        await wait_for(lambda: bool(alice.calls.waiting_for(call.call_id)), 10)

        await alice.calls.hangup(call.call_id)  # Dave is not told "ended": the call goes on
        await wait_for(lambda: request.host_left, 10)
        assert request.state == "waiting"
        # Bob hosts now (first called); Dave learns it from the room and knocks there.
        await learn_call(dave, room_id, call.call_id, bob.party)
        await wait_for(lambda: request.host == bob.party, 10)
        await wait_for(lambda: [w.party for w in bob.calls.waiting_for(call.call_id)]
                       == [dave.party], 10)
        await bob.calls.admit(call.call_id, dave.party)
        await wait_for(lambda: all(flowing(a, b, 5) for a, b in
                                   ((bob, dave), (carol, dave))), 30)
        assert request.state == "admitted"
    finally:
        for peer in peers:
            await peer.close()
