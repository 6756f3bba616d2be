"""Separation of duties and the completeness of the record, through the real server:
each security-relevant action leaves exactly one entry with the right actor, device and
object; auditors read but cannot approve or manage; IT admins approve but cannot read,
alter or delete audit data; exports and policy changes follow the two-person rule."""

from __future__ import annotations

import json

import pytest

from app.core.audit_queue import GENESIS_HASH, AuditEntry, seal
from app.core.errors import ServerError
from server_stub import admin
from tests.server.test_audit_chain import _cli
from tests.support.clients import login, new_user_device, server_db


def _rows(server, action: str) -> list[tuple]:
    return [tuple(r) for r in server_db(server).connection().execute(
        "SELECT actor_user_id, device_id, object_type, object_id, outcome FROM audit_log"
        " WHERE action = ?", (action,))]


async def _forbidden(coro) -> None:
    with pytest.raises(ServerError) as err:
        await coro
    assert (err.value.status, err.value.code) == (403, "forbidden"), err.value


async def test_each_security_action_leaves_exactly_one_entry(open_server):
    alice_creds, alice = await new_user_device(open_server, "alice")
    bob_creds, bob = await new_user_device(open_server, "bob")
    carol_creds, carol = await new_user_device(open_server, "carol")
    it_creds, it = await new_user_device(open_server, "ivan", role="it_admin")
    try:
        a_id, a_dev = alice_creds.user_id, alice.device_id
        assert _rows(open_server, "device.enroll").count(
            (a_id, a_dev, "device", a_dev, "ok")) == 1
        logins = [r for r in _rows(open_server, "login") if r[0] == a_id]
        assert logins == [(a_id, a_dev, "session", logins[0][3], "ok")]
        # Failed login.
        with pytest.raises(ServerError):
            await login(open_server, carol, "wrong password 123", carol_creds.totp_secret)
        failed = [r for r in _rows(open_server, "login") if r[4] == "failed"]
        assert failed == [(carol_creds.user_id, None, "user", carol_creds.user_id, "failed")]
        await login(open_server, carol, carol_creds.password, carol_creds.totp_secret)
        # Join (invited, then joins) and break-glass.
        room = (await alice.transport.post_json("/v1/rooms", {}))["room_id"]
        await alice.transport.post_json(f"/v1/rooms/{room}/invite",
                                        {"user_id": bob_creds.user_id, "role": "member"})
        await bob.transport.post_json(f"/v1/rooms/{room}/join", {})
        assert _rows(open_server, "room.join") == [
            (bob_creds.user_id, bob.device_id, "room", room, "ok")]
        await carol.transport.post_json(f"/v1/rooms/{room}/break_glass",
                                        {"reason": "emergency: consultant unreachable"})
        assert _rows(open_server, "room.break_glass") == [
            (carol_creds.user_id, carol.device_id, "room", room, "ok")]
        # Client-side actions: record, download, export, print, share screen, break-glass,
        # local wipe, policy change -- one signed entry each.
        prev = GENESIS_HASH
        client_actions = ("record.start", "file.download", "file.export", "file.print",
                          "screen.share.start", "break_glass", "wipe.local", "policy.change")
        for seq, action in enumerate(client_actions, start=1):
            entry = seal(AuditEntry(a_dev, seq, 1_763_800_000_000 + seq, action, "room", room,
                                    "ok", {}, prev), alice.identity.sign)
            prev = entry.entry_hash
            body = {"action": action, "object_type": "room", "object_id": room,
                    "detail": entry.server_detail()}
            await alice.transport.post_json("/v1/audit/events", body)
            await alice.transport.post_json("/v1/audit/events", body)  # a retry: still one
        for action in client_actions:
            assert _rows(open_server, f"client.{action}") == [(a_id, a_dev, "room", room, "ok")]
        # Remote wipe (admin CLI function) and a server policy change (API).
        admin.revoke_device(server_db(open_server), bob.device_id, wipe=True)
        assert _rows(open_server, "device.wipe") == [
            (None, bob.device_id, "device", bob.device_id, "ok")]
        await it.transport.request("PUT", "/v1/audit/policy", json_body={
            "export_approval": True, "policy_approval": False})
        assert _rows(open_server, "policy.change") == [
            (it_creds.user_id, it.device_id, "policy", "audit", "ok")]
    finally:
        for dev in (alice, bob, carol, it):
            await dev.aclose()


