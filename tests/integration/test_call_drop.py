"""Dropped when trust or membership ends (docs/calls.md): real workstations, the real server,
real aiortc peers on loopback. Trust and membership are checked when a link is set up and
again whenever a device's view of devices or members changes: a device the local user
blocks, one the admin revokes (pushed to the others as a new device-list version), or a
member removed from the consult is dropped from the running call at once -- its link
closed, media stopped, one ``call.drop`` audit entry on the device that dropped it -- and
the rest goes on."""

from __future__ import annotations

import asyncio

from app.rtc.call import LinkState
from app.services.calls import CallDrop
from server_stub import admin
from tests.integration.test_audit_every_action import _flush, device_rows, last_seq
from tests.integration.test_calls import consult, flowing, link, new_peer, wait_for
from tests.support.clients import server_db


async def three_party(open_server, tmp_path, *, chat_background: bool = False, **host_options):
    alice, bob, carol = [await new_peer(open_server, tmp_path, name, use_turn=False,
                                        chat_background=chat_background,
                                        **(host_options if name == "dr.alice" else {}))
                         for name in ("dr.alice", "dr.bob", "dr.carol")]
    room_id = await consult(alice, bob, carol)
    call = await alice.calls.place_call(room_id, peers=[bob.party, carol.party])
    await wait_for(lambda: all(flowing(a, b, 5) for a, b in
                               ((alice, bob), (alice, carol), (bob, carol))), 30)
    return (alice, bob, carol), room_id, call


def drops(peer) -> list[CallDrop]:
    seen: list[CallDrop] = []
    peer.calls.dropped.connect(seen.append)
    return seen


async def still_carrying(a, b, more: int = 10) -> None:
    ab, ba = link(a, b), link(b, a)
    seen = (ab.stats.stamped_frames, ba.stats.stamped_frames)
    await wait_for(lambda: ab.stats.stamped_frames > seen[0] + more
                   and ba.stats.stamped_frames > seen[1] + more, 10)
    assert ab.state is LinkState.CONNECTED and ba.state is LinkState.CONNECTED


async def dropped_as_untrusted(others, revoked, call, dropped) -> None:
    """Each of ``others`` dropped ``revoked`` once as untrusted, closed its link, and the
    others still carry media between them."""
    for peer in others:
        assert dropped[id(peer)] == [CallDrop(call.call_id, revoked.party, "untrusted")]
    await wait_for(lambda: all(link(peer, revoked).state is LinkState.CLOSED
                               for peer in others), 15)
    await still_carrying(*others)


async def test_blocking_a_device_drops_it_from_the_call_and_the_rest_goes_on(open_server,
                                                                            tmp_path):
    (alice, bob, carol), room_id, call = await three_party(open_server, tmp_path)
    try:
        dropped = drops(alice)
        session = alice.ws.session
        since = last_seq(open_server)
        # The Block button of the device list: the call re-checks at once.
        alice.chat.block_device(carol.creds.user_id, carol.party.device_id)
        assert dropped == [CallDrop(call.call_id, carol.party, "untrusted")]
        await wait_for(lambda: link(alice, carol).state is LinkState.CLOSED, 15)
        # Carol is told (a hang-up), so her side of the link closes too; she and Bob go on.
        await wait_for(lambda: link(carol, alice).state is LinkState.CLOSED, 15)
        frames = link(alice, carol).stats.stamped_frames
        await still_carrying(alice, bob)
        await still_carrying(bob, carol)
        assert link(alice, carol).stats.stamped_frames == frames  # no more media from her
        assert call.call_id in alice.calls.calls  # Alice's call goes on with Bob
        ended = [e for e in alice.events if e.what == "ended" and e.peer == carol.party]
        assert len(ended) == 1
        # Another check (any change of devices or rooms) drops nothing twice.
        alice.chat.block_device(carol.creds.user_id, carol.party.device_id)
        alice.calls.recheck()
        assert len(dropped) == 1
        # Her late offer (a rebuild) finds no way back in: the closed link stays closed.
        await asyncio.sleep(0.5)
        assert link(alice, carol).state is LinkState.CLOSED
        # One audit entry, on Alice's device.
        await _flush(session)
        rows = [r for r in device_rows(open_server, session.device.device_id, since)
                if r["action"].startswith("client.call.")]
        assert [(r["action"], r["object_id"]) for r in rows] == [("client.call.drop",
                                                                   call.call_id)]
        assert rows[0]["detail"]["reason"] == "untrusted"
        assert rows[0]["detail"]["device_id"] == carol.party.device_id
        assert rows[0]["detail"]["room_id"] == room_id
        for other in (bob, carol):
            assert not [r for r in device_rows(open_server, other.party.device_id, since)
                        if r["action"] == "client.call.drop"]
    finally:
        for peer in (alice, bob, carol):
            await peer.close()


