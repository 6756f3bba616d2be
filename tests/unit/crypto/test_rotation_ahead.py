"""The next room session's key goes out ahead of the rotation (docs/e2ee.md, "Rotation").

Near the message or age limit the sender makes the room's next Megolm session and sends its
key; the rotation then takes that session over, so the first message under it decrypts at
once. The key went only to the devices allowed at the time: if they change before the
rotation, the upcoming session is thrown away and a new one made.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.crypto.megolm import DecryptedRoomEvent, MissingRoomKey, RotationPolicy
from tests.unit.crypto.world import Clock, Relay, body, make_peer, wire

ROOM = "!consult-1"
EVERYONE = ["alice", "bob", "carol"]
POLICY = RotationPolicy(max_messages=5, max_age_ms=600_000, ahead_messages=2, ahead_ms=60_000)


@pytest.fixture
def world():
    relay = Relay()
    clock = Clock()
    alice = relay.enroll(make_peer("alice", clock=clock, rotation=POLICY))
    bob = relay.enroll(make_peer("bob", clock=clock))
    carol = relay.enroll(make_peer("carol", clock=clock))
    for peer in (alice, bob, carol):
        relay.sync_devices(peer, *EVERYONE)
    return relay, clock, alice, bob, carol


def send(relay: Relay, alice, members: list[str], text: str):
    """One message as the chat service sends it: share (queue what it says), encrypt."""
    share = relay.share(alice, ROOM, members)
    event = wire(alice.machine.encrypt_room_event(ROOM, members, "sc.message", {"body": text}))
    return share, event


def deliver_all(relay: Relay) -> None:
    for peer in relay.peers.values():
        relay.deliver(peer)


def test_the_next_key_goes_ahead_and_the_first_message_under_it_needs_nothing_more(world):
    relay, _, alice, bob, _ = world
    shares, events = [], []
    for n in range(6):  # limit 5: messages 0-4 under the first session, 5 under the next
        share, event = send(relay, alice, ["alice", "bob"], f"m{n}")
        shares.append(share)
        events.append(event)
        deliver_all(relay)
    # The next key went out with messages 3 and 4 (2 ahead of the limit): made once, sent
    # once to bob; nothing before message 5, whose session bob already holds.
    assert [bool(s.ahead) for s in shares] == [False, False, False, True, False, False]
    assert {m.recipient_user for m in shares[3].ahead} == {"bob"}
    assert shares[5].rotated and shares[5].promoted and shares[5].messages == []
    assert events[5]["session_id"] != events[4]["session_id"]
    for n, event in enumerate(events):
        result = bob.machine.decrypt_room_event(ROOM, f"$e{n}", event)
        assert isinstance(result, DecryptedRoomEvent) and body(result) == f"m{n}"
    # The sender reads back its own message under the promoted session too.
    assert body(alice.machine.decrypt_room_event(ROOM, "$e5", events[5])) == "m5"


def test_a_member_who_leaves_before_the_rotation_never_gets_the_next_session(world):
    relay, _, alice, _, carol = world
    for n in range(4):  # the next key went to bob and carol with message 3
        share, _ = send(relay, alice, EVERYONE, f"m{n}")
        deliver_all(relay)
    assert {m.recipient_user for m in share.ahead} == {"bob", "carol"}
    share, after = send(relay, alice, ["alice", "bob"], "after carol left")
    deliver_all(relay)
    assert share.rotated and not share.promoted
    assert {m.recipient_user for m in share.messages} == {"bob"}
    assert isinstance(carol.machine.decrypt_room_event(ROOM, "$after", after), MissingRoomKey)


def test_a_device_blocked_before_the_rotation_throws_the_upcoming_session_away(world):
    relay, _, alice, bob, carol = world
    for n in range(4):
        send(relay, alice, EVERYONE, f"m{n}")
        deliver_all(relay)
    alice.machine.block_device("carol", carol.device_id)
    share, event = send(relay, alice, EVERYONE, "carol's device is blocked")
    deliver_all(relay)
    assert share.rotated and not share.promoted
    assert isinstance(carol.machine.decrypt_room_event(ROOM, "$b", event), MissingRoomKey)
    assert body(bob.machine.decrypt_room_event(ROOM, "$b", event)) == "carol's device is blocked"


def test_the_next_key_goes_ahead_of_the_age_limit_too(world):
    relay, clock, alice, bob, _ = world
    first, _ = send(relay, alice, ["alice", "bob"], "t0")
    assert first.ahead == []
    clock.now += POLICY.max_age_ms - POLICY.ahead_ms  # within ahead_ms of the age limit
    near, _ = send(relay, alice, ["alice", "bob"], "t1")
    assert {m.recipient_user for m in near.ahead} == {"bob"}
    deliver_all(relay)
    clock.now += POLICY.ahead_ms  # the age limit
    rotated, event = send(relay, alice, ["alice", "bob"], "t2")
    assert rotated.promoted and rotated.messages == []
    assert body(bob.machine.decrypt_room_event(ROOM, "$t2", event)) == "t2"


def test_an_upcoming_session_past_its_own_age_is_not_taken_over(world):
    relay, clock, alice, _, _ = world
    for n in range(4):
        send(relay, alice, ["alice", "bob"], f"m{n}")
    clock.now += POLICY.max_age_ms  # the room went quiet for longer than a session lives
    share, _ = send(relay, alice, ["alice", "bob"], "much later")
    assert share.rotated and not share.promoted and share.messages


def test_a_device_without_an_olm_session_gets_the_key_when_the_session_takes_over(world):
    relay, clock, alice, bob, _ = world
    carol2 = relay.enroll(make_peer("carol", clock=clock))
    relay.sync_devices(carol2, *EVERYONE)
    relay.sync_devices(alice, *EVERYONE)
    alice.machine.accept_device("carol", carol2.device_id, carol2.identity.ed25519)  # seen
    # Olm sessions with everyone but carol's new device.
    alice.machine.missing_sessions(EVERYONE)
    others = [d for d in relay.peers if d not in (alice.device_id, carol2.device_id)]
    alice.machine.receive_key_claim(relay.claim(others))
    shares, events = [], []
    for n in range(6):
        if n == 5:
            relay.connect(alice, "carol")  # carol's new device's key claimed at last
        share = alice.machine.share_room_key(ROOM, EVERYONE)
        relay.send(alice, share.messages + share.ahead)
        events.append(wire(alice.machine.encrypt_room_event(
            ROOM, EVERYONE, "sc.message", {"body": f"m{n}"})))
        shares.append(share)
        deliver_all(relay)
    assert (carol2.user_id, carol2.device_id) in shares[3].missing_sessions
    assert carol2.device_id not in {m.recipient_device for m in shares[3].ahead}
    assert shares[5].promoted
    assert [m.recipient_device for m in shares[5].messages] == [carol2.device_id]
    assert body(carol2.machine.decrypt_room_event(ROOM, "$e5", events[5])) == "m5"
    assert isinstance(carol2.machine.decrypt_room_event(ROOM, "$e4", events[4]),
                      MissingRoomKey)
    assert body(bob.machine.decrypt_room_event(ROOM, "$e5", events[5])) == "m5"


# --- any sequence of sends, membership changes, blocks and time ----------------------------

_NAMES = ["bob", "carol", "dave"]
_OPS = st.lists(
    st.one_of(
        st.just(("send", "")),
        st.tuples(st.sampled_from(["leave", "join", "block"]), st.sampled_from(_NAMES)),
        st.tuples(st.just("wait"), st.integers(0, 2 * POLICY.max_age_ms)),
    ),
    min_size=1, max_size=30,
).filter(lambda ops: sum(op == "send" for op, _ in ops) >= 3)


@settings(max_examples=80, deadline=None)
@given(ops=_OPS)
def test_every_message_opens_exactly_for_the_devices_allowed_when_it_was_sent(ops):
    """Whatever happens between sends, a message decrypts at a device if and only if that
    device was an allowed member's when it was sent: a key sent ahead never lets a member
    who left, or a device blocked since, read what follows."""
    relay, clock = Relay(), Clock()
    alice = relay.enroll(make_peer("alice", clock=clock, rotation=POLICY))
    others = {name: relay.enroll(make_peer(name, clock=clock)) for name in _NAMES}
    for peer in relay.peers.values():
        relay.sync_devices(peer, "alice", *_NAMES)
    members, blocked = set(_NAMES), set()
    sent: list[tuple[str, dict, set[str]]] = []
    for n, (op, name) in enumerate(ops):
        if op == "wait":
            clock.now += name
        elif op == "leave":
            members.discard(name)
        elif op == "join":
            members.add(name)
        elif op == "block":
            alice.machine.block_device(name, others[name].device_id)
            blocked.add(name)
        else:
            _, event = send(relay, alice, ["alice", *sorted(members)], f"m{n}")
            deliver_all(relay)
            sent.append((f"$e{n}", event, members - blocked))
    for event_id, event, allowed in sent:
        for name, peer in others.items():
            result = peer.machine.decrypt_room_event(ROOM, event_id, event)
            if name in allowed:
                assert isinstance(result, DecryptedRoomEvent), (name, event_id)
            else:
                assert isinstance(result, MissingRoomKey), (name, event_id)
