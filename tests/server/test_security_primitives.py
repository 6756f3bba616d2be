"""Pure server-side primitives: TOTP step rules, backoff, base64 strictness, proof parsing,
signatures, password hashing, the per-address limiter -- checked against independent
implementations (pyotp for RFC 6238, the client's signer for proofs)."""

from __future__ import annotations

import base64
import itertools
import time

import pyotp
from hypothesis import given
from hypothesis import strategies as st

from app.crypto.identity import DeviceIdentity
from app.crypto.proof import ProofSigner
from app.crypto.proof import proof_message as client_proof_message
from server_stub.core import security

SECRET = pyotp.random_base32(32)


@given(now=st.integers(min_value=10**9, max_value=4 * 10**9), offset=st.integers(-3, 3))
def test_totp_accepts_exactly_the_adjacent_steps(now, offset):
    code = pyotp.TOTP(SECRET).at(now + offset * 30)
    step = security.match_totp_step(SECRET, code, now, last_step=0)
    current = now // 30
    if abs(offset) <= 1:
        # Another step in the window may collide on the same 6 digits (rarely): then the
        # newest matching step is returned, still within the window.
        assert step is not None and abs(step - current) <= 1
    else:
        assert step is None or abs(step - current) <= 1


@given(now=st.integers(min_value=10**9, max_value=4 * 10**9))
def test_a_used_step_and_older_ones_are_refused(now):
    totp, current = pyotp.TOTP(SECRET), now // 30
    code = totp.at(now)
    assert security.match_totp_step(SECRET, code, now, last_step=current) in (None, current + 1)
    assert security.match_totp_step(SECRET, totp.at(now - 30), now, last_step=current) in (
        None, current + 1)
    assert security.match_totp_step(SECRET, code, now, last_step=current - 1) in (
        current, current + 1)


@given(code=st.text(max_size=10))
def test_malformed_codes_never_match(code):
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        assert security.match_totp_step(SECRET, code, time.time(), 0) is None


def test_backoff_grows_and_is_capped():
    delays = [security.backoff_ms(n, 500) for n in range(1, 12)]
    assert delays[0] == 0 and delays[1] == 500 and delays[2] == 1000
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert max(delays) == security.BACKOFF_CAP_MS
    assert security.backoff_ms(100, 0) == 0


@given(raw=st.binary(min_size=0, max_size=64))
def test_unb64_roundtrip_and_strictness(raw):
    text = base64.b64encode(raw).decode().rstrip("=")
    if text:
        assert security.unb64(text) == raw
    assert security.unb64(text + "=") is None or text == ""
    assert security.unb64(base64.urlsafe_b64encode(raw).decode().rstrip("=")) in (raw, None)


def test_keys_must_be_32_bytes():
    identity = DeviceIdentity.generate()
    assert security.is_key_b64(identity.ed25519) and security.is_key_b64(identity.curve25519)
    assert not security.is_key_b64(identity.ed25519[:-1])
    assert not security.is_key_b64(identity.ed25519 + "=")
    assert not security.is_key_b64("!" * 43)


@given(body=st.binary(max_size=256), path=st.text(min_size=1, max_size=40),
       token=st.sampled_from(["", "tok-" + "x" * 40]))
def test_server_verifies_exactly_what_the_client_signs(body, path, token):
    identity = DEVICE  # one key: generating one per example would dominate the run
    headers = ProofSigner(identity).proof_headers("POST", path, body, token)
    proof = security.parse_proof(headers["X-SC-Proof"])
    assert security.proof_message("POST", path, proof.ts_ms, proof.nonce, body, token) == \
        client_proof_message("POST", path, proof.ts_ms, proof.nonce, body, token)
    security.check_proof_signature(proof, ed25519=identity.ed25519, method="POST", path=path,
                                   body=body, token=token, window_ms=60_000,
                                   now=security.now_ms())
    try:
        security.check_proof_signature(proof, ed25519=identity.ed25519, method="POST",
                                       path=path, body=body + b"x", token=token,
                                       window_ms=60_000, now=security.now_ms())
    except security.ProofError as exc:
        assert exc.code == "proof_invalid"
    else:
        raise AssertionError("a changed body verified")


DEVICE = DeviceIdentity.generate()


@given(header=st.text(max_size=300))
def test_parse_proof_refuses_junk(header):
    try:
        proof = security.parse_proof(header)
    except security.ProofError as exc:
        assert exc.code == "proof_invalid"
    else:
        assert header.startswith("v1.") and proof.nonce in header


def test_signatures_do_not_verify_with_other_keys_or_garbage():
    a, b = DeviceIdentity.generate(), DeviceIdentity.generate()
    sig = a.sign(b"message")
    assert security.verify_ed25519(a.ed25519, b"message", sig)
    assert not security.verify_ed25519(b.ed25519, b"message", sig)
    assert not security.verify_ed25519(a.ed25519, b"messagf", sig)
    assert not security.verify_ed25519("garbage", b"message", sig)
    assert not security.verify_ed25519(a.ed25519, b"message", sig[:-2])


def test_password_hash_is_argon2id_and_unknown_users_never_verify():
    stored = security.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert security.verify_password(stored, "correct horse battery")
    assert not security.verify_password(stored, "correct horse batterY")
    assert not security.verify_password(None, "correct horse battery")
    assert not security.verify_password("not a hash", "x")


def test_source_limiter_counts_per_address():
    limiter = security.SourceLimiter()
    for _ in range(3):
        assert limiter.retry_after_s("10.0.0.1", 3, 60) == 0
        limiter.record_failure("10.0.0.1", 60)
    assert limiter.retry_after_s("10.0.0.1", 3, 60) >= 1
    assert limiter.retry_after_s("10.0.0.2", 3, 60) == 0


def test_ids_never_start_with_a_dash_and_match_the_id_pattern():
    # IT types ids into `admin grant add --room ID`: a leading dash reads as an option there.
    import re

    from server_stub.core.security import new_id

    ids = {new_id() for _ in range(3000)}
    assert len(ids) == 3000
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", i) for i in ids)