async def test_a_device_the_admin_revokes_is_dropped_at_the_next_device_list_refresh(
        open_server, tmp_path):
    (alice, bob, carol), _room_id, call = await three_party(open_server, tmp_path)
    try:
        dropped = {id(p): drops(p) for p in (alice, bob)}
        # The hospital IT admin revokes Carol's (stolen) workstation.
        admin.revoke_device(server_db(open_server), carol.party.device_id, wipe=False)
        for peer in (alice, bob):
            await peer.chat.check_device_lists()  # the device-list version moved
        await dropped_as_untrusted((alice, bob), carol, call, dropped)
    finally:
        for peer in (alice, bob, carol):
            await peer.close()


async def test_a_device_the_admin_revokes_is_dropped_by_the_push_without_a_poll(
        open_server, tmp_path):
    """The chats run as in the app (push socket; the poll is ten minutes away): the server
    pushes the revoked user's new device-list version, and the others drop the device
    within the relay's watch interval (0.5 s) plus a device-list fetch."""
    (alice, bob, carol), _room_id, call = await three_party(open_server, tmp_path,
                                                            chat_background=True)
    try:
        dropped = {id(p): drops(p) for p in (alice, bob)}
        admin.revoke_device(server_db(open_server), carol.party.device_id, wipe=False)
        await wait_for(lambda: all(dropped[id(p)] for p in (alice, bob)), 10)
        await dropped_as_untrusted((alice, bob), carol, call, dropped)
    finally:
        for peer in (alice, bob, carol):
            await peer.close()


async def test_a_member_removed_from_the_consult_is_dropped_and_ends_their_own_call(
        open_server, tmp_path):
    (alice, bob, carol), _room_id, call = await three_party(open_server, tmp_path)
    try:
        seen = {id(p): drops(p) for p in (alice, bob, carol)}
        await alice.chat.remove_member(_room_id, carol.creds.user_id)
        assert seen[id(alice)] == [CallDrop(call.call_id, carol.party, "not_member")]
        await wait_for(lambda: link(alice, carol).state is LinkState.CLOSED, 15)
        # Bob learns of it from the room (the membership event), and drops her too.
        for _ in range(50):
            await bob.chat.sync_once()
            if seen[id(bob)]:
                break
            await asyncio.sleep(0.1)
        assert seen[id(bob)] == [CallDrop(call.call_id, carol.party, "not_member")]
        await wait_for(lambda: link(bob, carol).state is LinkState.CLOSED, 15)
        await still_carrying(alice, bob)
        # Carol's device sees its own removal: its call ends (it is not left alone in it).
        await carol.chat.refresh_rooms()
        await wait_for(lambda: call.call_id not in carol.calls.calls, 15)
        assert seen[id(carol)][:1] == [CallDrop(call.call_id, carol.party, "removed")]
    finally:
        for peer in (alice, bob, carol):
            await peer.close()


async def test_a_waiting_knock_from_a_device_blocked_meanwhile_is_turned_away(open_server,
                                                                             tmp_path):
    alice, bob, carol = [await new_peer(open_server, tmp_path, name, use_turn=False)
                         for name in ("dr.alice", "dr.bob", "dr.carol")]
    try:
        room_id = await consult(alice, bob, carol)
        call = await alice.calls.place_call(room_id, peers=[bob.party])
        await wait_for(lambda: flowing(alice, bob, 3))
        request = await carol.calls.join(room_id, call.call_id, alice.party)
        await wait_for(lambda: bool(alice.calls.waiting_for(call.call_id)), 10)
        dropped = drops(alice)
        alice.chat.block_device(carol.creds.user_id, carol.party.device_id)
        assert alice.calls.waiting_for(call.call_id) == []
        assert dropped == [CallDrop(call.call_id, carol.party, "untrusted")]
        await wait_for(lambda: request.state == "denied", 10)  # she is told, not left waiting
        # Knocking again finds no waiting room: her device is not one Alice trusts.
        await carol.calls.join(room_id, call.call_id, alice.party)
        await asyncio.sleep(0.5)
        assert alice.calls.waiting_for(call.call_id) == []
        await still_carrying(alice, bob)
    finally:
        for peer in (alice, bob, carol):
            await peer.close()
