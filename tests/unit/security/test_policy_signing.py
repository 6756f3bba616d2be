"""Signed machine policy: a good one applies; unsigned, altered, unknown-signer, expired and
reformatted ones are refused with their own message, and load_policy falls back to defaults."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import Policy, load_policy
from app.core.errors import PolicyError
from app.security.policy_signing import (
    canonical_json,
    load_trusted_keys,
    make_policy_verifier,
    public_key_b64,
    sign_policy,
    system_policy_verifier,
    trusted_keys_json,
    trusted_keys_path,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SETTINGS = {"server_url": "https://consult.example:8443", "kiosk": True, "lock_timeout_s": 120,
            "pinned_ca_pem": "-----BEGIN CERTIFICATE-----\nÄ\n-----END CERTIFICATE-----\n"}


@pytest.fixture(scope="module")
def it_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def trusted(it_key) -> dict[str, str]:
    return {"it-2026": public_key_b64(it_key)}


@pytest.fixture(scope="module")
def signed(it_key) -> bytes:
    return sign_policy(SETTINGS, it_key, "it-2026", NOW + timedelta(days=30))


def verifier(trusted, now=NOW):
    return make_policy_verifier(trusted, now=lambda: now)


def refusal(raw: bytes, trusted) -> str:
    with pytest.raises(PolicyError) as info:
        verifier(trusted)(raw)
    return str(info.value)


def test_canonical_json_is_sorted_compact_utf8():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_a_good_policy_loads_through_load_policy_and_applies(tmp_path, signed, trusted):
    path = tmp_path / "policy.json"
    path.write_bytes(signed)
    loaded = load_policy(path, verify=verifier(trusted))
    assert loaded.problem == ""
    assert loaded.policy.kiosk is True
    assert loaded.policy.lock_timeout_s == 120
    assert loaded.policy.server_url == "https://consult.example:8443"
    assert loaded.policy.signer == "it-2026"
    assert loaded.policy.source == str(path)


def test_the_file_without_its_trailing_newline_is_accepted(signed, trusted):
    assert verifier(trusted)(signed.rstrip(b"\n"))[1] == "it-2026"


def test_an_unsigned_policy_is_refused_and_defaults_apply(tmp_path, trusted):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(SETTINGS))
    loaded = load_policy(path, verify=verifier(trusted))
    assert loaded.policy == Policy()
    assert "policy is not signed" in loaded.problem
    assert str(path) in loaded.problem


def test_a_badly_signed_policy_is_refused(signed, trusted):
    data = json.loads(signed)
    data["policy"]["kiosk"] = False  # a value changed after signing
    message = refusal(canonical_json(data), trusted)
    assert "signature does not verify" in message and "changed after signing" in message


def test_a_garbage_signature_is_refused(signed, trusted):
    data = json.loads(signed)
    data["signature"] = "not base64!"
    assert "signature does not verify" in refusal(canonical_json(data), trusted)


def test_a_policy_signed_by_an_unknown_key_is_refused(signed):
    stranger = {"other": public_key_b64(Ed25519PrivateKey.generate())}
    message = refusal(signed, stranger)
    assert "unknown key 'it-2026'" in message and "trusts: other" in message


def test_a_known_id_with_someone_elses_key_is_refused(trusted):
    forged = sign_policy(SETTINGS, Ed25519PrivateKey.generate(), "it-2026",
                         NOW + timedelta(days=1))
    assert "signature does not verify" in refusal(forged, trusted)


def test_an_expired_policy_is_refused(it_key, trusted, tmp_path):
    old = sign_policy(SETTINGS, it_key, "it-2026", NOW - timedelta(seconds=1))
    message = refusal(old, trusted)
    assert "policy expired at 2026-11-22T11:59:59Z" in message and "sign a fresh one" in message
    path = tmp_path / "policy.json"
    path.write_bytes(old)
    loaded = load_policy(path, verify=verifier(trusted))
    assert loaded.policy == Policy() and "expired" in loaded.problem


def test_expiry_is_checked_against_the_clock(signed, trusted):
    assert verifier(trusted, NOW + timedelta(days=29))(signed)[1] == "it-2026"
    with pytest.raises(PolicyError, match="expired"):
        verifier(trusted, NOW + timedelta(days=30))(signed)


def test_a_reformatted_file_is_refused_even_with_a_valid_signature(signed, trusted):
    pretty = json.dumps(json.loads(signed), indent=2).encode()
    assert "reformatted or edited after signing" in refusal(pretty, trusted)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(extra=1), "unexpected field(s) extra"),
        (lambda d: d.pop("expires"), "missing field(s) expires"),
        (lambda d: d.update(policy=[1]), "policy must be an object"),
    ],
)
def test_a_malformed_envelope_is_refused(signed, trusted, mutate, expected):
    data = json.loads(signed)
    mutate(data)
    assert expected in refusal(canonical_json(data), trusted)


def test_not_json_is_refused(trusted):
    assert "not valid JSON" in refusal(b"\xff{", trusted)


def test_rotation_old_and_new_keys_are_both_trusted(it_key, signed):
    new_key = Ed25519PrivateKey.generate()
    keys = {"it-2026": public_key_b64(it_key), "it-2027": public_key_b64(new_key)}
    by_new = sign_policy(SETTINGS, new_key, "it-2027", NOW + timedelta(days=1))
    assert verifier(keys)(signed)[1] == "it-2026"
    assert verifier(keys)(by_new)[1] == "it-2027"
    # Once the old key is retired, what it signed is refused.
    assert "unknown key 'it-2026'" in refusal(signed, {"it-2027": keys["it-2027"]})


def test_a_signed_policy_with_invalid_settings_is_refused_by_load_policy(it_key, trusted,
                                                                         tmp_path):
    path = tmp_path / "policy.json"
    path.write_bytes(sign_policy({"lock_timeout_s": 5}, it_key, "it-2026", NOW + timedelta(1)))
    loaded = load_policy(path, verify=verifier(trusted))
    assert loaded.policy == Policy() and "lock_timeout_s" in loaded.problem


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_is_refused(signed, trusted, data):
    position = data.draw(st.integers(0, len(signed) - 1), label="position")
    value = data.draw(st.integers(0, 255).filter(lambda b: b != signed[position]), label="byte")
    changed = bytearray(signed)
    changed[position] = value
    with pytest.raises(PolicyError):
        verifier(trusted)(bytes(changed))


# -- trusted keys file ----------------------------------------------------------------------


def test_trusted_keys_live_next_to_the_policy():
    assert trusted_keys_path().name == "trusted-keys.json"
    from app.config import system_policy_path

    assert trusted_keys_path().parent == system_policy_path().parent


def test_load_trusted_keys_round_trip(tmp_path, trusted):
    path = tmp_path / "trusted-keys.json"
    path.write_bytes(trusted_keys_json(trusted))
    assert load_trusted_keys(path) == trusted


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no trusted IT keys at"),
        (b"{", "not valid JSON"),
        (b'{"it": "x"}', '{"keys"'),
        (b'{"keys": {}}', "lists no keys"),
        (b'{"keys": {"it": "bm90IGEga2V5"}}', "is not an Ed25519 public key"),
        (b'{"keys": {"it": 5}}', "must map to a base64 public key"),
    ],
)
def test_load_trusted_keys_errors_are_clear(tmp_path, content, expected):
    path = tmp_path / "trusted-keys.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PolicyError, match=expected.replace("{", r"\{")) as info:
        load_trusted_keys(path)
    assert str(path) in str(info.value)


def test_make_policy_verifier_rejects_a_bad_trusted_key():
    with pytest.raises(PolicyError, match="'it' is not an Ed25519"):
        make_policy_verifier({"it": base64.b64encode(b"short").decode()})


def test_system_policy_verifier_without_trusted_keys_refuses_with_the_reason(tmp_path, signed):
    policy = tmp_path / "policy.json"
    policy.write_bytes(signed)
    loaded = load_policy(policy, verify=system_policy_verifier(tmp_path / "missing.json"))
    assert loaded.policy == Policy()
    assert "no trusted IT keys at" in loaded.problem


def test_system_policy_verifier_with_trusted_keys_accepts(tmp_path, signed, trusted):
    keys = tmp_path / "trusted-keys.json"
    keys.write_bytes(trusted_keys_json(trusted))
    policy = tmp_path / "policy.json"
    policy.write_bytes(signed)
    loaded = load_policy(policy, verify=system_policy_verifier(keys, now=lambda: NOW))
    assert loaded.problem == "" and loaded.policy.signer == "it-2026"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"expires":"x","policy":{"a":NaN},"signature":"","signed_by":"it-2026"}',
        b'{"policy":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"policy":{"a":' + b"9" * 5000 + b"}}",
    ],
    ids=["nan", "deep", "huge-int"],
)
def test_hostile_json_is_a_policy_error_not_a_crash(trusted, raw):
    assert "not valid JSON" in refusal(raw, trusted)


def test_a_signature_spelled_differently_is_refused(signed, trusted):
    # The last base64 character before "==" carries 4 unused bits: "...Q==" and "...R=="
    # decode to the same 64 bytes. Only the spelling the signing tool wrote is accepted, so a
    # changed byte anywhere in the file is refused (the hypothesis test above found this).
    envelope = json.loads(signed)
    sig = envelope["signature"]
    assert sig.endswith("==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(sig[-3])
    twin = sig[:-3] + alphabet[last ^ 1] + "=="
    assert base64.b64decode(twin) == base64.b64decode(sig)
    changed = signed.replace(sig.encode(), twin.encode())
    with pytest.raises(PolicyError):
        verifier(trusted)(changed)
