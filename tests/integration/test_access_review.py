"""Access review and break-glass through the client's own services and the real server:
a clinician's break-glass (reason checked, audited on the device and by the server, grant
lapsing), the auditor's search, chain check, alerts, sign-off and exports under the
two-person rule, and the IT admin's approval -- and what each role is refused."""

from __future__ import annotations

import asyncio
import json

import pytest

from app.core.errors import ServerError
from app.services.access_review import (
    AccessReviewService,
    BreakGlassService,
    NoteRefused,
    ReasonRefused,
    ReviewFilter,
    review_decision,
)
from tests.integration.test_sign_in import sign_in
from tests.server.relay_support import make_room
from tests.support.clients import create_user, new_user_device, server_db
from tests.support.server import start_server


def _service(dev) -> AccessReviewService:
    return AccessReviewService(lambda: dev.transport)


async def test_break_glass_is_audited_reviewed_and_signed_off(open_server, open_workstation):
    _, owner = await new_user_device(open_server, "alice")
    _, auditor_dev = await new_user_device(open_server, "audrey", role="auditor")
    _, it_dev = await new_user_device(open_server, "ivan", role="it_admin")
    creds = create_user(open_server, "dr.erdoc")
    ws = open_workstation("erdoc")
    await sign_in(ws, creds)
    session = ws.session
    try:
        room_id = await make_room(owner)
        other_room = await make_room(owner)
        emergency = BreakGlassService(lambda: session.transport, record=session.audit.record)
        changes: list[None] = []
        emergency.changed.connect(lambda: changes.append(None))
        with pytest.raises(ReasonRefused):
            await emergency.request(room_id, "  too   short ")
        grant = await emergency.request(room_id, "Unconscious in resus,\n need allergy history")
        assert grant.role == "observer" and emergency.active() == {room_id: grant.expires_ms}
        assert len(changes) == 1
        with pytest.raises(ServerError) as missing:
            await emergency.request("no-such-consult-id", "Cardiac arrest, need the notes")
        assert missing.value.status == 404
        await session.audit.flush()
        rows = server_db(open_server).connection().execute(
            "SELECT action, object_id, outcome, detail FROM audit_log WHERE action IN "
            "('client.break_glass', 'room.break_glass') ORDER BY seq").fetchall()
        got = sorted((r[0], r[1], r[2]) for r in rows)  # the device uploads in the background
        assert got == sorted([("room.break_glass", room_id, "ok"),
                              ("client.break_glass", room_id, "ok"),
                              ("room.break_glass", "no-such-consult-id", "refused"),
                              ("client.break_glass", "no-such-consult-id", "refused")])
        assert all("allergy" not in (r[3] or "") for r in rows)  # the reason is not audit data
        # The grant shows with its expiry among the user's consults.
        rooms = await emergency.refresh()
        assert [(r.room_id, r.break_glass, r.expires_ms) for r in rooms] == [
            (room_id, True, grant.expires_ms)]

        review = _service(auditor_dev)
        mine = await review.search(ReviewFilter(username="DR.ERDOC"))
        assert {e.action for e in mine} >= {"client.break_glass", "room.break_glass", "login"}
        # The user as actor, or as the object (their account created by the admin CLI).
        assert all(review.name(e.actor_user_id) == "dr.erdoc" or e.object_type == "user"
                   for e in mine)
        assert [e.seq for e in mine] == sorted((e.seq for e in mine), reverse=True)
        by_room = await review.search(ReviewFilter(room_id=room_id))
        assert {e.action for e in by_room} == {"room.create", "room.break_glass",
                                               "client.break_glass"}
        assert all(e.room_id == room_id for e in by_room)
        assert await review.search(ReviewFilter(room_id=other_room, action="room.break_glass")
                                   ) == []
        refused = await review.search(ReviewFilter(action="room.*", outcome="refused"))
        assert [e.object_id for e in refused] == ["no-such-consult-id"]
        assert await review.search(ReviewFilter(username="nobody-by-this-name")) == []
        # Newest first, and the newest ones when there are more than the limit.
        everything = await review.search_newest(ReviewFilter())
        assert everything.complete and everything.matched == len(everything.entries) > 5
        top = await review.search_newest(ReviewFilter(), limit=3)
        assert [e.seq for e in top.entries] == [e.seq for e in everything.entries[:3]]
        assert top.matched == everything.matched
        newest = max(e.ts_ms for e in mine)
        assert await review.search(ReviewFilter(username="dr.erdoc", from_ms=newest + 1)) == []

        chain = await review.chain()
        assert chain.ok and chain.server.entries > 0 and chain.server.first_bad_seq is None
        assert session.device.device_id in {d.device_id for d in chain.devices}
        alerts = await review.alerts()
        # One alert per entry: the server's room.break_glass and the device's own report.
        flagged = [a for a in alerts if a.rule == "break_glass"]
        assert flagged and {a.username for a in flagged} == {"dr.erdoc"}
        assert all(room_id in a.message for a in flagged)

        [entry] = await review.break_glass_queue()
        assert entry.room_id == room_id and review.name(entry.user_id) == "dr.erdoc"
        assert entry.reason.reveal() == "Unconscious in resus, need allergy history"
        assert "allergy" not in repr(entry)  # PHI-wrapped: never in a log line
        assert review_decision(entry)[0] == "pending"
        signed = await review.sign_off(entry.id, "flagged", "  ask the ward lead  ")
        decision, note = review_decision(signed)
        assert decision == "flagged" and note is not None and note.reveal() == "ask the ward lead"
        assert signed.reviewed_by == auditor_dev.user_id
        assert await review.break_glass_queue() == []
        [done] = await review.break_glass_queue(unreviewed_only=False)
        assert review_decision(done)[0] == "flagged"
        with pytest.raises(ValueError):
            await review.sign_off(entry.id, "maybe", "")
        assert done.decision == "flagged"  # the server's field, not a tag in the note
        with pytest.raises(NoteRefused):
            await review.sign_off(entry.id, "approved", "x" * 501)

        # Separation of duties: IT admins and clinicians read no audit content.
        for dev in (it_dev, owner):
            other = _service(dev)
            for call in (other.break_glass_queue(), other.chain(), other.alerts(),
                         other.search(ReviewFilter())):
                with pytest.raises(ServerError) as err:
                    await call
                assert err.value.status == 403
    finally:
        await session.aclose()
        for dev in (owner, auditor_dev, it_dev):
            await dev.aclose()


