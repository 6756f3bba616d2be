"""Encrypted blob store over real TLS: resumable upload, finalize checks, member-only
download (audited), bounds on every number a client sends."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.server import relay_support
from tests.server.relay_support import make_room, refused
from tests.support.clients import server_db

crowd = relay_support.crowd  # fixture

MAX_CHUNK = 64 * 1024
MAX_BLOB = 1 << 20


@pytest.fixture
def blob_server(make_server):
    return make_server(require_device_approval=False, login_backoff_base_ms=0,
                       max_chunk_bytes=MAX_CHUNK, max_blob_bytes=MAX_BLOB)


def _create(data: bytes, room_id: str, chunk: int, **override) -> dict:
    body = {"room_id": room_id, "total_size": len(data), "chunk_size": chunk,
            "chunk_count": -(-len(data) // chunk), "sha256": hashlib.sha256(data).hexdigest()}
    body.update(override)
    return body


async def _put(dev, blob_id: str, index: int, data: bytes):
    return await dev.transport.request(
        "PUT", f"/v1/blobs/{blob_id}/chunks/{index}", content=data,
        headers={"Content-Type": "application/octet-stream"})


async def _upload(dev, blob_id: str, data: bytes, chunk: int, indexes) -> None:
    for i in indexes:
        await _put(dev, blob_id, i, data[i * chunk:(i + 1) * chunk])


async def test_resumable_upload_then_member_download(blob_server, crowd):
    alice, bob = await crowd(blob_server, "alice", "bob")
    room_id = await make_room(alice, bob, role="observer")
    data = os.urandom(100_000)
    chunk = 30_000
    blob = await alice.transport.post_json("/v1/blobs", _create(data, room_id, chunk))
    blob_id = blob["blob_id"]
    assert blob["state"] == "uploading" and blob["present_chunks"] == []
    # "Connection drops" after chunks 0 and 2; the client asks what is there and resumes.
    await _upload(alice, blob_id, data, chunk, [0, 2])
    status = await alice.transport.get_json(f"/v1/blobs/{blob_id}")
    assert status["present_chunks"] == [0, 2]
    err = await refused(alice.transport.post_json(f"/v1/blobs/{blob_id}/finalize", {}))
    assert (err.status, err.code) == (409, "chunks_missing")
    err = await refused(bob.transport.get_json(f"/v1/blobs/{blob_id}/chunks/0"))
    assert (err.status, err.code) == (409, "blob_incomplete")
    await _upload(alice, blob_id, data, chunk, [1, 3])
    done = await alice.transport.post_json(f"/v1/blobs/{blob_id}/finalize", {})
    assert done["state"] == "complete"
    # Observers may download (but not upload); what comes back is exactly what went up.
    got = b"".join([
        (await bob.transport.request("GET", f"/v1/blobs/{blob_id}/chunks/{i}")).content
        for i in range(4)])
    assert got == data
    downloads = server_db(blob_server).connection().execute(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'blob.download' AND actor_user_id = ?",
        (bob.user_id,)).fetchone()[0]
    assert downloads == 4
    # Complete blobs are immutable.
    err = await refused(_put(alice, blob_id, 0, data[:chunk]))
    assert (err.status, err.code) == (409, "blob_complete")
    # Files on disk are the ciphertext as sent, nothing else.
    on_disk = sorted((blob_server.settings.blob_dir / blob_id).iterdir())
    assert b"".join(p.read_bytes() for p in on_disk) == data


async def test_non_member_and_observer_limits(blob_server, crowd):
    alice, bob, mallory = await crowd(blob_server, "alice", "bob", "mallory")
    room_id = await make_room(alice, bob, role="observer")
    data = b"\x42" * 1000
    blob_id = (await alice.transport.post_json("/v1/blobs", _create(data, room_id, 1000)))[
        "blob_id"]
    await _put(alice, blob_id, 0, data)
    await alice.transport.post_json(f"/v1/blobs/{blob_id}/finalize", {})
    for call in (mallory.transport.get_json(f"/v1/blobs/{blob_id}"),
                 mallory.transport.request("GET", f"/v1/blobs/{blob_id}/chunks/0"),
                 _put(mallory, blob_id, 0, data),
                 mallory.transport.post_json("/v1/blobs", _create(data, room_id, 1000)),
                 mallory.transport.get_json("/v1/blobs/AAAAAAAAAAAAAAAAAAAAAA")):
        err = await refused(call)
        assert err.status == 403, err
    err = await refused(bob.transport.post_json("/v1/blobs", _create(data, room_id, 1000)))
    assert (err.status, err.code) == (403, "forbidden")


async def test_finalize_detects_size_and_hash_mismatch(blob_server, crowd):
    (alice,) = await crowd(blob_server, "alice")
    room_id = await make_room(alice)
    data = os.urandom(2500)
    wrong_hash = await alice.transport.post_json(
        "/v1/blobs", _create(data, room_id, 1000, sha256="0" * 64))
    await _upload(alice, wrong_hash["blob_id"], data, 1000, range(3))
    err = await refused(alice.transport.post_json(
        f"/v1/blobs/{wrong_hash['blob_id']}/finalize", {}))
    assert (err.status, err.code) == (409, "hash_mismatch")
    # Still open: the client can re-upload a bad chunk and finalize again.
    assert (await alice.transport.get_json(f"/v1/blobs/{wrong_hash['blob_id']}"))[
        "state"] == "uploading"
    short = await alice.transport.post_json("/v1/blobs", _create(data, room_id, 1000))
    await _upload(alice, short["blob_id"], data[:2400], 1000, range(3))
    err = await refused(alice.transport.post_json(f"/v1/blobs/{short['blob_id']}/finalize", {}))
    assert (err.status, err.code) == (409, "size_mismatch")
    await _put(alice, short["blob_id"], 2, data[2000:])
    done = await alice.transport.post_json(f"/v1/blobs/{short['blob_id']}/finalize", {})
    assert done["state"] == "complete"


async def test_chunk_bounds(blob_server, crowd):
    (alice,) = await crowd(blob_server, "alice")
    room_id = await make_room(alice)
    data = os.urandom(3000)
    blob_id = (await alice.transport.post_json("/v1/blobs", _create(data, room_id, 1000)))[
        "blob_id"]
    for index in (3, 99, 2**40):
        err = await refused(_put(alice, blob_id, index, b"x"))
        assert (err.status, err.code) == (416, "chunk_out_of_range"), index
    err = await refused(alice.transport.request("GET", f"/v1/blobs/{blob_id}/chunks/-1"))
    assert err.status == 416
    err = await refused(_put(alice, blob_id, 0, b"x" * 1001))
    assert (err.status, err.code) == (413, "too_large")
    err = await refused(_put(alice, blob_id, 0, b"x" * (MAX_CHUNK + 1)))
    assert (err.status, err.code) == (413, "too_large")
    err = await refused(_put(alice, blob_id, 0, b""))
    assert (err.status, err.code) == (400, "malformed")
    err = await refused(alice.transport.request("PUT", f"/v1/blobs/{blob_id}/chunks/zero",
                                                content=b"x"))
    assert err.code == "malformed"


@pytest.mark.parametrize("override", [
    {"total_size": 0},
    {"chunk_count": 7},
    {"chunk_size": MAX_CHUNK + 1, "chunk_count": 1},
    {"total_size": MAX_BLOB + 1, "chunk_size": MAX_CHUNK, "chunk_count": 17},
    {"sha256": "XYZ"},
    {"total_size": "3000"},
    {"room_id": ""},
    {"unexpected": 1},
])
async def test_create_blob_malformed(blob_server, crowd, override):
    (alice,) = await crowd(blob_server, "alice")
    room_id = await make_room(alice)
    body = {**_create(b"x" * 3000, room_id, 1000), **override}
    err = await refused(alice.transport.post_json("/v1/blobs", body))
    assert err.status in (400, 413, 422) and err.code in ("malformed", "too_large"), err
