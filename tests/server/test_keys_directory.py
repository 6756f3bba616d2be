"""Key directory over real TLS: publish/claim one-time and fallback keys, device lists with
verifiable self-signatures, device-list versions."""

from __future__ import annotations

import asyncio

import pytest
import vodozemac

from app.core.errors import ServerError
from app.crypto.identity import verify_ed25519
from server_stub import admin
from tests.support.clients import (
    create_user,
    enroll,
    enrollment_message,
    new_user_device,
    server_db,
)


def signed_keys(dev, keys: dict) -> list[dict]:
    out = []
    for key_id, key in keys.items():
        b64 = key.to_base64()
        message = f"SC-OTK-v1\n{dev.device_id}\n{key_id}\n{b64}".encode()
        out.append({"key_id": key_id, "key": b64, "signature": dev.identity.sign(message)})
    return out


async def publish(dev, count: int, fallback: bool = False) -> dict:
    account = dev.identity.account
    account.generate_one_time_keys(count)
    body = {"one_time_keys": signed_keys(dev, account.one_time_keys)}
    if fallback:
        account.generate_fallback_key()
        body["fallback_key"] = signed_keys(dev, account.fallback_key)[0]
    result = await dev.transport.post_json("/v1/keys/upload", body)
    account.mark_keys_as_published()
    return result


async def _refused(coro) -> ServerError:
    with pytest.raises(ServerError) as err:
        await coro
    return err.value


async def test_publish_count_claim_then_fallback(open_server):
    _, alice = await new_user_device(open_server, "alice")
    _, bob = await new_user_device(open_server, "bob")
    try:
        counts = await publish(alice, 3, fallback=True)
        assert counts == {"one_time_key_count": 3, "has_fallback_key": True}
        seen = set()
        for _ in range(3):
            claim = await bob.transport.post_json("/v1/keys/claim",
                                                  {"device_ids": [alice.device_id]})
            key = claim["keys"][alice.device_id]
            assert key["fallback"] is False and key["key_id"] not in seen
            seen.add(key["key_id"])
            message = f"SC-OTK-v1\n{alice.device_id}\n{key['key_id']}\n{key['key']}".encode()
            assert verify_ed25519(alice.identity.ed25519, message, key["signature"])
        assert (await alice.transport.get_json("/v1/keys/count"))["one_time_key_count"] == 0
        claim = await bob.transport.post_json("/v1/keys/claim", {"device_ids": [alice.device_id]})
        assert claim["keys"][alice.device_id]["fallback"] is True
        claim = await bob.transport.post_json("/v1/keys/claim",
                                              {"device_ids": ["A" * 22, alice.device_id]})
        assert claim["missing"] == ["A" * 22] and alice.device_id in claim["keys"]
        # The claimed key really opens an Olm session that alice can read.
        outbound = bob.identity.account.create_outbound_session(
            vodozemac.Curve25519PublicKey.from_base64(alice.identity.curve25519),
            vodozemac.Curve25519PublicKey.from_base64(claim["keys"][alice.device_id]["key"]))
        message = outbound.encrypt(b"hello").to_pre_key()
        _, plaintext = alice.identity.account.create_inbound_session(
            vodozemac.Curve25519PublicKey.from_base64(bob.identity.curve25519), message)
        assert plaintext == b"hello"
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_parallel_claims_never_share_a_one_time_key(open_server):
    _, alice = await new_user_device(open_server, "alice")
    _, bob = await new_user_device(open_server, "bob")
    try:
        await publish(alice, 20)
        claims = await asyncio.gather(*[
            bob.transport.post_json("/v1/keys/claim", {"device_ids": [alice.device_id]})
            for _ in range(20)])
        ids = [c["keys"][alice.device_id]["key_id"] for c in claims]
        assert len(set(ids)) == 20
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_upload_refuses_bad_signatures_and_bad_keys(open_server):
    _, alice = await new_user_device(open_server, "alice")
    _, bob = await new_user_device(open_server, "bob")
    try:
        account = alice.identity.account
        account.generate_one_time_keys(1)
        good = signed_keys(alice, account.one_time_keys)[0]
        forged = {**good, "signature": signed_keys(bob, account.one_time_keys)[0]["signature"]}
        err = await _refused(alice.transport.post_json("/v1/keys/upload",
                                                       {"one_time_keys": [forged]}))
        assert (err.status, err.code) == (400, "signature_invalid")
        err = await _refused(alice.transport.post_json(
            "/v1/keys/upload", {"one_time_keys": [{**good, "key": "A" * 42 + "B"}]}))
        assert err.status in (400, 422)
        err = await _refused(alice.transport.post_json("/v1/keys/upload",
                                                       {"one_time_keys": [good, good]}))
        assert (err.status, err.code) == (422, "malformed")
        assert (await alice.transport.get_json("/v1/keys/count"))["one_time_key_count"] == 0
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_directory_lists_active_devices_with_verifiable_self_signatures(open_server):
    creds, alice = await new_user_device(open_server, "alice")
    _, bob = await new_user_device(open_server, "bob")
    try:
        found = await bob.transport.get_json("/v1/users/by-name/alice")
        assert found["user_id"] == creds.user_id and found["role"] == "physician"
        listing = await bob.transport.get_json(f"/v1/users/{creds.user_id}/devices")
        [device] = listing["devices"]
        assert device["device_id"] == alice.device_id
        message = enrollment_message(device["device_id"], listing["username"], device["ed25519"],
                                     device["curve25519"], device["enroll_ts_ms"])
        assert verify_ed25519(device["ed25519"], message, device["enroll_signature"])
        err = await _refused(bob.transport.get_json("/v1/users/by-name/nobody"))
        assert (err.status, err.code) == (404, "not_found")
        err = await _refused(bob.transport.get_json(f"/v1/users/{'Z' * 22}/devices"))
        assert (err.status, err.code) == (404, "not_found")
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_device_list_version_changes_with_the_directory(open_server):
    creds, alice = await new_user_device(open_server, "alice")
    _, bob = await new_user_device(open_server, "bob")
    db = server_db(open_server)
    try:
        async def version() -> int:
            result = await bob.transport.post_json(
                "/v1/users/device-versions", {"user_ids": [creds.user_id, "Q" * 22]})
            assert set(result["versions"]) == {creds.user_id}
            return result["versions"][creds.user_id]

        v1 = await version()
        second = await enroll(open_server, creds.username, creds.password, creds.totp_secret)
        v2 = await version()
        assert v2 > v1
        admin.revoke_device(db, second.device_id, wipe=False)
        v3 = await version()
        assert v3 > v2
        listing = await bob.transport.get_json(f"/v1/users/{creds.user_id}/devices")
        assert [d["device_id"] for d in listing["devices"]] == [alice.device_id]
        await second.aclose()
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_pending_device_is_not_in_the_directory_until_approved(server):
    carol = create_user(server, "carol")
    _, bob = await new_user_device(server, "bob")
    pending = await enroll(server, carol.username, carol.password, carol.totp_secret)
    try:
        listing = await bob.transport.get_json(f"/v1/users/{carol.user_id}/devices")
        assert listing["devices"] == []
        admin.approve_device(server_db(server), pending.device_id)
        listing = await bob.transport.get_json(f"/v1/users/{carol.user_id}/devices")
        assert [d["device_id"] for d in listing["devices"]] == [pending.device_id]
    finally:
        await pending.aclose()
        await bob.aclose()
