"""Relay storage rules on a real SQLite database (no HTTP): membership, grants, sync, blobs,
retention. The HTTP tests (test_rooms_api.py etc.) cover the same rules over TLS."""

from __future__ import annotations

import hashlib
import json

import pytest

from server_stub.core.db import Database
from server_stub.core.schema import MIGRATIONS
from server_stub.crud import blobs, events, grants, retention, rooms
from server_stub.crud.rooms import GrantExpired, Refused

T0 = 1_800_000_000_000
ALICE, BOB, CAROL = "user-alice", "user-bob", "user-carol"


@pytest.fixture
def db(tmp_path) -> Database:
    return Database(tmp_path / "relay.sqlite3", MIGRATIONS)


def _room(db: Database, owner: str = ALICE) -> str:
    with db.transaction() as conn:
        room, _ = rooms.create_room(conn, creator_user_id=owner, creator_device_id="dev-a",
                                    now_ms=T0)
    return room.room_id


def _joined(db: Database, user: str, *, expires_ms: int | None = None) -> str:
    room_id = _room(db)
    with db.transaction() as conn:
        rooms.invite(conn, room_id, actor_user_id=ALICE, actor_device_id="dev-a",
                     target_user_id=user, role="member", expires_ms=expires_ms, now_ms=T0)
        rooms.join(conn, room_id, user_id=user, device_id="dev-x", now_ms=T0)
    return room_id


def _post(db: Database, room_id: str, event_id: str, body: dict, *, user=ALICE, dev="dev-a",
          now=T0) -> events.PostResult:
    with db.transaction() as conn:
        return events.post_event(conn, room_id, event_id=event_id, type_="m.room.encrypted",
                                 content_json=json.dumps(body), sender_user_id=user,
                                 sender_device_id=dev, now_ms=now)


def _sync(db: Database, user: str, device: str, since: str | None, *, limit=100, now=T0):
    with db.transaction() as conn:
        token = events.SyncToken.parse(since)
        events.acknowledge_to_device(conn, device, token.to_device)
        return events.read_batch(conn, user_id=user, device_id=device, since=token, limit=limit,
                                 now_ms=now)


def test_membership_changes_bump_version_and_emit_events(db):
    room_id = _room(db)
    with db.transaction() as conn:
        assert rooms.get_room(conn, room_id).membership_version == 1
        rooms.invite(conn, room_id, actor_user_id=ALICE, actor_device_id="dev-a",
                     target_user_id=BOB, role="observer", expires_ms=None, now_ms=T0)
        rooms.join(conn, room_id, user_id=BOB, device_id="dev-b", now_ms=T0)
        rooms.leave(conn, room_id, user_id=BOB, device_id="dev-b", now_ms=T0)
        assert rooms.get_room(conn, room_id).membership_version == 4
    batch = _sync(db, ALICE, "dev-a", None)
    changes = [json.loads(e.content)["membership"] for e in batch.events]
    assert changes == ["join", "invite", "join", "leave"]
    assert all(e.type == rooms.MEMBER_EVENT_TYPE for e in batch.events)
    assert [json.loads(e.content)["membership_version"] for e in batch.events] == [1, 2, 3, 4]


def test_only_owner_invites_and_non_members_are_refused(db):
    room_id = _joined(db, BOB)
    with db.transaction() as conn, pytest.raises(Refused) as err:
        rooms.invite(conn, room_id, actor_user_id=BOB, actor_device_id="dev-b",
                     target_user_id=CAROL, role="member", expires_ms=None, now_ms=T0)
    assert err.value.code == "forbidden"
    with pytest.raises(Refused) as err:
        _post(db, room_id, "evt-carol-1", {"ciphertext": "x"}, user=CAROL, dev="dev-c")
    assert (err.value.status, err.value.code) == (403, "not_member")
    with db.transaction() as conn, pytest.raises(Refused) as err:
        rooms.join(conn, room_id, user_id=CAROL, device_id="dev-c", now_ms=T0)
    assert err.value.code == "not_invited"


