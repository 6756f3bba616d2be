"""Separation of duties for the break-glass review list (issue #8): its entries carry the
requester's free-text reason -- audit content -- so only auditors read and sign them off.
IT admins manage users and devices and get ``403 forbidden`` here, like clinicians."""

from __future__ import annotations

import json
import sqlite3

import pytest

from server_stub.core.db import Database
from server_stub.core.schema import MIGRATIONS
from server_stub.crud import grants
from tests.server.relay_support import make_room, refused
from tests.support.clients import new_user_device, server_db


async def test_only_auditors_read_and_review_the_break_glass_list(open_server):
    _, owner = await new_user_device(open_server, "alice")
    _, erdoc = await new_user_device(open_server, "erdoc")
    _, it = await new_user_device(open_server, "ivan", role="it_admin")
    _, auditor = await new_user_device(open_server, "audrey", role="auditor")
    try:
        room_id = await make_room(owner)
        granted = await erdoc.transport.post_json(
            f"/v1/rooms/{room_id}/break_glass", {"reason": "Unconscious patient, allergies?"})
        for dev in (it, erdoc, owner):
            for query in ("", "?unreviewed=false"):
                err = await refused(dev.transport.get_json(f"/v1/break_glass{query}"))
                assert (err.status, err.code) == (403, "forbidden"), dev.username
            err = await refused(dev.transport.post_json(
                f"/v1/break_glass/{granted['break_glass_id']}/review",
                {"decision": "approved", "note": "fine"}))
            assert (err.status, err.code) == (403, "forbidden"), dev.username
        entries = (await auditor.transport.get_json("/v1/break_glass"))["entries"]
        assert [(e["id"], e["reason"]) for e in entries] == [
            (granted["break_glass_id"], "Unconscious patient, allergies?")]
        reviewed = await auditor.transport.post_json(
            f"/v1/break_glass/{granted['break_glass_id']}/review",
            {"decision": "approved", "note": "justified"})
        assert reviewed["reviewed_by"] == auditor.user_id
    finally:
        for dev in (owner, erdoc, it, auditor):
            await dev.aclose()


async def test_a_sign_off_records_its_decision(open_server):
    """The decision is a field of its own (not the note's first word): required, one of
    approved / flagged, stored, listed, and in the sign-off's audit entry."""
    _, owner = await new_user_device(open_server, "olga")
    _, erdoc = await new_user_device(open_server, "eric")
    _, auditor = await new_user_device(open_server, "ada", role="auditor")
    try:
        room_id = await make_room(owner)
        ids = [(await erdoc.transport.post_json(
            f"/v1/rooms/{room}/break_glass", {"reason": "Collapsed in the car park"}
        ))["break_glass_id"] for room in (room_id, await make_room(owner))]
        path = f"/v1/break_glass/{ids[0]}/review"
        for body in ({"note": "no decision"}, {"decision": "maybe"},
                     {"decision": "approved", "note": "x" * 501}):
            err = await refused(auditor.transport.post_json(path, body))
            assert err.status == 422, body
        assert [e["decision"] for e in (await auditor.transport.get_json(
            "/v1/break_glass"))["entries"]] == [None, None]
        first = await auditor.transport.post_json(path, {"decision": "flagged"})
        assert (first["decision"], first["review_note"]) == ("flagged", None)
        second = await auditor.transport.post_json(
            f"/v1/break_glass/{ids[1]}/review", {"decision": "approved", "note": "ok [flagged]"})
        assert (second["decision"], second["review_note"]) == ("approved", "ok [flagged]")
        listed = (await auditor.transport.get_json("/v1/break_glass?unreviewed=false"))
        assert [(e["id"], e["decision"]) for e in listed["entries"]] == [
            (ids[0], "flagged"), (ids[1], "approved")]
        err = await refused(auditor.transport.post_json(path, {"decision": "approved"}))
        assert (err.status, err.code) == (409, "already_reviewed")
        rows = server_db(open_server).connection().execute(
            "SELECT object_id, detail FROM audit_log WHERE action = 'break_glass.review'"
            " ORDER BY seq").fetchall()
        assert [(r[0], json.loads(r[1])) for r in rows] == [
            (str(ids[0]), {"decision": "flagged"}), (str(ids[1]), {"decision": "approved"})]
    finally:
        for dev in (owner, erdoc, auditor):
            await dev.aclose()


def test_rows_reviewed_before_the_decision_field_keep_their_decision(tmp_path):
    """Migration 5 on a database written by migrations 1-4: a note's ``[approved]`` /
    ``[flagged]`` tag (how the client used to send the decision) becomes the decision and
    leaves the note; an untagged reviewed row and a waiting one stay readable, undecided."""
    path = tmp_path / "old.sqlite3"
    Database(path, MIGRATIONS[:4]).connection().executescript("""
        INSERT INTO break_glass (id, room_id, user_id, reason, created_ms, expires_ms,
                                 reviewed_ms, reviewed_by, review_note) VALUES
          (1, 'r1', 'u1', 'reason one', 1, 2, 3, 'a1', '[approved] called the ward'),
          (2, 'r2', 'u1', 'reason two', 1, 2, 3, 'a1', '[flagged]'),
          (3, 'r3', 'u1', 'reason three', 1, 2, 3, 'a1', 'justified'),
          (4, 'r4', 'u1', 'reason four', 1, 2, NULL, NULL, NULL),
          (5, 'r5', 'u1', 'reason five', 1, 2, 3, 'a1', NULL);
    """)
    conn = Database(path, MIGRATIONS).connection()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    entries = grants.list_break_glass(conn, unreviewed_only=False)
    assert [(e.id, e.decision, e.review_note) for e in entries] == [
        (1, "approved", "called the ward"), (2, "flagged", None), (3, None, "justified"),
        (4, None, None), (5, None, None)]
    assert entries[0].to_wire()["decision"] == "approved"
    # The column refuses anything but the two decisions.
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE break_glass SET decision = 'fine' WHERE id = 4")
    waiting = grants.review_break_glass(conn, 4, reviewer="a2", decision="flagged", note=None,
                                        now_ms=9)
    assert (waiting.decision, waiting.reviewed_by) == ("flagged", "a2")
