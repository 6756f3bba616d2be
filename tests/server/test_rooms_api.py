"""Rooms over real TLS: membership, roles, grants that lapse, break-glass."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.server import relay_support
from tests.server.relay_support import (
    connect_ws,
    make_room,
    next_push,
    post,
    refused,
    sync,
)
from tests.support.clients import server_db

people = relay_support.people  # fixture
crowd = relay_support.crowd  # fixture


def _audit_rows(server, action: str) -> list[dict]:
    rows = server_db(server).connection().execute(
        "SELECT * FROM audit_log WHERE action = ? ORDER BY seq", (action,)).fetchall()
    return [dict(r) for r in rows]


async def test_create_invite_join_leave_bumps_version_and_lists(open_server, people):
    alice, bob = await people("alice", "bob")
    created = await alice.transport.post_json("/v1/rooms", {"linked_patient": "v1:AAAAbbbb"})
    room_id = created["room_id"]
    assert created["membership_version"] == 1
    invited = await alice.transport.post_json(f"/v1/rooms/{room_id}/invite",
                                              {"username": "bob", "role": "observer"})
    assert invited["membership_version"] == 2
    listed = (await bob.transport.get_json("/v1/rooms"))["rooms"]
    assert [(r["room_id"], r["state"], r["role"]) for r in listed] == [
        (room_id, "invited", "observer")]
    assert listed[0]["linked_patient"] == "v1:AAAAbbbb"
    joined = await bob.transport.post_json(f"/v1/rooms/{room_id}/join", {})
    assert joined["membership_version"] == 3
    members = await alice.transport.get_json(f"/v1/rooms/{room_id}/members")
    assert {(m["user_id"], m["role"], m["state"]) for m in members["members"]} == {
        (alice.user_id, "owner", "joined"), (bob.user_id, "observer", "joined")}
    left = await bob.transport.post_json(f"/v1/rooms/{room_id}/leave", {})
    assert left["membership_version"] == 4
    assert (await bob.transport.get_json("/v1/rooms"))["rooms"] == []
    # The timeline carries one membership event per change, in order.
    batch = await sync(alice)
    changes = [(e["content"]["membership"], e["content"]["membership_version"])
               for e in batch["events"] if e["type"] == "sc.room.member"]
    assert changes == [("join", 1), ("invite", 2), ("join", 3), ("leave", 4)]
    assert [r["action"] for r in _audit_rows(open_server, "room.join")] == ["room.join"]


async def test_non_member_refused_everywhere(open_server, people):
    alice, mallory = await people("alice", "mallory")
    room_id = await make_room(alice)
    await post(alice, room_id, "evt-secret-1")
    for call in (
        mallory.transport.get_json(f"/v1/rooms/{room_id}"),
        mallory.transport.get_json(f"/v1/rooms/{room_id}/members"),
        post(mallory, room_id, "evt-mallory-1"),
        mallory.transport.post_json(f"/v1/rooms/{room_id}/join", {}),
        mallory.transport.post_json(f"/v1/rooms/{room_id}/invite", {"username": "mallory"}),
        mallory.transport.get_json("/v1/rooms/AAAAAAAAAAAAAAAAAAAAAA"),
    ):
        err = await refused(call)
        assert err.status == 403, err
    batch = await sync(mallory)
    assert batch["events"] == []


async def test_only_owner_invites_or_removes_and_observer_cannot_post(open_server, people):
    alice, bob, carol = await people("alice", "bob", "carol")
    room_id = await make_room(alice, bob, role="observer")
    err = await refused(bob.transport.post_json(f"/v1/rooms/{room_id}/invite",
                                                {"user_id": carol.user_id}))
    assert (err.status, err.code) == (403, "forbidden")
    err = await refused(post(bob, room_id, "evt-observer"))
    assert (err.status, err.code) == (403, "forbidden")
    err = await refused(bob.transport.request("DELETE",
                                              f"/v1/rooms/{room_id}/members/{alice.user_id}"))
    assert err.status == 403
    await alice.transport.request("DELETE", f"/v1/rooms/{room_id}/members/{bob.user_id}")
    err = await refused(bob.transport.get_json(f"/v1/rooms/{room_id}"))
    assert err.code == "not_member"
    # The removed member still learns of the removal at the next sync.
    last = [e for e in (await sync(bob))["events"] if e["type"] == "sc.room.member"][-1]
    assert last["content"]["membership"] == "remove"


@pytest.mark.parametrize("body", [
    {},
    {"user_id": "x", "username": "y"},
    {"username": "bob", "role": "owner"},
    {"username": "bob", "role": "member", "expires_ms": "soon"},
    {"username": "bob", "surprise": 1},
    {"username": ""},
    {"username": "bob", "expires_ms": 1},
])
async def test_invite_malformed(open_server, people, body):
    (alice,) = await people("alice")
    room_id = await make_room(alice)
    err = await refused(alice.transport.post_json(f"/v1/rooms/{room_id}/invite", body))
    assert err.status in (400, 404, 422) and err.code in ("malformed", "unknown_user"), err


async def test_invite_unknown_user_and_malformed_json(open_server, people):
    (alice,) = await people("alice")
    room_id = await make_room(alice)
    err = await refused(alice.transport.post_json(f"/v1/rooms/{room_id}/invite",
                                                  {"username": "nobody"}))
    assert (err.status, err.code) == (404, "unknown_user")
    err = await refused(alice.transport.request(
        "POST", "/v1/rooms", content=b'{"linked_patient": ', headers={
            "Content-Type": "application/json"}))
    assert (err.status, err.code) == (400, "malformed")
    err = await refused(alice.transport.post_json("/v1/rooms", {"linked_patient": "x" * 20_000}))
    assert err.code == "malformed"
    err = await refused(alice.transport.post_json("/v1/rooms", ["not", "an", "object"]))
    assert err.code == "malformed"


async def test_expired_grant_is_refused_and_members_told(open_server, people):
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice)
    expires = int(time.time() * 1000) + 1500
    await alice.transport.post_json(f"/v1/rooms/{room_id}/invite",
                                    {"user_id": bob.user_id, "expires_ms": expires})
    await bob.transport.post_json(f"/v1/rooms/{room_id}/join", {})
    await post(bob, room_id, "evt-in-time")
    ws = await connect_ws(open_server, alice)
    await next_push(ws, "hello")
    await asyncio.sleep(max(0.0, expires / 1000 - time.time()) + 0.05)
    err = await refused(post(bob, room_id, "evt-too-late"))
    assert (err.status, err.code) == (403, "grant_expired")
    err = await refused(bob.transport.get_json(f"/v1/rooms/{room_id}/members"))
    assert err.status == 403
    # The lapse is recorded once, as an 'expire' membership event pushed to the owner.
    pushed = await next_push(ws, "event")
    assert pushed["event"]["content"]["membership"] == "expire"
    assert pushed["event"]["content"]["user_id"] == bob.user_id
    members = await alice.transport.get_json(f"/v1/rooms/{room_id}/members")
    assert [m["user_id"] for m in members["members"]] == [alice.user_id]
    assert len(_audit_rows(open_server, "room.grant_expired")) == 1
    await ws.close()


async def test_break_glass_requires_reason_is_audited_and_reviewable(open_server, people):
    alice, erdoc = await people("alice", "erdoc")
    (auditor,) = await people("auditor1", role="auditor")
    room_id = await make_room(alice)
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 600}):
        err = await refused(erdoc.transport.post_json(f"/v1/rooms/{room_id}/break_glass", body))
        assert err.status == 400 and err.code in ("reason_required", "reason_too_long"), err
    err = await refused(erdoc.transport.post_json(f"/v1/rooms/{room_id}/break_glass",
                                                  {"reason": 42}))
    assert err.code == "malformed"
    assert err.status == 422
    result = await erdoc.transport.post_json(f"/v1/rooms/{room_id}/break_glass",
                                             {"reason": "Cardiac arrest in bay 3, need history"})
    assert result["role"] == "observer" and result["expires_ms"] > time.time() * 1000
    room = await erdoc.transport.get_json(f"/v1/rooms/{room_id}")
    assert room["break_glass"] is True
    outcomes = [r["outcome"] for r in _audit_rows(open_server, "room.break_glass")]
    assert outcomes.count("refused") == 4 and outcomes.count("ok") == 1
    assert all("Cardiac" not in (r["detail"] or "")
               for r in _audit_rows(open_server, "room.break_glass"))
    # Auditors see the flag; clinicians may not list it.
    err = await refused(alice.transport.get_json("/v1/break_glass"))
    assert err.status == 403
    entries = (await auditor.transport.get_json("/v1/break_glass"))["entries"]
    assert [(e["room_id"], e["user_id"]) for e in entries] == [(room_id, erdoc.user_id)]
    reviewed = await auditor.transport.post_json(
        f"/v1/break_glass/{entries[0]['id']}/review",
        {"decision": "approved", "note": "justified"})
    assert reviewed["reviewed_by"] == auditor.user_id
    assert (await auditor.transport.get_json("/v1/break_glass"))["entries"] == []
    all_entries = (await auditor.transport.get_json("/v1/break_glass?unreviewed=false"))
    assert len(all_entries["entries"]) == 1
    err = await refused(auditor.transport.post_json(
        f"/v1/break_glass/{entries[0]['id']}/review", {"decision": "flagged"}))
    assert err.code == "already_reviewed"
    err = await refused(auditor.transport.get_json("/v1/break_glass?limit=100000"))
    assert err.code == "malformed"


async def test_linked_patient_is_stored_as_given_and_owner_only(open_server, people):
    alice, bob = await people("alice", "bob")
    room_id = await make_room(alice, bob)
    await alice.transport.request("PUT", f"/v1/rooms/{room_id}/linked_patient",
                                  json_body={"linked_patient": "v1:Q2lwaGVydGV4dA"})
    room = await bob.transport.get_json(f"/v1/rooms/{room_id}")
    assert room["linked_patient"] == "v1:Q2lwaGVydGV4dA"
    err = await refused(bob.transport.request("PUT", f"/v1/rooms/{room_id}/linked_patient",
                                              json_body={"linked_patient": "v1:other"}))
    assert err.status == 403
    stored = server_db(open_server).connection().execute(
        "SELECT linked_patient_ct FROM rooms WHERE room_id = ?", (room_id,)).fetchone()[0]
    assert stored == "v1:Q2lwaGVydGV4dA"
    assert json.loads(json.dumps(room))["room_id"] == room_id


async def test_more_malformed_room_requests(open_server, people):
    (alice,) = await people("alice")
    (auditor,) = await people("auditor3", role="auditor")
    room_id = await make_room(alice)
    path = f"/v1/rooms/{room_id}/linked_patient"
    for body in ({}, {"linked_patient": 5}, {"linked_patient": ""}, {"other": "x"}):
        err = await refused(alice.transport.request("PUT", path, json_body=body))
        assert (err.status, err.code) == (422, "malformed"), body
    err = await refused(alice.transport.request(
        "DELETE", f"/v1/rooms/{room_id}/members/no-such-user"))
    assert (err.status, err.code) == (404, "not_found")
    err = await refused(alice.transport.request(
        "DELETE", f"/v1/rooms/{room_id}/members/{alice.user_id}"))
    assert err.code == "malformed"
    for query in ("after=-1", "limit=0", "unreviewed=maybe"):
        err = await refused(auditor.transport.get_json(f"/v1/break_glass?{query}"))
        assert err.code == "malformed", query
    for path in ("/v1/break_glass/abc/review", "/v1/break_glass/999/review"):
        err = await refused(auditor.transport.post_json(path, {}))
        assert err.code in ("malformed", "not_found"), path
    err = await refused(auditor.transport.post_json("/v1/break_glass/1/review",
                                                    {"decision": "approved",
                                                     "note": "x" * 501}))
    assert err.code == "malformed"
    err = await refused(alice.transport.post_json(f"/v1/rooms/{room_id}/join", {}))
    assert (err.status, err.code) == (409, "already_member")