async def test_roles_are_separated(open_server):
    _, auditor = await new_user_device(open_server, "audrey", role="auditor")
    _, it = await new_user_device(open_server, "ivan", role="it_admin")
    _, doc = await new_user_device(open_server, "doc", role="physician")
    try:
        # IT admins cannot read, search, review or export audit data.
        for dev in (it, doc):
            await _forbidden(dev.transport.get_json("/v1/audit"))
            await _forbidden(dev.transport.get_json("/v1/audit/verify"))
            await _forbidden(dev.transport.get_json("/v1/audit/alerts"))
            await _forbidden(dev.transport.post_json("/v1/audit/search", {}))
            await _forbidden(dev.transport.post_json("/v1/audit/exports", {"format": "csv"}))
        await _forbidden(it.transport.post_json("/v1/break_glass/1/review", {}))
        # Auditors read but cannot change policy or approve.
        page = await auditor.transport.post_json("/v1/audit/search", {"action": "login"})
        assert page["entries"] and {e["action"] for e in page["entries"]} == {"login"}
        await _forbidden(auditor.transport.request(
            "PUT", "/v1/audit/policy", json_body={"export_approval": False,
                                                   "policy_approval": False}))
        await _forbidden(auditor.transport.post_json("/v1/audit/requests/1/approve", {}))
        # No route alters or deletes audit data.
        spec = open_server.app.openapi()  # type: ignore[attr-defined]
        for path, methods in spec["paths"].items():
            if path.startswith("/v1/audit"):
                assert "delete" not in methods and "patch" not in methods, path
                assert "put" not in methods or path == "/v1/audit/policy", path
    finally:
        for dev in (auditor, it, doc):
            await dev.aclose()


async def test_exports_need_a_second_persons_approval_when_policy_says_so(open_server):
    audrey, auditor = await new_user_device(open_server, "audrey", role="auditor")
    _, other_auditor = await new_user_device(open_server, "otto", role="auditor")
    _, it = await new_user_device(open_server, "ivan", role="it_admin")
    try:
        # Off by default: the export comes at once.
        now = await auditor.transport.request("POST", "/v1/audit/exports",
                                              json_body={"format": "jsonl"})
        assert now.status_code == 200 and now.text.count("\n") >= 3
        await it.transport.request("PUT", "/v1/audit/policy", json_body={
            "export_approval": True, "policy_approval": False})
        pending = await auditor.transport.request(
            "POST", "/v1/audit/exports", json_body={"format": "fhir", "action": "login"})
        assert pending.status_code == 202
        request_id = pending.json()["request_id"]
        with pytest.raises(ServerError) as err:
            await auditor.transport.get_json(f"/v1/audit/exports/{request_id}")
        assert err.value.code == "not_approved"
        await _forbidden(auditor.transport.post_json(
            f"/v1/audit/requests/{request_id}/approve", {}))
        result = await it.transport.post_json(f"/v1/audit/requests/{request_id}/approve", {})
        assert result["state"] == "approved"
        await _forbidden(other_auditor.transport.get_json(f"/v1/audit/exports/{request_id}"))
        taken = await auditor.transport.request("GET", f"/v1/audit/exports/{request_id}")
        bundle = taken.json()
        assert bundle["resourceType"] == "Bundle"
        assert {e["resource"]["code"]["text"] for e in bundle["entry"]} == {"login"}
        with pytest.raises(ServerError) as err:
            await auditor.transport.get_json(f"/v1/audit/exports/{request_id}")
        assert err.value.code == "not_approved"  # once
        # The CLI is under the same rule.
        refused = _cli(open_server.data_dir, "audit", "export")
        assert refused.returncode == 1 and "approval" in refused.stderr
        second = (await auditor.transport.request(
            "POST", "/v1/audit/exports", json_body={"format": "csv", "outcome": "ok"})).json()
        out = open_server.data_dir / "approved.csv"
        early = _cli(open_server.data_dir, "audit", "export", "--approval",
                     str(second["request_id"]), "--out", str(out))
        assert early.returncode == 1 and "pending" in early.stderr
        await it.transport.post_json(f"/v1/audit/requests/{second['request_id']}/approve", {})
        taken_cli = _cli(open_server.data_dir, "audit", "export", "--approval",
                         str(second["request_id"]), "--out", str(out))
        assert taken_cli.returncode == 0, taken_cli.stderr
        assert out.read_text().startswith("seq,time_utc,")  # the request's format, not jsonl
        exports = _rows(open_server, "audit.export")
        assert len(exports) == 3 and {r[:2] for r in exports[:2]} == {
            (audrey.user_id, auditor.device_id)}
        assert exports[2][:2] == (None, None)  # the operator's CLI
        actions = [r[0] for r in server_db(open_server).connection().execute(
            "SELECT action FROM audit_log WHERE object_type = 'audit_request'")]
        assert actions == ["audit.export.request", "approval.grant"] * 2
    finally:
        for dev in (auditor, other_auditor, it):
            await dev.aclose()


