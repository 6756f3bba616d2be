"""Tampered, truncated and garbage input: always a typed error, never a crash or a plaintext.

Property tests mutate one character of a real ciphertext (base64 body, or the whole JSON
text) and require that nothing decrypts. A failed attempt must not spend state either: the
untouched original still decrypts afterwards.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.crypto.errors import E2EEError, MalformedPayload
from app.crypto.identity import b64, unb64
from app.crypto.megolm import DecryptedRoomEvent, MissingRoomKey
from app.crypto.messages import ENCRYPTED, canonical_json
from tests.unit.crypto.world import Relay, body, make_peer, wire

ROOM = "!consult"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
THOROUGH = settings(max_examples=3000, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def room():
    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    for peer in (alice, bob):
        relay.sync_devices(peer, "alice", "bob")
    event = relay.say(alice, ROOM, ["alice", "bob"], "K+ 3.1 mmol/L")
    return bob, event


@pytest.fixture(scope="module")
def olm_pair():
    """A pre-key message and a normal message from alice to bob, neither delivered yet."""
    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    for peer in (alice, bob):
        relay.sync_devices(peer, "alice", "bob")
    relay.connect(alice, "bob")
    record = alice.machine.devices("bob")[bob.device_id]
    pre_key = wire(alice.machine._olm.encrypt(record, "sc.test", {"n": 1}))
    return alice, bob, pre_key


@pytest.fixture(scope="module")
def olm_normal():
    """An established session and one undelivered normal (type 1) message."""
    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    for peer in (alice, bob):
        relay.sync_devices(peer, "alice", "bob")
    relay.connect(alice, "bob")
    to_bob = alice.machine.devices("bob")[bob.device_id]
    to_alice = bob.machine.devices("alice")[alice.device_id]
    bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED,
                                  wire(alice.machine._olm.encrypt(to_bob, "t", {})))
    alice.machine.receive_to_device("bob", bob.device_id, ENCRYPTED,
                                    wire(bob.machine._olm.encrypt(to_alice, "t", {})))
    normal = wire(alice.machine._olm.encrypt(to_bob, "sc.test", {"n": 2}))
    assert normal["type"] == 1
    return alice, bob, normal


def mutate(text: str, position: int, replacement: str) -> str | None:
    position %= len(text)
    if text[position] == replacement:
        return None
    return text[:position] + replacement + text[position + 1:]


def check_megolm_rejects(bob, event, field_value: str, position: int, char: str) -> None:
    mutated = mutate(field_value, position, char)
    if mutated is None:
        return
    with pytest.raises(E2EEError):
        bob.machine.decrypt_room_event(ROOM, "$tampered", {**event, "ciphertext": mutated})


@FAST
@given(position=st.integers(min_value=0), char=st.sampled_from(B64 + "=-_ \x00é"))
def test_any_change_to_a_megolm_ciphertext_is_rejected(room, position, char):
    bob, event = room
    check_megolm_rejects(bob, event, event["ciphertext"], position, char)


@pytest.mark.slow
@THOROUGH
@given(position=st.integers(min_value=0), char=st.sampled_from(B64))
def test_any_change_to_a_megolm_ciphertext_is_rejected_thorough(room, position, char):
    bob, event = room
    check_megolm_rejects(bob, event, event["ciphertext"], position, char)


def test_every_position_of_a_megolm_ciphertext_is_covered(room):
    """Exhaustive over positions (one substitution each), not left to sampling."""
    bob, event = room
    text = event["ciphertext"]
    for position in range(len(text)):
        replacement = "A" if text[position] != "A" else "B"
        check_megolm_rejects(bob, event, text, position, replacement)


def test_every_single_bit_flip_of_a_megolm_message_is_rejected(room):
    """Byte level and exhaustive: includes flips that leave a protobuf that still parses
    (e.g. the index's field tag), which vodozemac alone would accept."""
    bob, event = room
    raw = unb64(event["ciphertext"])
    for position in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[position] ^= 1 << bit
            with pytest.raises(E2EEError):
                bob.machine.decrypt_room_event(
                    ROOM, "$flip", {**event, "ciphertext": b64(bytes(flipped))},
                )


def test_non_canonical_base64_of_the_same_bytes_is_rejected():
    """Unused low bits of the last base64 character do not change the bytes; a changed
    character must still not pass."""
    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    for peer in (alice, bob):
        relay.sync_devices(peer, "alice", "bob")
    tried = 0
    for n in range(6):  # plaintext lengths vary the ciphertext length mod 3
        event = relay.say(alice, ROOM, ["alice", "bob"], "x" * n)
        text = event["ciphertext"]
        for char in B64:
            variant = text[:-1] + char
            if variant != text and unb64(variant) == unb64(text):
                tried += 1
                with pytest.raises(MalformedPayload):
                    bob.machine.decrypt_room_event(ROOM, f"$v{n}", {**event, "ciphertext": variant})
        assert body(bob.machine.decrypt_room_event(ROOM, f"$v{n}", event)) == "x" * n
    assert tried > 0


@FAST
@given(position=st.integers(min_value=0), char=st.characters(codec="utf-8"))
def test_any_change_to_the_event_json_never_yields_a_plaintext(room, position, char):
    bob, event = room
    mutated = mutate(canonical_json(event).decode(), position, char)
    if mutated is None:
        return
    try:
        result = bob.machine.decrypt_room_event(ROOM, "$tampered", mutated)
    except E2EEError:
        return
    # Only a changed session id or sender key can get here: "key not here", not a plaintext.
    assert isinstance(result, MissingRoomKey)


@FAST
@given(position=st.integers(min_value=0), char=st.sampled_from(B64))
def test_any_change_to_an_olm_pre_key_body_is_rejected(olm_pair, position, char):
    alice, bob, pre_key = olm_pair
    mutated = mutate(pre_key["body"], position, char)
    if mutated is None:
        return
    with pytest.raises(E2EEError):
        bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED,
                                      {**pre_key, "body": mutated})


