"""Device audit chains as the server checks them: entries sealed by the client's own code
(app.core.audit_queue), signed with the device's real identity key and uploaded through the
API; the server re-hashes each, checks the signature against the enrolled key, follows the
links and reports gaps, edits and foreign signatures."""

from __future__ import annotations

import json
import sqlite3
from types import SimpleNamespace

import pytest

from app.core.audit_queue import GENESIS_HASH, AuditEntry, seal
from app.core.errors import ServerError
from server_stub.core.audit_devices import verify_devices
from tests.support.clients import new_user_device, server_db


def _entries(dev, n: int, *, signer=None, start: int = 1, prev: str = GENESIS_HASH):
    sign = signer or dev.identity.sign
    out = []
    for seq in range(start, start + n):
        entry = seal(AuditEntry(dev.device_id, seq, 1_700_000_000_000 + seq, "file.export",
                                "consult", f"room-{seq % 3}", "ok", {"format": "pdf"}, prev),
                     sign)
        out.append(entry)
        prev = entry.entry_hash
    return out


async def _upload(dev, entries) -> None:
    for e in entries:
        await dev.transport.post_json("/v1/audit/events", {
            "action": e.action, "object_type": e.object_type, "object_id": e.object_id,
            "outcome": e.outcome, "detail": e.server_detail()})


def _report(server, device_id):
    [report] = [r for r in verify_devices(server_db(server).connection())
                if r.device_id == device_id]
    return report


async def test_a_good_chain_verifies_and_a_gap_is_named(open_server):
    _, dev = await new_user_device(open_server, "alice")
    try:
        entries = _entries(dev, 8)
        await _upload(dev, entries[:3] + entries[5:])  # 4 and 5 never arrive
        report = _report(open_server, dev.device_id)
        assert report.gaps == [(4, 5)] and not report.problems, report
        assert (report.entries, report.first_seq, report.last_seq) == (6, 1, 8)
        await _upload(dev, entries[3:5])  # queued while offline: they come late
        report = _report(open_server, dev.device_id)
        assert report.ok, report.summary()
    finally:
        await dev.aclose()


async def test_edits_reordering_and_foreign_signatures_are_caught(open_server):
    _, dev = await new_user_device(open_server, "alice")
    _, mallory = await new_user_device(open_server, "mallory")
    try:
        await _upload(dev, _entries(dev, 5))
        # Another device's key signs entries claiming to be alice's device.
        forged = _entries(dev, 1, signer=mallory.identity.sign, start=6,
                          prev=_entries(dev, 5)[-1].entry_hash)
        await _upload(dev, forged)
        assert _report(open_server, dev.device_id).problems == [
            (6, "signature invalid for the device key")]
        db_path = server_db(open_server).path
        conn = sqlite3.connect(db_path, isolation_level=None)
        conn.execute("DROP TRIGGER audit_log_no_update")
        # Edit: the server row says another room than the device signed.
        conn.execute("UPDATE audit_log SET object_id = 'room-x' WHERE device_id = ?"
                      " AND json_extract(detail, '$.device_seq') = 2", (dev.device_id,))
        # Reorder: swap device_seq 3 and 4 in the stored details.
        rows = {r[1]: (r[0], json.loads(r[2])) for r in conn.execute(
            "SELECT seq, json_extract(detail, '$.device_seq'), detail FROM audit_log"
            " WHERE device_id = ? AND action LIKE 'client.%'", (dev.device_id,))}
        for a, b in ((3, 4), (4, 3)):
            seq, detail = rows[a]
            detail["device_seq"] = b
            conn.execute("UPDATE audit_log SET detail = ? WHERE seq = ?",
                         (json.dumps(detail, sort_keys=True, separators=(",", ":")), seq))
        conn.close()
        report = _report(open_server, dev.device_id)
        problems = dict(report.problems)
        assert problems[2] == "entry altered (hash mismatch)"
        assert problems[3] == "entry altered (hash mismatch)"
        assert problems[4] == "entry altered (hash mismatch)"
        assert not report.ok
    finally:
        await dev.aclose()
        await mallory.aclose()


