"""Waiting room and invitations (issue #7): real workstations signed in to the real server over
TLS, signaling through the relay, real aiortc peers on loopback.

A member who joins a running call knocks and waits; the host admits (then the newcomer joins
the mesh: the host offers, the other participants connect when the host says so over their
end-to-end control channel) or denies (the newcomer is told). The host can invite a member;
accepting the invitation knocks like a join. Until admitted, nobody answers the newcomer.
"""

from __future__ import annotations

import asyncio

import pytest

from app.core.errors import SafeConsultError
from app.rtc.call import LinkState
from app.services.calls import CallGone
from tests.integration.test_calls import (
    check_signals_hold_no_media,
    consult,
    flowing,
    link,
    new_peer,
    wait_for,
)


def changes(peer) -> list:
    seen: list = []
    peer.calls.join_changed.connect(lambda request: seen.append(request.state))
    return seen


async def test_a_joiner_waits_until_the_host_admits_then_joins_the_three_party_mesh(
        open_server, tmp_path):
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False, announce=True)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False)
    carol = await new_peer(open_server, tmp_path, "dr.carol", use_turn=False)
    peers = (alice, bob, carol)
    states = changes(carol)
    waiting_rooms: list = []
    alice.calls.waiting_changed.connect(waiting_rooms.append)
    try:
        room_id = await consult(alice, bob, carol)
        call = await alice.calls.place_call(room_id, peers=[bob.party])
        await wait_for(lambda: flowing(alice, bob, 5))

        # Carol learns of the running call from the host's sc.call room event (E2EE).
        for _ in range(40):
            await carol.chat.sync_once()
            if room_id in carol.calls.active:
                break
            await asyncio.sleep(0.1)
        active = carol.calls.active[room_id]
        assert (active.call_id, active.host) == (call.call_id, alice.party)

        request = await carol.calls.join(room_id)
        assert request.state == "waiting" and states == ["waiting"]
        await wait_for(lambda: [w.party for w in alice.calls.waiting_for(call.call_id)]
                       == [carol.party], 10)
        assert waiting_rooms == [call.call_id]
        # Waiting: nobody offers to Carol, nobody answers her, no media either way.
        await asyncio.sleep(1.0)
        assert carol.party not in call.links and not carol.calls.calls
        assert link(bob, carol) is None
        assert request.state == "waiting"

        await alice.calls.admit(call.call_id, carol.party)
        assert alice.calls.waiting_for(call.call_id) == []
        await wait_for(lambda: all(flowing(a, b, 10) for a, b in
                                   ((alice, bob), (alice, carol), (bob, carol))), 30)
        assert states == ["waiting", "admitted"] and request.call is carol.calls.calls[
            call.call_id]
        for me in peers:
            for other in peers:
                if other is not me:
                    assert link(me, other).stats.tags == {len(other.creds.username)}
                    assert link(me, other).code == link(other, me).code
        # Who offered between the two non-hosts: the smaller device id.
        bob_offers = link(bob, carol).offerer
        assert bob_offers == (bob.party.device_id < carol.party.device_id)
        assert link(carol, bob).offerer != bob_offers
        for peer in peers:
            check_signals_hold_no_media(peer)
    finally:
        for peer in peers:
            await peer.close()


async def test_the_host_denies_and_the_joiner_is_told(open_server, tmp_path):
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False)
    carol = await new_peer(open_server, tmp_path, "dr.carol", use_turn=False)
    states = changes(carol)
    try:
        room_id = await consult(alice, bob, carol)
        call = await alice.calls.place_call(room_id, peers=[bob.party])
        await wait_for(lambda: flowing(alice, bob, 5))
        request = await carol.calls.join(room_id, call.call_id, alice.party)
        await wait_for(lambda: bool(alice.calls.waiting_for(call.call_id)), 10)
        await alice.calls.deny(call.call_id, carol.party)
        await wait_for(lambda: request.state == "denied", 10)
        assert states == ["waiting", "denied"] and not carol.calls.calls
        assert carol.party not in call.links and call.call_id not in carol.calls.joining
        with pytest.raises(CallGone):
            await alice.calls.admit(call.call_id, carol.party)  # no longer waiting
        # Knocking again after the call ended: told at once that it ended.
        await alice.calls.hangup(call.call_id)
        again = await carol.calls.join(room_id, call.call_id, alice.party)
        await wait_for(lambda: again.state == "ended", 10)
        for peer in (alice, carol):
            check_signals_hold_no_media(peer)
    finally:
        for peer in (alice, bob, carol):
            await peer.close()


