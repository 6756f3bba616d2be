"""Device audit chains as the server checks them: entries sealed by the client's own code
(app.core.audit_queue), signed with the device's real identity key and uploaded through the
API; the server re-hashes each, checks the signature against the enrolled key, follows the
links and reports gaps, edits and foreign signatures."""

from __future__ import annotations

import json
import sqlite3

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