async def test_device_chains_through_api_and_cli(open_server):
    from tests.server.test_audit_chain import _cli

    _, auditor = await new_user_device(open_server, "audrey", role="auditor")
    _, dev = await new_user_device(open_server, "alice")
    try:
        entries = _entries(dev, 4)
        await _upload(dev, [entries[0], entries[1], entries[3]])
        chains = await auditor.transport.get_json("/v1/audit/devices")
        [mine] = [c for c in chains if c["device_id"] == dev.device_id]
        assert mine["gaps"] == [[3, 3]] and not mine["ok"]
        with pytest.raises(ServerError) as err:
            await dev.transport.get_json("/v1/audit/devices")
        assert err.value.status == 403
        result = _cli(open_server.data_dir, "audit", "verify", "--devices")
        assert result.returncode == 1
        assert f"device {dev.device_id}: BROKEN: missing 3" in result.stderr
        assert "audit chain OK" in result.stdout  # the server chain itself is fine
    finally:
        await dev.aclose()
        await auditor.aclose()


# -- the end of a wiped device's chain -------------------------------------------------------


async def _refused(coro) -> ServerError:
    with pytest.raises(ServerError) as err:
        await coro
    return err.value


async def test_a_wipe_ack_closes_the_chain_and_a_forged_one_is_refused(open_server):
    from app.core.audit_queue import ChainHead
    from server_stub import admin
    from tests.support.clients import new_transport, order_ack_body

    _, dev = await new_user_device(open_server, "alice")
    _, mallory = await new_user_device(open_server, "mallory")
    try:
        entries = _entries(dev, 5)
        await _upload(dev, entries[:2])
        order_id = admin.revoke_device(server_db(open_server), dev.device_id, wipe=True)
        # Under the order the session is gone, yet the device's own chain entries are still
        # taken on its key proof alone (here without any token)...
        bare = new_transport(open_server, dev.identity)
        await _upload(SimpleNamespace(transport=bare), entries[2:3])
        # ...but nothing else: an event outside the chain is refused.
        err = await _refused(bare.post_json("/v1/audit/events", {"action": "session.lock"}))
        assert (err.status, err.code) == (403, "device_revoked")

        def ack(head: ChainHead | None, **changes):
            body = order_ack_body(dev.identity, "wipe", order_id, audit_head=head)
            return bare.post_json("/v1/devices/self/ack", body | changes)

        h = {e.device_seq: e.entry_hash for e in entries}
        refused = [
            # behind entry 3, which the server already has
            ack(ChainHead(2, h[2])),
            # entry 3's number with another hash
            ack(ChainHead(3, h[2])),
            # signed for head 3, but the body names head 5
            ack(ChainHead(3, h[3]), audit_seq=5, audit_hash=h[5]),
            # signed by another device's key
            ack(ChainHead(5, h[5]), signature=order_ack_body(
                mallory.identity, "wipe", order_id, audit_head=ChainHead(5, h[5]))["signature"]),
        ]
        for attempt in refused:
            err = await _refused(attempt)
            assert (err.status, err.code) == (400, "ack_invalid"), err
        # The v1 form (no head, not signed over one) does not verify either.
        v1 = order_ack_body(dev.identity, "logout", order_id) | {"order": "wipe"}
        err = await _refused(bare.post_json("/v1/devices/self/ack", v1))
        assert (err.status, err.code) == (400, "ack_invalid")
        err = await _refused(ack(ChainHead(5, h[5]), audit_hash=None))
        assert err.status == 422
        assert _report(open_server, dev.device_id).final_seq is None  # nothing recorded yet

        # The true ack: the chain ended at 5; 4 and 5 never arrived.
        done = await ack(ChainHead(5, h[5]))
        assert done["state"] == "wiped"
        report = _report(open_server, dev.device_id)
        assert (report.final_seq, report.gaps, report.problems) == (5, [(4, 5)], [])
        assert "missing 4..5" in report.summary()
        _, auditor = await new_user_device(open_server, "audrey", role="auditor")
        chains = await auditor.transport.get_json("/v1/audit/devices")
        [mine] = [c for c in chains if c["device_id"] == dev.device_id]
        assert (mine["final_seq"], mine["gaps"], mine["ok"]) == (5, [[4, 5]], False)
        await auditor.aclose()
        # Closed: they cannot be slipped in afterwards.
        err = await _refused(_upload(dev, entries[3:4]))
        assert (err.status, err.code) == (403, "device_revoked")
        assert _report(open_server, dev.device_id).gaps == [(4, 5)]
        await bare.aclose()
    finally:
        await dev.aclose()
        await mallory.aclose()