def test_retried_event_is_stored_once_and_conflicting_reuse_refused(db):
    room_id = _room(db)
    first = _post(db, room_id, "evt-1", {"ciphertext": "AAA"})
    again = _post(db, room_id, "evt-1", {"ciphertext": "AAA"})
    assert not first.duplicate and again.duplicate
    assert again.event.pos == first.event.pos
    with pytest.raises(Refused) as err:
        _post(db, room_id, "evt-1", {"ciphertext": "BBB"})
    assert err.value.code == "event_id_conflict"
    batch = _sync(db, ALICE, "dev-a", None)
    assert [e.event_id for e in batch.events if e.type == "m.room.encrypted"] == ["evt-1"]


def test_observer_may_read_but_not_post(db):
    room_id = _room(db)
    with db.transaction() as conn:
        rooms.invite(conn, room_id, actor_user_id=ALICE, actor_device_id="dev-a",
                     target_user_id=BOB, role="observer", expires_ms=None, now_ms=T0)
        rooms.join(conn, room_id, user_id=BOB, device_id="dev-b", now_ms=T0)
    with pytest.raises(Refused) as err:
        _post(db, room_id, "evt-obs", {"c": 1}, user=BOB, dev="dev-b")
    assert err.value.code == "forbidden"


def test_sync_pages_and_catches_up_exactly_once(db):
    room_id = _joined(db, BOB)
    for i in range(7):
        _post(db, room_id, f"evt-{i}", {"ciphertext": str(i)})
    seen: list[str] = []
    token = None
    for _ in range(10):
        batch = _sync(db, BOB, "dev-b", token, limit=3)
        seen += [e.event_id for e in batch.events if e.type == "m.room.encrypted"]
        token = str(batch.next_token)
        if not batch.limited:
            break
    assert seen == [f"evt-{i}" for i in range(7)]
    assert _sync(db, BOB, "dev-b", token).events == []
    _post(db, room_id, "evt-late", {"ciphertext": "z"})
    assert [e.event_id for e in _sync(db, BOB, "dev-b", token).events] == ["evt-late"]


def test_new_member_does_not_see_events_before_joining(db):
    room_id = _room(db)
    _post(db, room_id, "before", {"c": 1})
    with db.transaction() as conn:
        rooms.invite(conn, room_id, actor_user_id=ALICE, actor_device_id="dev-a",
                     target_user_id=BOB, role="member", expires_ms=None, now_ms=T0)
        rooms.join(conn, room_id, user_id=BOB, device_id="dev-b", now_ms=T0)
    _post(db, room_id, "after", {"c": 2})
    ids = [e.event_id for e in _sync(db, BOB, "dev-b", None).events]
    assert "before" not in ids and "after" in ids


def test_to_device_delivered_until_acknowledged_then_deleted(db):
    def send(txn: str, content: dict):
        with db.transaction() as conn:
            return events.send_to_device(
                conn, sender_user_id=ALICE, sender_device_id="dev-a", txn_id=txn,
                type_="m.room_key",
                recipients=[events.Recipient(BOB, "dev-b", json.dumps(content))], now_ms=T0)

    assert send("t1", {"k": 1})[1] is False
    assert send("t1", {"k": 1})[1] is True  # retry: stored once
    with pytest.raises(Refused):
        send("t1", {"k": 2})
    first = _sync(db, BOB, "dev-b", None)
    assert len(first.to_device) == 1
    # Same token again (the client crashed before storing its result): delivered again.
    assert len(_sync(db, BOB, "dev-b", None).to_device) == 1
    # Presenting the later token acknowledges: gone for good.
    assert _sync(db, BOB, "dev-b", str(first.next_token)).to_device == []
    assert db.connection().execute("SELECT COUNT(*) FROM to_device").fetchone()[0] == 0
    # Another device of the same user never sees it.
    assert _sync(db, BOB, "dev-other", None).to_device == []


@pytest.mark.parametrize("token", ["abc", "1_", "_1", "1_2_3", "-1_0", "1 _2", "9" * 30 + "_0"])
def test_malformed_sync_token_refused(token):
    with pytest.raises(Refused) as err:
        events.SyncToken.parse(token)
    assert err.value.code == "malformed"


