"""The attachment descriptor: signing, verification and a parser that gives one clear error
for anything malformed (hypothesis: random JSON, random text, mutated valid descriptors)."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.crypto.files import ChunkCipher, new_file_key
from app.crypto.identity import DeviceIdentity, b64
from app.services.transfers import (
    AttachmentDescriptor,
    DescriptorInvalid,
    KnownDevice,
    ManifestSignatureInvalid,
    TransferError,
    parse_descriptor,
)

ALICE = DeviceIdentity.generate()
MALLORY = DeviceIdentity.generate()
SENDER = KnownDevice("user-alice-0001", ALICE.device_id, ALICE.ed25519)


def make(name: str = "CT Kopf Müller.dcm", size: int = 1_000_000,
         **changes) -> AttachmentDescriptor:
    key = new_file_key()
    cipher = ChunkCipher.new(key, length=size, chunk_size=256 * 1024)
    fields = dict(room_id="room-00000000000000000001", blob_id="blob-000000000000000000001",
                  sender_user=SENDER.user_id, sender_device=SENDER.device_id, key=key,
                  header=cipher.header, sha256="ab" * 32, name=name, mime="application/dicom",
                  ts_ms=1_700_000_000_000, sign=ALICE.sign)
    return AttachmentDescriptor.create(**(fields | changes))


VALID = make()
WIRE = VALID.to_wire()


def test_round_trip_through_json_and_verify():
    parsed = parse_descriptor(VALID.to_json())
    assert parsed == VALID
    parsed.verify(SENDER)
    assert parsed.size == 1_000_000 and parsed.chunk_count == 4
    assert parsed.blob_size == 1_000_000 + 4 * 16
    assert parsed.name.reveal() == "CT Kopf Müller.dcm"
    # The name and key never show in a repr, a str or an error.
    assert "Müller" not in repr(parsed) and parsed.key.hex() not in repr(parsed)


def test_signed_bytes_are_domain_separated_and_canonical():
    signed = VALID.signed_bytes()
    assert signed.startswith(b"SC-FILE-v1\n")
    body = json.loads(signed[len(b"SC-FILE-v1\n"):])
    assert "signature" not in body and body["type"] == "sc.file.v1"
    # Key order in the received JSON does not matter.
    shuffled = json.dumps(dict(reversed(list(WIRE.items()))))
    parse_descriptor(shuffled).verify(SENDER)


@pytest.mark.parametrize("field,value", [
    ("room_id", "room-other"), ("blob_id", "blob-other"), ("sha256", "cd" * 32),
    ("name", "other.dcm"), ("mime", "image/png"), ("ts_ms", 1), ("sender_user", "user-x"),
])
def test_any_edited_field_breaks_the_signature(field, value):
    edited = parse_descriptor(WIRE | {field: value})
    with pytest.raises(ManifestSignatureInvalid):
        edited.verify_key(SENDER.ed25519)


def test_another_device_or_key_does_not_verify():
    with pytest.raises(ManifestSignatureInvalid):
        VALID.verify(KnownDevice(SENDER.user_id, SENDER.device_id, MALLORY.ed25519))
    with pytest.raises(ManifestSignatureInvalid):
        VALID.verify(KnownDevice(SENDER.user_id, "OTHERDEVICE", ALICE.ed25519))
    forged = make(sign=MALLORY.sign)
    with pytest.raises(ManifestSignatureInvalid):
        forged.verify(SENDER)


@pytest.mark.parametrize("bad", [
    b"", b"[]", b"null", b"{", "{}", json.dumps(WIRE | {"extra": 1}),
    json.dumps({k: v for k, v in WIRE.items() if k != "key"}),
    json.dumps(WIRE | {"type": "sc.file.v2"}), json.dumps(WIRE | {"size": 5}),
    json.dumps(WIRE | {"size": True}), json.dumps(WIRE | {"key": "!!"}),
    json.dumps(WIRE | {"key": "AAAA"}), json.dumps(WIRE | {"header": "AAAA"}),
    json.dumps(WIRE | {"name": "../../etc/passwd"}), json.dumps(WIRE | {"name": ""}),
    json.dumps(WIRE | {"name": "a\x00b"}), json.dumps(WIRE | {"mime": "not a mime"}),
    json.dumps(WIRE | {"sha256": "AB" * 32}), json.dumps(WIRE | {"room_id": "a/b"}),
    json.dumps(WIRE | {"signature": "short"}), json.dumps(WIRE)[:-1] + ',"name":"x"}',
    '{"size": NaN}', "x" * 20_000, json.dumps(WIRE | {"name": "\ud800.dcm"}),
])
def test_malformed_descriptors_get_one_clear_error(bad):
    with pytest.raises(DescriptorInvalid) as caught:
        parse_descriptor(bad)
    assert caught.value.user_message == DescriptorInvalid.user_message
    assert "passwd" not in str(caught.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_random_json_is_refused_clearly(value):
    with pytest.raises(DescriptorInvalid):
        parse_descriptor(json.dumps(value))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_random_input_is_refused_clearly(data):
    with pytest.raises(DescriptorInvalid):
        parse_descriptor(data)


@settings(max_examples=250, deadline=None)
@given(st.sampled_from(sorted(WIRE)), json_values, st.booleans())
def test_a_mutated_descriptor_is_refused_or_fails_verification(field, value, drop):
    """Any change to a valid descriptor: a clear parse error, or a signature that does not
    verify. Never accepted, never another exception."""
    mutated = dict(WIRE)
    if drop:
        del mutated[field]
    elif value == WIRE[field]:
        return
    else:
        mutated[field] = value
    try:
        parsed = parse_descriptor(json.dumps(mutated))
    except DescriptorInvalid:
        return
    with pytest.raises(ManifestSignatureInvalid):
        parsed.verify(SENDER)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(VALID.to_json()) - 1), st.integers(1, 255))
def test_a_flipped_byte_anywhere_is_refused(position, xor):
    raw = bytearray(VALID.to_json().encode())
    raw[position] ^= xor
    try:
        parsed = parse_descriptor(bytes(raw))
        parsed.verify(SENDER)
    except TransferError:
        return
    # The only accepted flips leave the parsed value unchanged (e.g. JSON whitespace).
    assert parsed == VALID


def test_sizes_beyond_the_server_limits_are_refused():
    # The sender's own create() parses what it made, so it cannot sign one either.
    with pytest.raises(DescriptorInvalid):
        make(size=3 * 1024**3)


def test_the_key_size_is_checked_against_the_suite():
    with pytest.raises(DescriptorInvalid):
        parse_descriptor(WIRE | {"key": b64(os.urandom(16))})
