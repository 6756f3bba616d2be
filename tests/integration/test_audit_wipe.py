"""The wipe end of a device's audit chain (issue #8), with a real client and the real server:
IT orders a wipe while the device holds audit entries it has not uploaded (recorded while
its uploads failed). Before the cache is erased the device records one ``wipe.local`` entry
and takes its queue out; after the erase it sends the queue -- the server takes a device's own
chain entries on its key proof alone while the wipe order is pending -- and acknowledges the
order with the chain's final head, signed. The server's check of the device's chain then
ends at that head: complete when everything arrived, a named gap when it could not."""

from __future__ import annotations

import json

import pytest

from app.core.audit_queue import AuditEntry
from app.core.errors import ServerError
from app.services.session import SessionState, SignInRefused
from app.storage.audit_queue import AuditQueueRepository
from server_stub import admin
from server_stub.core.audit_devices import verify_devices
from tests.integration.test_audit_queue import assert_verifiable_from_the_server, client_rows
from tests.integration.test_sign_in import sign_in
from tests.support.clients import create_user, new_transport, server_db


async def _signed_in_with_queued_entries(server, workstation, name):
    """Signed in; one lock/unlock uploaded, then the uploads fail (the audit's transport is
    gone, as when the network is down) while the user locks and unlocks twice more."""
    creds = create_user(server, name)
    ws = workstation(name)
    await sign_in(ws, creds)
    session = ws.session
    session.lock()
    await session.unlock(creds.password)
    await session.audit.flush()  # (the session's upload loop may have sent some already)
    assert session.audit.pending == 0
    session.audit.transport = None  # uploads fail from here
    for _ in range(2):
        session.lock()
        await session.unlock(creds.password)
    assert session.audit.pending == 4
    queued = [AuditEntry.from_bytes(r.payload)
              for r in AuditQueueRepository(session.cache).pending(limit=-1)]
    ws.creds = creds
    return ws, queued


def _ack(server, device_id):
    row = server_db(server).connection().execute(
        "SELECT seq, detail FROM audit_log WHERE action = 'device.wipe_ack' AND device_id = ?",
        (device_id,)).fetchone()
    return row[0], json.loads(row[1])


def _report(server, device_id):
    [report] = verify_devices(server_db(server).connection(), device_id)
    return report


async def test_queued_entries_arrive_before_the_wipe_ack(open_server, open_workstation):
    ws, queued = await _signed_in_with_queued_entries(open_server, open_workstation,
                                                      "dr.wiped")
    session = ws.session
    device = session.device
    order_id = admin.revoke_device(server_db(open_server), device.device_id, wipe=True)
    await session.poll_status()  # what the poll loop and the push both end in
    assert session.snapshot.state is SessionState.WIPED
    assert [p for p in ws.paths.data.rglob("*") if p.is_file()] == []

    rows = client_rows(server_db(open_server), device.device_id)
    assert [r["detail"]["device_seq"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert [r["detail"]["entry_hash"] for r in rows[2:6]] == [e.entry_hash for e in queued]
    last = rows[-1]
    assert (last["action"], last["object_type"], last["object_id"], last["outcome"]) == (
        "client.wipe.local", "device", device.device_id, "ok")
    assert (last["detail"]["reason"], last["detail"]["order_id"]) == ("remote", order_id)
    assert_verifiable_from_the_server(rows, device.device_id, device.identity.ed25519)
    # The acknowledgement comes after them and names the last one as the chain's end.
    ack_seq, ack = _ack(open_server, device.device_id)
    assert ack_seq > max(r["seq"] for r in rows)
    assert (ack["audit_seq"], ack["audit_hash"]) == (7, last["detail"]["entry_hash"])
    report = _report(open_server, device.device_id)
    assert report.ok and report.final_seq == 7, report.summary()
    assert "closed by the wipe acknowledgement at 7" in report.summary()
    await session.aclose()


async def test_entries_that_cannot_be_sent_are_a_named_gap(open_server, open_workstation):
    ws, queued = await _signed_in_with_queued_entries(open_server, open_workstation,
                                                      "dr.hurried")
    session = ws.session
    device = session.device
    identity = device.identity
    # No time left to send anything after the erase (a long queue on a slow link ends the
    # same way): the acknowledgement still goes, with the head.
    session.wipe_audit_budget_s = 0.0
    admin.revoke_device(server_db(open_server), device.device_id, wipe=True)
    await session.poll_status()
    assert session.snapshot.state is SessionState.WIPED
    assert [p for p in ws.paths.data.rglob("*") if p.is_file()] == []

    assert [r["detail"]["device_seq"]
            for r in client_rows(server_db(open_server), device.device_id)] == [1, 2]
    _, ack = _ack(open_server, device.device_id)
    assert ack["audit_seq"] == 7  # 4 queued + wipe.local
    report = _report(open_server, device.device_id)
    assert (report.gaps, report.problems, report.final_seq) == ([(3, 7)], [], 7)
    assert not report.ok and "missing 3..7" in report.summary()
    # The chain is closed: the missing entries cannot be slipped in after the ack.
    late = new_transport(open_server, identity)
    try:
        await late.post_json("/v1/audit/events", {
            "action": queued[0].action, "object_type": queued[0].object_type,
            "object_id": queued[0].object_id, "outcome": queued[0].outcome,
            "detail": queued[0].server_detail()})
        raise AssertionError("an entry was taken after the wipe acknowledgement")
    except ServerError as exc:
        assert exc.status in (401, 403)
    finally:
        await late.aclose()
    assert _report(open_server, device.device_id).gaps == [(3, 7)]
    await session.aclose()



async def test_a_wipe_ordered_while_signed_out_is_carried_out_at_the_next_sign_in(
        open_server, open_workstation):
    """The common case of a lost workstation: nobody is signed in when IT orders the wipe.
    The next sign-in is refused; the device finds the order, sends what the last session
    left queued and acknowledges with the head, instead of only erasing."""
    ws, queued = await _signed_in_with_queued_entries(open_server, open_workstation,
                                                      "dr.signedout")
    session = ws.session
    device_id = session.device.device_id
    await session.sign_out()  # the queue stays in the cache for the next session
    admin.revoke_device(server_db(open_server), device_id, wipe=True)
    with pytest.raises(SignInRefused) as refused:
        await sign_in(ws, ws.creds)
    assert refused.value.code == "device_revoked"
    assert session.snapshot.state is SessionState.WIPED
    assert [p for p in ws.paths.data.rglob("*") if p.is_file()] == []
    rows = client_rows(server_db(open_server), device_id)
    assert [r["detail"]["device_seq"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert [r["detail"]["entry_hash"] for r in rows[2:6]] == [e.entry_hash for e in queued]
    assert rows[-1]["action"] == "client.wipe.local"
    assert rows[-1]["detail"]["reason"] == "remote"
    _, ack = _ack(open_server, device_id)
    assert ack["audit_seq"] == 7
    report = _report(open_server, device_id)
    assert report.ok and report.final_seq == 7, report.summary()
    row = server_db(open_server).connection().execute(
        "SELECT state, pending_order FROM devices WHERE device_id = ?", (device_id,)).fetchone()
    assert tuple(row) == ("wiped", "none")
    await session.aclose()