def test_expired_grant_refused_then_recorded_once(db):
    room_id = _joined(db, BOB, expires_ms=T0 + 60_000)
    _post(db, room_id, "evt-in-time", {"c": 1}, user=BOB, dev="dev-b", now=T0 + 59_999)
    with pytest.raises(GrantExpired):
        _post(db, room_id, "evt-late", {"c": 2}, user=BOB, dev="dev-b", now=T0 + 60_000)
    # Sync at that moment hides the room's new events even before the lapse is recorded.
    _post(db, room_id, "evt-owner", {"c": 3}, now=T0 + 60_001)
    ids = [e.event_id for e in _sync(db, BOB, "dev-b", None, now=T0 + 60_001).events]
    assert "evt-owner" not in ids
    with db.transaction() as conn:
        assert grants.has_lapsed(conn, BOB, T0 + 60_001)
        lapsed = grants.lapse_expired(conn, T0 + 60_001)
        assert grants.lapse_expired(conn, T0 + 60_002) == []
    assert [json.loads(e.content)["membership"] for e in lapsed] == ["expire"]
    # The lapsed member's devices learn it at their next sync -- without the event posted
    # after the expiry but before the lapse was recorded.
    seen = _sync(db, BOB, "dev-b", None, now=T0 + 70_000).events
    assert json.loads(seen[-1].content)["membership"] == "expire"
    assert "evt-in-time" in [e.event_id for e in seen]
    assert "evt-owner" not in [e.event_id for e in seen]


def test_break_glass_needs_reason_and_is_listed_for_review(db):
    room_id = _room(db)
    for reason in (None, "", "   ", "short", "x" * 501, "bad\x00reason text"):
        with db.transaction() as conn, pytest.raises(Refused):
            grants.break_glass(conn, room_id, user_id=CAROL, device_id="dev-c", reason=reason,
                               ttl_s=3600, now_ms=T0)
    with db.transaction() as conn:
        entry, _ = grants.break_glass(conn, room_id, user_id=CAROL, device_id="dev-c",
                                          reason="Patient unconscious in ED, consult needed",
                                          ttl_s=3600, now_ms=T0)
        m = rooms.require_member(conn, room_id, CAROL, T0 + 1)
        assert m.role == "observer" and m.break_glass_id == entry.id
        assert [b.id for b in grants.list_break_glass(conn, unreviewed_only=True)] == [entry.id]
        grants.review_break_glass(conn, entry.id, reviewer="auditor-1", decision="approved",
                                   note="ok", now_ms=T0 + 5)
        assert grants.list_break_glass(conn, unreviewed_only=True) == []
        with pytest.raises(Refused):
            grants.review_break_glass(conn, entry.id, reviewer="auditor-1", decision="flagged",
                                      note=None, now_ms=T0)
    with db.transaction() as conn, pytest.raises(GrantExpired):
        rooms.require_member(conn, room_id, CAROL, T0 + 3_600_000)


def test_grant_and_revoke(db):
    room_id = _room(db)
    with db.transaction() as conn:
        grants.grant(conn, room_id, target_user_id=BOB, role="member", expires_ms=T0 + 1000,
                     granted_by="admin-cli", now_ms=T0)
        assert rooms.require_member(conn, room_id, BOB, T0 + 999).expires_ms == T0 + 1000
        grants.revoke(conn, room_id, target_user_id=BOB, revoked_by="admin-cli", now_ms=T0 + 10)
        with pytest.raises(Refused):
            rooms.require_member(conn, room_id, BOB, T0 + 11)
        with pytest.raises(Refused):
            grants.grant(conn, room_id, target_user_id=BOB, role="member", expires_ms=T0 - 1,
                         granted_by="admin-cli", now_ms=T0)


