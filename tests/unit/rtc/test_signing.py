"""Signed session descriptions: every way a relay could bend one is refused, typed."""

from __future__ import annotations

import pytest

from app.crypto.identity import DeviceIdentity
from app.rtc.signing import (
    FingerprintMismatch,
    MalformedDescription,
    Party,
    SignatureInvalid,
    StaleDescription,
    UnknownPeerDevice,
    fingerprints,
    sign_description,
    verification_code,
    verify_description,
)

SDP = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 97\r\n"
       "a=fingerprint:sha-256 AB:CD:EF:01\r\na=setup:actpass\r\n"
       "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 ab:cd:ef:01\r\n")
ALICE_ID, BOB_ID, MALLORY_ID = (DeviceIdentity.generate() for _ in range(3))
ALICE, BOB = Party("@alice", ALICE_ID.device_id), Party("@bob", BOB_ID.device_id)
KEYS = {ALICE: ALICE_ID.ed25519, BOB: BOB_ID.ed25519}


def key_for(user_id: str, device_id: str) -> str | None:
    return KEYS.get(Party(user_id, device_id))


def offer(identity=ALICE_ID, **overrides):
    args = {"call_id": "call-0001", "kind": "offer", "sdp_type": "offer", "sdp": SDP,
            "sender": ALICE, "recipient": BOB, "generation": 1, **overrides}
    return sign_description(identity.sign, **args).to_payload()


def check(payload, **overrides):
    args = {"key_for": key_for, "call_id": "call-0001", "kind": "offer", "sender": ALICE,
            "recipient": BOB, **overrides}
    return verify_description(payload, **args)


def test_fingerprints_are_normalised_and_unique():
    assert fingerprints(SDP) == ("sha-256 AB:CD:EF:01",)


def test_a_good_offer_verifies():
    assert check(offer()).fingerprints == ("sha-256 AB:CD:EF:01",)


@pytest.mark.parametrize(("change", "error"), [
    (lambda p: {**p, "sdp": p["sdp"].replace("AB:CD:EF:01", "00:CD:EF:01")},
     FingerprintMismatch),
    (lambda p: {**p, "sdp": p["sdp"].replace("AB:CD:EF:01", "00:CD:EF:01").replace(
        "ab:cd:ef:01", "00:cd:ef:01"), "fingerprints": ["sha-256 00:CD:EF:01"]},
     SignatureInvalid),
    (lambda p: {**p, "sdp": p["sdp"].replace("a=setup:actpass", "a=setup:active")},
     SignatureInvalid),
    (lambda p: {**p, "generation": 2}, SignatureInvalid),
    (lambda p: {**p, "signature": offer(MALLORY_ID)["signature"]}, SignatureInvalid),
    (lambda p: {**p, "signature": "not base64"}, SignatureInvalid),
    (lambda p: {k: v for k, v in p.items() if k != "ts_ms"}, MalformedDescription),
    (lambda p: {**p, "sdp_type": "answer"}, MalformedDescription),
    (lambda p: "text", MalformedDescription),
])
def test_tampering_is_refused(change, error):
    with pytest.raises(error):
        check(change(offer()))


def test_the_key_comes_from_our_directory_only():
    with pytest.raises(UnknownPeerDevice):
        check(offer(MALLORY_ID, sender=Party("@mallory", MALLORY_ID.device_id)),
              sender=Party("@mallory", MALLORY_ID.device_id))
    # Mallory signs a statement naming Alice: Alice's key does not verify it.
    with pytest.raises(SignatureInvalid):
        check(offer(MALLORY_ID))


def test_bound_to_call_recipient_and_direction():
    with pytest.raises(SignatureInvalid):
        check(offer(), call_id="call-0002")
    with pytest.raises(SignatureInvalid):
        check(offer(), recipient=Party("@carol", "dev-carol"))
    with pytest.raises(SignatureInvalid):  # an offer replayed as an answer
        check({**offer(), "sdp_type": "answer"}, kind="answer")


def test_stale_or_replayed_generations_are_refused():
    with pytest.raises(StaleDescription):
        check(offer(now_ms=1_000))
    with pytest.raises(StaleDescription):
        check(offer(), min_generation=2)


def test_verification_code_is_symmetric_and_changes_with_either_side():
    a, b = ("sha-256 AA",), ("sha-256 BB",)
    code = verification_code("call-0001", a, b)
    assert code == verification_code("call-0001", b, a)
    assert code != verification_code("call-0001", a, ("sha-256 CC",))
    assert code != verification_code("call-0002", a, b)
    assert len(code) == 7 and code[3] == " "