async def test_exports_with_and_without_a_second_approval(open_server):
    _, auditor_dev = await new_user_device(open_server, "audrey", role="auditor")
    _, it_dev = await new_user_device(open_server, "ivan", role="it_admin")
    try:
        review = _service(auditor_dev)
        admin = _service(it_dev)
        direct = await review.export("csv", ReviewFilter(action="login"))
        assert not direct.pending and direct.media_type.startswith("text/csv")
        assert direct.content is not None and b"login" in direct.content
        fhir = await review.export("fhir", ReviewFilter())
        assert json.loads(fhir.content or b"{}")["resourceType"] == "Bundle"
        assert not (await review.policy()).export_approval

        await it_dev.transport.request("PUT", "/v1/audit/policy", json_body={
            "export_approval": True, "policy_approval": False})
        assert (await admin.policy()).export_approval
        waiting = await review.export("jsonl", ReviewFilter(username="audrey"))
        assert waiting.pending and waiting.request_id is not None
        [mine] = await review.my_export_requests()
        assert (mine.id, mine.state) == (waiting.request_id, "pending")
        with pytest.raises(ServerError) as early:
            await review.collect_export(waiting.request_id)
        assert early.value.code == "not_approved"
        # The auditor cannot approve; the IT admin sees and approves it.
        with pytest.raises(ServerError):
            await review.decide(waiting.request_id, approve=True)
        [pending] = await admin.pending_approvals()
        assert admin.name(pending.requested_by) == "audrey"
        approved = await admin.decide(pending.id, approve=True)
        assert approved.state == "approved"
        taken = await review.collect_export(waiting.request_id)
        lines = (taken.content or b"").decode().splitlines()
        assert lines and all(json.loads(line)["seq"] for line in lines)
    finally:
        for dev in (auditor_dev, it_dev):
            await dev.aclose()


async def test_a_break_glass_grant_lapses(tmp_path):
    server = start_server(tmp_path / "server", require_device_approval=False,
                          break_glass_ttl_s=2)
    try:
        _, owner = await new_user_device(server, "alice")
        _, doc = await new_user_device(server, "bob")
        room_id = await make_room(owner)
        emergency = BreakGlassService(lambda: doc.transport)
        grant = await emergency.request(room_id, "Trauma call, needs the imaging history")
        assert list(emergency.active()) == [room_id]
        await asyncio.sleep(max(0.0, grant.expires_ms / 1000 - emergency.now_ms() / 1000) + 0.3)
        assert emergency.active() == {}
        emergency.expire()
        assert await emergency.refresh() == []
        await owner.aclose()
        await doc.aclose()
    finally:
        server.stop()


async def test_newest_first_over_many_pages(open_server):
    """The server pages from the oldest entry; the review still shows the newest ones."""
    from server_stub.crud.audit import append_audit

    _, auditor_dev = await new_user_device(open_server, "audrey", role="auditor")
    try:
        with server_db(open_server).transaction() as conn:
            for i in range(2_500):
                append_audit(conn, actor_user_id=None, device_id="dev-bulk",
                             action="client.file.download", object_type="consult",
                             object_id=f"room-{i % 7}", outcome="ok", source="test",
                             detail={"i": i})
        review = _service(auditor_dev)
        result = await review.search_newest(ReviewFilter(device_id="dev-bulk"), limit=10)
        assert result.complete and result.matched == 2_500
        assert [e.detail["i"] for e in result.entries] == list(range(2_499, 2_489, -1))
        cut = await review.search_newest(ReviewFilter(device_id="dev-bulk"), limit=10,
                                         max_scan=1_000)
        assert not cut.complete and cut.matched == 1_000
    finally:
        await auditor_dev.aclose()