def _blob(db, tmp_path, data: bytes, chunk: int, *, sha: str | None = None):
    room_id = _room(db)
    files = blobs.BlobFiles(tmp_path / "blobs")
    with db.transaction() as conn:
        blob = blobs.create_blob(
            conn, room_id=room_id, owner_user_id=ALICE, owner_device_id="dev-a",
            total_size=len(data), chunk_size=chunk, chunk_count=-(-len(data) // chunk),
            sha256=sha or hashlib.sha256(data).hexdigest(), now_ms=T0,
            max_chunk_bytes=1 << 20, max_blob_bytes=1 << 30)
    return files, blob


def _upload(db, files, blob, data: bytes, indexes) -> None:
    for i in indexes:
        piece = data[i * blob.chunk_size:(i + 1) * blob.chunk_size]
        blobs.check_chunk(blob, i, len(piece))
        files.write_chunk(blob.blob_id, i, piece)
        with db.transaction() as conn:
            blobs.record_chunk(conn, blob.blob_id, i, len(piece))


def _finalize(db, files, blob) -> Refused | None:
    with db.transaction() as conn:
        if not blobs.begin_finalize(conn, blob):
            return None
    problem = blobs.check_digest(files, blob)
    with db.transaction() as conn:
        blobs.end_finalize(conn, blob.blob_id, ok=problem is None, now_ms=T0)
    return problem


def test_blob_resume_and_finalize(db, tmp_path):
    data = bytes(range(256)) * 41  # 10,496 bytes: 11 chunks of 1000, last short
    files, blob = _blob(db, tmp_path, data, 1000)
    _upload(db, files, blob, data, [0, 3, 10])
    with db.transaction() as conn, pytest.raises(Refused) as err:
        blobs.begin_finalize(conn, blob)
    assert err.value.code == "chunks_missing"
    assert blobs.present_chunks(db.connection(), blob.blob_id) == [0, 3, 10]
    _upload(db, files, blob, data, [i for i in range(11) if i not in (0, 3, 10)])
    assert _finalize(db, files, blob) is None
    done = blobs.get_blob(db.connection(), blob.blob_id)
    assert done.state == "complete"
    assert b"".join(files.read_chunk(blob.blob_id, i) for i in range(11)) == data


def test_blob_hash_and_size_mismatch(db, tmp_path):
    data = b"\x01" * 2500
    files, blob = _blob(db, tmp_path, data, 1000, sha="0" * 64)
    _upload(db, files, blob, data, range(3))
    problem = _finalize(db, files, blob)
    assert problem is not None and problem.code == "hash_mismatch"
    assert blobs.get_blob(db.connection(), blob.blob_id).state == "uploading"
    files2, blob2 = _blob(db, tmp_path, data, 1000)
    _upload(db, files2, blob2, data[:2400], range(3))  # last chunk 400 bytes, not 500
    with db.transaction() as conn, pytest.raises(Refused) as err:
        blobs.begin_finalize(conn, blob2)
    assert err.value.code == "size_mismatch"


@pytest.mark.parametrize("shape", [
    dict(total_size=0, chunk_size=10, chunk_count=0),
    dict(total_size=100, chunk_size=10, chunk_count=9),
    dict(total_size=100, chunk_size=2 << 20, chunk_count=1),
    dict(total_size=(1 << 30) + 1, chunk_size=1 << 20, chunk_count=1025),
])
def test_blob_shape_refused(shape):
    with pytest.raises(Refused):
        blobs.validate_shape(sha256="a" * 64, max_chunk_bytes=1 << 20, max_blob_bytes=1 << 30,
                             **shape)


def test_chunk_index_out_of_range(db, tmp_path):
    _, blob = _blob(db, tmp_path, b"x" * 100, 50)
    for index in (-1, 2, 10**9):
        with pytest.raises(Refused) as err:
            blobs.check_chunk(blob, index, 10)
        assert err.value.code == "chunk_out_of_range"
    with pytest.raises(Refused) as err:
        blobs.check_chunk(blob, 0, 51)
    assert err.value.code == "too_large"


def test_retention_purges_old_ciphertext_only(db, tmp_path):
    data = b"y" * 300
    files, blob = _blob(db, tmp_path, data, 100)
    _upload(db, files, blob, data, range(3))
    room_id = blob.room_id
    _post(db, room_id, "old", {"c": 1}, now=T0)
    _post(db, room_id, "new", {"c": 2}, now=T0 + 40 * retention.DAY_MS)
    with db.transaction() as conn:
        events.send_to_device(conn, sender_user_id=ALICE, sender_device_id="dev-a",
                              txn_id="t", type_="x",
                              recipients=[events.Recipient(BOB, "dev-b", "{}")], now_ms=T0)
    (files.root / "not-a-blob").mkdir()
    report = retention.purge(db, files, retention_days=30, now_ms=T0 + 40 * retention.DAY_MS)
    assert report.blobs == 1 and report.to_device == 1 and report.txns == 1
    conn = db.connection()
    ids = [r[0] for r in conn.execute("SELECT event_id FROM events")]
    assert ids == ["new"]
    assert not (files.root / blob.blob_id).exists()
    assert (files.root / "not-a-blob").exists()
    assert rooms.get_room(conn, room_id) is not None