@FAST
@given(position=st.integers(min_value=0), char=st.sampled_from(B64))
def test_any_change_to_an_olm_normal_body_is_rejected(olm_normal, position, char):
    alice, bob, normal = olm_normal
    mutated = mutate(normal["body"], position, char)
    if mutated is None:
        return
    with pytest.raises(E2EEError):
        bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED,
                                      {**normal, "body": mutated})


def test_olm_normal_original_still_decrypts_after_tampered_copies(olm_normal):
    alice, bob, normal = olm_normal
    raw = unb64(normal["body"])
    for position in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[position] ^= 1 << bit
            with pytest.raises(E2EEError):
                bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED,
                                              {**normal, "body": b64(bytes(flipped))})
    result = bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED, normal)
    assert result.content.reveal() == {"n": 2}


def test_olm_original_still_decrypts_after_tampered_copies(olm_pair):
    """Every single-bit flip of the pre-key message is refused (exhaustive, so it does not
    depend on sampling); then, since nothing was spent, the original opens."""
    alice, bob, pre_key = olm_pair
    raw = unb64(pre_key["body"])
    for position in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[position] ^= 1 << bit
            with pytest.raises(E2EEError):
                bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED,
                                              {**pre_key, "body": b64(bytes(flipped))})
    result = bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED, pre_key)
    assert result.content.reveal() == {"n": 1}


def test_megolm_original_still_decrypts_after_tampered_copies(room):
    bob, event = room
    result = bob.machine.decrypt_room_event(ROOM, "$e1", event)
    assert isinstance(result, DecryptedRoomEvent) and body(result) == "K+ 3.1 mmol/L"


@pytest.mark.parametrize("cut", [0, 1, 10, 40, -1])
def test_truncated_event_json_is_malformed(room, cut):
    bob, event = room
    text = json.dumps(event)
    with pytest.raises(MalformedPayload):
        bob.machine.decrypt_room_event(ROOM, "$t", text[:cut])


@pytest.mark.parametrize(
    "garbage",
    [b"\xff\xfe", "[]", "null", "{\"algorithm\": 5}", "1e999999", "{" * 100_000,
     "x" * 300_000],
)
def test_garbage_event_text_is_malformed(room, garbage):
    bob, _ = room
    with pytest.raises(MalformedPayload):
        bob.machine.decrypt_room_event(ROOM, "$g", garbage)


@pytest.mark.parametrize("cut", [4, 20, 100])
def test_truncated_ciphertext_is_rejected(room, cut):
    bob, event = room
    text = event["ciphertext"]
    with pytest.raises(E2EEError):
        bob.machine.decrypt_room_event(ROOM, "$t", {**event, "ciphertext": text[:cut]})


def test_truncated_to_device_json_is_malformed(olm_pair):
    alice, bob, pre_key = olm_pair
    text = json.dumps(pre_key)
    with pytest.raises(MalformedPayload):
        bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED, text[: len(text) // 2])


def test_errors_never_carry_the_ciphertext_or_keys(room):
    bob, event = room
    tampered = mutate(event["ciphertext"], 30, "A") or mutate(event["ciphertext"], 30, "B")
    with pytest.raises(E2EEError) as caught:
        bob.machine.decrypt_room_event(ROOM, "$x", {**event, "ciphertext": tampered})
    text = str(caught.value) + repr(caught.value) + caught.value.user_message
    assert event["ciphertext"][:16] not in text and tampered[:16] not in text
    assert event["sender_key"] not in text and event["session_id"] not in text


def test_olm_pre_key_keys_with_the_ignored_top_bit_flipped_are_rejected():
    """X25519 ignores a public key's top bit, and the pre-key header is outside the MAC:
    such a re-spelled message would decrypt. Every such variant must be refused, and the
    original must still open afterwards."""
    relay = Relay()
    alice = relay.enroll(make_peer("alice"))
    bob = relay.enroll(make_peer("bob"))
    for peer in (alice, bob):
        relay.sync_devices(peer, "alice", "bob")
    relay.connect(alice, "bob")
    record = alice.machine.devices("bob")[bob.device_id]
    pre_key = wire(alice.machine._olm.encrypt(record, "sc.test", {"n": 1}))
    raw = unb64(pre_key["body"])
    for last_byte in (34, 68, 102):  # one-time key, base key, identity key (last bytes)
        flipped = bytearray(raw)
        flipped[last_byte] ^= 0x80
        with pytest.raises(E2EEError):
            bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED,
                                          {**pre_key, "body": b64(bytes(flipped))})
    result = bob.machine.receive_to_device("alice", alice.device_id, ENCRYPTED, pre_key)
    assert result.content.reveal() == {"n": 1}
