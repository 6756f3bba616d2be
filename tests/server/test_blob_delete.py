"""Deleting a blob (a cancelled upload) over real TLS: only the uploading device may, the
rows and the chunk files go, one audit entry, and nothing brings the blob back."""

from __future__ import annotations

import hashlib
import os

import pytest

from server_stub.crud import blobs as blobs_crud
from tests.server import relay_support
from tests.server.relay_support import make_room, refused
from tests.support.clients import server_db

crowd = relay_support.crowd  # fixture

CHUNK = 1000


@pytest.fixture
def blob_server(make_server):
    return make_server(require_device_approval=False, login_backoff_base_ms=0)


async def _started(dev, room_id: str, data: bytes, indexes=(0, 1)) -> str:
    """A blob of ``data`` with the chunks ``indexes`` uploaded."""
    blob = await dev.transport.post_json("/v1/blobs", {
        "room_id": room_id, "total_size": len(data), "chunk_size": CHUNK,
        "chunk_count": -(-len(data) // CHUNK), "sha256": hashlib.sha256(data).hexdigest()})
    for i in indexes:
        await _put(dev, blob["blob_id"], i, data[i * CHUNK:(i + 1) * CHUNK])
    return blob["blob_id"]


async def _put(dev, blob_id: str, index: int, data: bytes):
    return await dev.transport.request(
        "PUT", f"/v1/blobs/{blob_id}/chunks/{index}", content=data,
        headers={"Content-Type": "application/octet-stream"})


async def _delete(dev, blob_id: str):
    return await dev.transport.request("DELETE", f"/v1/blobs/{blob_id}")


def _rows(server, blob_id: str) -> tuple[int, int]:
    conn = server_db(server).connection()
    return (conn.execute("SELECT COUNT(*) FROM blobs WHERE blob_id = ?", (blob_id,)).fetchone()[0],
            conn.execute("SELECT COUNT(*) FROM blob_chunks WHERE blob_id = ?",
                         (blob_id,)).fetchone()[0])


def _deletes(server) -> list[tuple]:
    return [tuple(r) for r in server_db(server).connection().execute(
        "SELECT actor_user_id, device_id, object_type, object_id, outcome FROM audit_log"
        " WHERE action = 'blob.delete' ORDER BY seq")]


async def test_the_uploading_device_deletes_its_blob_and_it_is_gone(blob_server, crowd):
    alice, bob = await crowd(blob_server, "alice", "bob")
    room_id = await make_room(alice, bob)
    blob_id = await _started(alice, room_id, os.urandom(3 * CHUNK))
    directory = blob_server.settings.blob_dir / blob_id
    assert len(list(directory.iterdir())) == 2 and _rows(blob_server, blob_id) == (1, 2)

    answer = (await _delete(alice, blob_id)).json()
    assert answer == {"blob_id": blob_id, "deleted": True}
    assert _rows(blob_server, blob_id) == (0, 0)
    assert not directory.exists()
    assert _deletes(blob_server) == [
        (alice.user_id, alice.device_id, "blob", blob_id, "ok")]

    # Gone for everyone, and refused exactly like an id that never existed.
    unknown = "AAAAAAAAAAAAAAAAAAAAAA"
    for dev, call in ((alice, _delete(alice, blob_id)),
                      (alice, alice.transport.get_json(f"/v1/blobs/{blob_id}")),
                      (bob, bob.transport.get_json(f"/v1/blobs/{blob_id}")),
                      (alice, alice.transport.post_json(f"/v1/blobs/{blob_id}/finalize", {})),
                      (alice, _delete(alice, unknown))):
        err = await refused(call)
        assert (err.status, err.code) == (403, "not_member"), (dev.username, err)
    # A chunk sent after the delete is refused and writes nothing.
    err = await refused(_put(alice, blob_id, 2, b"x" * CHUNK))
    assert (err.status, err.code) == (403, "not_member")
    assert not directory.exists() and _rows(blob_server, blob_id) == (0, 0)
    assert len(_deletes(blob_server)) == 1  # one entry; refusals add none


async def test_a_complete_blob_may_be_deleted_by_its_uploader(blob_server, crowd):
    """The finished but never announced file of a cancelled study share."""
    (alice,) = await crowd(blob_server, "alice")
    room_id = await make_room(alice)
    data = os.urandom(2 * CHUNK)
    blob_id = await _started(alice, room_id, data)
    assert (await alice.transport.post_json(f"/v1/blobs/{blob_id}/finalize", {}))[
        "state"] == "complete"
    await _delete(alice, blob_id)
    assert _rows(blob_server, blob_id) == (0, 0)
    assert not (blob_server.settings.blob_dir / blob_id).exists()
    (entry,) = server_db(blob_server).connection().execute(
        "SELECT detail FROM audit_log WHERE action = 'blob.delete'").fetchall()
    assert '"state":"complete"' in entry[0].replace(" ", "")


async def test_only_the_uploading_device_may_delete(blob_server, crowd):
    alice, bob, mallory = await crowd(blob_server, "alice", "bob", "mallory")
    room_id = await make_room(alice, bob)
    blob_id = await _started(alice, room_id, os.urandom(2 * CHUNK))
    directory = blob_server.settings.blob_dir / blob_id

    # Another member of the room (a writer) may use the blob, not delete it.
    err = await refused(_delete(bob, blob_id))
    assert (err.status, err.code) == (403, "forbidden")
    # Not a member: the same answer as an unknown id (ids are not probeable).
    err = await refused(_delete(mallory, blob_id))
    assert (err.status, err.code) == (403, "not_member")
    # The same user on another device: the owner device is the one that created it.
    with server_db(blob_server).transaction() as conn:
        conn.execute("UPDATE blobs SET owner_device_id = 'another-device-of-alice'"
                     " WHERE blob_id = ?", (blob_id,))
    err = await refused(_delete(alice, blob_id))
    assert (err.status, err.code) == (403, "forbidden")

    assert _rows(blob_server, blob_id) == (1, 2) and len(list(directory.iterdir())) == 2
    assert _deletes(blob_server) == []


async def test_a_blob_being_finalized_is_not_deleted(blob_server, crowd):
    (alice,) = await crowd(blob_server, "alice")
    room_id = await make_room(alice)
    blob_id = await _started(alice, room_id, os.urandom(2 * CHUNK))
    # As while a finalize hashes the chunks (between its two transactions).
    with server_db(blob_server).transaction() as conn:
        conn.execute("UPDATE blobs SET state = 'finalizing' WHERE blob_id = ?", (blob_id,))
    err = await refused(_delete(alice, blob_id))
    assert (err.status, err.code) == (409, "blob_finalizing")
    assert _rows(blob_server, blob_id) == (1, 2)
    assert (blob_server.settings.blob_dir / blob_id).is_dir()
    with server_db(blob_server).transaction() as conn:
        conn.execute("UPDATE blobs SET state = 'uploading' WHERE blob_id = ?", (blob_id,))
    await _delete(alice, blob_id)
    assert _rows(blob_server, blob_id) == (0, 0)


@pytest.mark.parametrize(("bad", "status"), [
    ("x" * 300, 403), ("%00", 403), ("AAAAAAAAAAAAAAAAAAAAA%C3%A9", 403), ("tls", 403),
    # Dot segments never reach the route (the path does not match it).
    ("..", 404), ("%2E%2E%2Fserver.sqlite3", 404),
])
async def test_malformed_ids_are_refused_and_delete_nothing(blob_server, crowd, bad, status):
    """Refused like any unknown id (nothing tells a malformed id from an unknown one)."""
    (alice,) = await crowd(blob_server, "alice")
    room_id = await make_room(alice)
    blob_id = await _started(alice, room_id, os.urandom(2 * CHUNK))
    err = await refused(_delete(alice, bad))
    assert (err.status, err.code) == ((403, "not_member") if status == 403
                                      else (404, "not_found")), err
    assert _rows(blob_server, blob_id) == (1, 2)
    assert (blob_server.settings.blob_dir / blob_id).is_dir()
    assert (blob_server.data_dir / "tls").is_dir()
    assert (blob_server.data_dir / "server.sqlite3").is_file()
    assert _deletes(blob_server) == []


async def test_a_chunk_upload_racing_the_delete_does_not_resurrect_it(blob_server, crowd,
                                                                      monkeypatch):
    """The delete commits between a chunk upload's check and its record step: the chunk is
    refused and the file it wrote removed -- no row, no directory left behind."""
    (alice,) = await crowd(blob_server, "alice")
    room_id = await make_room(alice)
    data = os.urandom(3 * CHUNK)
    blob_id = await _started(alice, room_id, data, indexes=(0,))
    db = server_db(blob_server)
    files = blobs_crud.BlobFiles(blob_server.settings.blob_dir)
    write = blobs_crud.BlobFiles.write_chunk
    raced: list[int] = []

    def write_then_deleted(self, blob, index, chunk):
        write(self, blob, index, chunk)
        if blob == blob_id and not raced:  # the owner's DELETE, landing right here
            raced.append(index)
            with db.transaction() as conn:
                blobs_crud.delete_rows(conn, [blob])
            files.delete(blob)
            write(self, blob, index, chunk)  # and this request's write lands after it

    monkeypatch.setattr(blobs_crud.BlobFiles, "write_chunk", write_then_deleted)
    err = await refused(_put(alice, blob_id, 1, data[CHUNK:2 * CHUNK]))
    assert (err.status, err.code) == (409, "blob_not_uploading")
    assert raced == [1]
    assert _rows(blob_server, blob_id) == (0, 0)
    assert not (blob_server.settings.blob_dir / blob_id).exists()
    err = await refused(_put(alice, blob_id, 2, data[2 * CHUNK:]))
    assert err.status == 403
    assert not (blob_server.settings.blob_dir / blob_id).exists()