async def test_policy_changes_need_a_second_admin_when_policy_says_so(open_server):
    _, it1 = await new_user_device(open_server, "ivan", role="it_admin")
    _, it2 = await new_user_device(open_server, "irma", role="it_admin")
    try:
        await it1.transport.request("PUT", "/v1/audit/policy", json_body={
            "export_approval": False, "policy_approval": True})
        pending = await it1.transport.request("PUT", "/v1/audit/policy", json_body={
            "export_approval": True, "policy_approval": True})
        assert pending.status_code == 202
        request_id = pending.json()["request_id"]
        assert (await it1.transport.get_json("/v1/audit/policy"))["export_approval"] is False
        with pytest.raises(ServerError) as err:
            await it1.transport.post_json(f"/v1/audit/requests/{request_id}/approve", {})
        assert err.value.code == "same_person"
        await it2.transport.post_json(f"/v1/audit/requests/{request_id}/approve", {})
        assert (await it1.transport.get_json("/v1/audit/policy")) == {
            "export_approval": True, "policy_approval": True}
        changes = _rows(open_server, "policy.change")
        assert len(changes) == 2  # the direct one and the approved one
        refused = _cli(open_server.data_dir, "audit", "policy", "--policy-approval", "off")
        assert refused.returncode == 1 and "second IT admin" in refused.stderr
        shown = _cli(open_server.data_dir, "audit", "policy")
        assert json.loads(shown.stdout) == {"export_approval": True, "policy_approval": True}
    finally:
        await it1.aclose()
        await it2.aclose()


async def test_break_glass_review_queue_and_sign_off_from_the_cli(open_server):
    _, alice = await new_user_device(open_server, "alice")
    carol_creds, carol = await new_user_device(open_server, "carol")
    audrey, auditor = await new_user_device(open_server, "audrey", role="auditor")
    await new_user_device(open_server, "ivan", role="it_admin")
    try:
        room = (await alice.transport.post_json("/v1/rooms", {}))["room_id"]
        bg = await carol.transport.post_json(f"/v1/rooms/{room}/break_glass",
                                             {"reason": "arrest on ward 3, owner unreachable"})
        queue = _cli(open_server.data_dir, "audit", "review", "--break-glass")
        assert queue.returncode == 0, queue.stderr
        assert f"#{bg['break_glass_id']}" in queue.stdout and "AWAITING REVIEW" in queue.stdout
        assert "carol" in queue.stdout and "owner unreachable" in queue.stdout
        # Only an auditor signs off.
        refused = _cli(open_server.data_dir, "audit", "sign-off", str(bg["break_glass_id"]),
                       "--as", "ivan", "--decision", "approved")
        assert refused.returncode == 1 and "not an enabled auditor" in refused.stderr
        # A sign-off names its decision.
        undecided = _cli(open_server.data_dir, "audit", "sign-off", str(bg["break_glass_id"]),
                         "--as", "audrey", "--note", "justified")
        assert undecided.returncode == 2 and "--decision" in undecided.stderr
        done = _cli(open_server.data_dir, "audit", "sign-off", str(bg["break_glass_id"]),
                    "--as", "audrey", "--decision", "flagged", "--note", "justified")
        assert done.returncode == 0, done.stderr
        assert "AWAITING" not in _cli(open_server.data_dir, "audit", "review",
                                      "--break-glass").stdout
        listed_cli = _cli(open_server.data_dir, "audit", "review", "--break-glass", "--all")
        assert "FLAGGED" in listed_cli.stdout and "by audrey" in listed_cli.stdout
        # The API shows the same state, and the sign-off is one audit entry.
        listed = await auditor.transport.get_json("/v1/break_glass?unreviewed=false")
        [entry] = [e for e in listed["entries"] if e["id"] == bg["break_glass_id"]]
        assert entry["reviewed_by"] == audrey.user_id and entry["review_note"] == "justified"
        assert entry["decision"] == "flagged"
        assert _rows(open_server, "break_glass.review") == [
            (audrey.user_id, None, "break_glass", str(bg["break_glass_id"]), "ok")]
        again = _cli(open_server.data_dir, "audit", "sign-off", str(bg["break_glass_id"]),
                     "--as", "audrey", "--decision", "approved")
        assert again.returncode == 1
        alerts = await auditor.transport.get_json("/v1/audit/alerts")
        carols = [a for a in alerts["alerts"] if a["user_id"] == carol_creds.user_id]
        # (out_of_hours may join it, depending on when the test runs)
        assert [a["message"] for a in carols if a["rule"] == "break_glass"] == [
            f"break-glass access to {room}"]
    finally:
        for dev in (alice, carol, auditor):
            await dev.aclose()