async def test_a_device_wiped_before_uploading_anything_has_its_whole_chain_missing(
        open_server):
    from app.core.audit_queue import ChainHead
    from server_stub import admin
    from tests.support.clients import order_ack_body

    _, dev = await new_user_device(open_server, "bob")
    _, quiet = await new_user_device(open_server, "carol")
    try:
        entries = _entries(dev, 3)
        db = server_db(open_server)
        for device, head in ((dev, ChainHead(3, entries[-1].entry_hash)), (quiet, None)):
            order_id = admin.revoke_device(db, device.device_id, wipe=True)
            await device.transport.post_json("/v1/devices/self/ack", order_ack_body(
                device.identity, "wipe", order_id, audit_head=head))
        report = _report(open_server, dev.device_id)
        assert (report.entries, report.gaps, report.final_seq) == (0, [(1, 3)], 3)
        # A device that recorded nothing (head 0) has nothing missing: no report at all.
        assert [r for r in verify_devices(db.connection()) if r.device_id == quiet.device_id
                ] == []
        ack = db.connection().execute(
            "SELECT detail FROM audit_log WHERE action = 'device.wipe_ack' AND device_id = ?",
            (dev.device_id,)).fetchone()[0]
        assert json.loads(ack)["audit_seq"] == 3
    finally:
        await dev.aclose()
        await quiet.aclose()


async def test_uploads_under_a_wipe_order_are_bounded(open_server, monkeypatch):
    """A device kept from wiping (and acknowledging) cannot fill the log on its proof."""
    from server_stub import admin
    from server_stub.core import audit_devices

    monkeypatch.setattr(audit_devices, "MAX_ENTRIES_UNDER_WIPE_ORDER", 2)
    _, dev = await new_user_device(open_server, "dora")
    try:
        entries = _entries(dev, 4)
        await _upload(dev, entries[:1])  # before the order: not counted
        admin.revoke_device(server_db(open_server), dev.device_id, wipe=True)
        await _upload(dev, entries[1:3])
        err = await _refused(_upload(dev, entries[3:]))
        assert (err.status, err.code) == (403, "device_revoked")
        assert _report(open_server, dev.device_id).last_seq == 3
    finally:
        await dev.aclose()


def test_client_and_server_sign_the_same_wipe_acknowledgement_bytes():
    from app.core.audit_queue import ChainHead
    from app.core.audit_queue import wipe_ack_message as client_message
    from server_stub.core.audit_devices import wipe_ack_message as server_message

    head = ChainHead(7, "ab" * 32)
    assert client_message("DEV", "ORD", 123, head) == server_message(
        "DEV", "ORD", 123, (7, "ab" * 32)) == (
        b"SC-WIPE-ACK-v2\nDEV\nORD\n123\n7:" + b"ab" * 32)
    assert client_message("DEV", "ORD", 123, None) == server_message("DEV", "ORD", 123, None)
    assert client_message("DEV", "ORD", 123, None).endswith(b"\nunknown")