async def test_waiting_joiners_are_told_when_the_call_ends_and_can_give_up(
        open_server, tmp_path):
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False)
    carol = await new_peer(open_server, tmp_path, "dr.carol", use_turn=False)
    try:
        room_id = await consult(alice, bob, carol)
        call = await alice.calls.place_call(room_id, peers=[bob.party])
        await wait_for(lambda: flowing(alice, bob, 5))
        first = await carol.calls.join(room_id, call.call_id, alice.party)
        await wait_for(lambda: bool(alice.calls.waiting_for(call.call_id)), 10)
        await carol.calls.cancel_join(call.call_id)
        assert first.state == "cancelled"
        await wait_for(lambda: not alice.calls.waiting_for(call.call_id), 10)

        second = await carol.calls.join(room_id, call.call_id, alice.party)
        await wait_for(lambda: bool(alice.calls.waiting_for(call.call_id)), 10)
        await alice.calls.hangup(call.call_id)
        await wait_for(lambda: second.state == "ended", 10)
        assert not carol.calls.calls
    finally:
        for peer in (alice, bob, carol):
            await peer.close()


async def test_an_offer_from_a_member_the_host_has_not_admitted_is_held_unanswered(
        open_server, tmp_path):
    """Carol skips the waiting room: she signs a valid offer to Bob for Alice's call. Bob holds
    it -- no peer connection, no answer -- because the host never admitted her."""
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False)
    carol = await new_peer(open_server, tmp_path, "dr.carol", use_turn=False)
    try:
        room_id = await consult(alice, bob, carol)
        call = await alice.calls.place_call(room_id, peers=[bob.party])
        await wait_for(lambda: flowing(alice, bob, 5))
        await carol.calls._know([bob.party.user_id])
        rogue = await carol.calls._new_call(call.call_id, room_id)
        await rogue.connect(bob.party, offerer=True)
        bob_call = bob.calls.calls[call.call_id]
        await wait_for(lambda: carol.party in bob_call.held, 10)
        await asyncio.sleep(1.0)
        assert carol.party not in bob_call.links
        assert not [s for s in bob.sent if s[1] == carol.party.device_id]  # no answer
        assert rogue.links[bob.party].stats.video_frames == 0
        assert link(bob, alice).state is LinkState.CONNECTED
    finally:
        for peer in (alice, bob, carol):
            await peer.close()


async def test_the_host_invites_a_member_into_a_running_call(open_server, tmp_path):
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False)
    dave = await new_peer(open_server, tmp_path, "dr.dave", use_turn=False, auto_accept=False)
    rings: list = []
    dave.calls.incoming.connect(rings.append)
    states = changes(dave)
    try:
        room_id = await consult(alice, bob, dave)
        call = await alice.calls.place_call(room_id, peers=[bob.party])
        await wait_for(lambda: flowing(alice, bob, 5))
        with pytest.raises(SafeConsultError):
            await bob.calls.invite(call.call_id, dave.creds.user_id)  # only the host invites
        assert await alice.calls.invite(call.call_id, dave.creds.user_id) == 1
        await wait_for(lambda: len(rings) == 1, 10)
        assert (rings[0].invited, rings[0].caller, rings[0].call_id) == (
            True, alice.party, call.call_id)
        with pytest.raises(CallGone):
            await dave.calls.accept(call.call_id)  # an invitation is not a ringing offer
        await dave.calls.accept_invite(call.call_id)  # knocks: waits like any joiner
        await wait_for(lambda: bool(alice.calls.waiting_for(call.call_id)), 10)
        assert states == ["waiting"] and not dave.calls.calls
        await alice.calls.admit(call.call_id, dave.party)
        await wait_for(lambda: all(flowing(a, b, 10) for a, b in
                                   ((alice, bob), (alice, dave), (bob, dave))), 30)
        assert states == ["waiting", "admitted"]
    finally:
        for peer in (alice, bob, dave):
            await peer.close()


async def test_a_joiner_admitted_before_the_others_are_connected_still_joins_the_mesh(
        open_server, tmp_path):
    """The host admits Carol while Bob's device is still ringing: Bob is told once his link
    connects (the host repeats whom it let in on every (re)connection of a link)."""
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False, auto_accept=False)
    carol = await new_peer(open_server, tmp_path, "dr.carol", use_turn=False)
    peers = (alice, bob, carol)
    try:
        room_id = await consult(alice, bob, carol)
        call = await alice.calls.place_call(room_id, peers=[bob.party])
        await carol.calls.join(room_id, call.call_id, alice.party)
        await wait_for(lambda: bool(alice.calls.waiting_for(call.call_id)), 10)
        await alice.calls.admit(call.call_id, carol.party)
        await wait_for(lambda: flowing(alice, carol, 5), 20)
        assert call.links[bob.party].state is not LinkState.CONNECTED  # still ringing
        await wait_for(lambda: call.call_id in bob.calls.pending, 10)
        await bob.calls.accept(call.call_id)
        await wait_for(lambda: all(flowing(a, b, 10) for a, b in
                                   ((alice, bob), (alice, carol), (bob, carol))), 30)
    finally:
        for peer in peers:
            await peer.close()
