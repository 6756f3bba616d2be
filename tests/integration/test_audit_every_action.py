"""Issue #8, "each listed action leaves exactly one audit entry with the right actor, device
and object": every security-relevant action the issue lists is done the way a user's click
does it -- through the service (and adapter) the GUI calls, never ``AuditService.record``
directly -- by real signed-in clients against the real server; the device uploads its queue,
and the server's log must then hold, for that device, exactly the expected entries: one per
action, with the user as actor, the device, the object type and id, and the outcome; and
the device's chain must verify from the server's copy without gaps.

The actions and the entry each leaves (docs/protocol.md, "Audit"):

=====================  =========================================================
open patient data      ``client.patient.open``   series: the DICOM header (patient
                       identity) shown in the viewer's tag panel
view an image          ``client.image.open``     series: the series shown in a pane
export                 ``client.image.export``   series (watermarked image), and
                       ``client.file.export``    blob (a chat attachment saved as)
print                  ``client.file.print``     series
download               ``client.file.download``  blob
verify a device        ``client.device.verify``  device (the other one)
lock / unlock          ``client.session.lock`` / ``client.session.unlock``  device
break-glass            ``client.break_glass``    room (and the server's own
                       ``room.break_glass``, actor and device the same)
wipe                   ``client.wipe.local``     device (the device chain's last entry:
                       reason and order id; sent after the erase, before the ack) and
                       ``device.wipe_ack``       device (device-signed, naming that entry as
                       the chain's final head)
record                 ``client.record.start`` / ``client.record.stop``  call
share screen           ``client.screen.share.start`` / ``.stop``        call
admit / deny / invite  ``client.call.admit`` / ``.deny`` / ``.invite``  call (detail: the
                       other party's user id, and device id for admit and deny)
drop from a call       ``client.call.drop``      call (detail: user id, device id,
                       ``reason`` untrusted / not_member) on the device that dropped it
snapshot               ``client.snapshot``       series (detail: ``to`` clipboard, or
                       room and its ``room_id``; no ``file.send`` for its upload)
=====================  =========================================================
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

from app.config import Paths
from app.rtc.redaction import Redactor
from app.rtc.screen_track import ScreenShareTrack
from app.services.access_review import BreakGlassService
from app.services.app_state import AppState
from app.services.imaging import ImagingService, ViewerIdentity
from app.services.session import SessionState
from app.services.snapshot import send_to_room
from app.services.transfers import TransferEngine
from server_stub import admin
from server_stub.core.audit_devices import verify_devices
from server_stub.crud.audit import verify_chain
from tests.integration.test_audit_queue import restart_on_same_port
from tests.integration.test_chat import room_with, sign_in
from tests.integration.test_recording import call_between
from tests.integration.test_verification import flush_audit, pair, start_and_show
from tests.support.clients import create_user, server_db
from tests.support.dicom_gen import write_ct_series

Row = tuple[str, str | None, str | None, str]  # action, object_type, object_id, outcome


def device_rows(server, device_id: str, since_seq: int = 0) -> list[dict]:
    """Every server entry attributed to ``device_id`` after ``since_seq``."""
    rows = server_db(server).connection().execute(
        "SELECT seq, actor_user_id, device_id, action, object_type, object_id, outcome, detail"
        " FROM audit_log WHERE device_id = ? AND seq > ? ORDER BY seq",
        (device_id, since_seq)).fetchall()
    return [dict(r) | {"detail": json.loads(r["detail"]) if r["detail"] else {}}
            for r in rows]


def last_seq(server) -> int:
    return server_db(server).connection().execute(
        "SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()[0]


def assert_exactly_one_each(rows: list[dict], expected: list[Row], *, user_id: str,
                            device_id: str, prefixes: tuple[str, ...]) -> None:
    """Among ``rows`` whose action starts with one of ``prefixes``, each expected entry
    occurs exactly once and nothing else occurs; all by ``user_id`` on ``device_id``."""
    seen = Counter((r["action"], r["object_type"], r["object_id"], r["outcome"])
                   for r in rows if r["action"].startswith(prefixes))
    want = Counter(expected)
    assert all(n == 1 for n in want.values()), "the test itself lists an entry twice"
    missing = want - seen
    extra = seen - want
    assert not missing and not extra, f"missing {sorted(missing)}; extra {sorted(extra)}"
    for r in rows:
        if r["action"].startswith(prefixes):
            assert (r["actor_user_id"], r["device_id"]) == (user_id, device_id), r["action"]


def assert_chain_without_gaps(server, device_id: str) -> None:
    [report] = verify_devices(server_db(server).connection(), device_id)
    assert report.ok, report.summary()
    assert report.first_seq == 1 and report.entries == report.last_seq
    assert verify_chain(server_db(server).connection()).ok


async def test_each_listed_action_leaves_exactly_one_entry(open_server, tmp_path):
    alice, bob = await pair(open_server, tmp_path, "dr.every", "dr.other", share_room=False)
    session = alice.client.ws.session
    user_id, device_id = alice.client.user_id, alice.device_id
    expected: list[Row] = []
    try:
        room_id = await room_with(alice.client, bob.client)
        since = last_seq(open_server)  # what signing in and setting up left is not counted

        # Verify a device: the SAS flow, confirmed on both sides.
        a, _ = await start_and_show(alice, bob)
        await alice.verify.confirm(a.transaction_id)
        await bob.chat.sync_once()
        await bob.verify.confirm(a.transaction_id)
        await alice.chat.sync_once()
        expected.append(("client.device.verify", "device", bob.device_id, "ok"))

        # Download and export: bob sends a file in the consult; alice downloads it as the
        # chat view does (the session's transfer engine) and saves it with "Save as".
        scan = tmp_path / "scan.bin"
        scan.write_bytes(b"synthetic attachment " * 500)
        bob_engine = TransferEngine.for_session(bob.client.ws.session)
        descriptor = await bob_engine.upload(room_id, scan)
        event_id = await bob.chat.send_attachment(room_id, descriptor)
        await alice.chat.sync_once()
        info = alice.chat.attachment(event_id)
        assert info is not None
        engine = TransferEngine.for_session(session)
        file_id = await engine.download(info.descriptor.to_wire(),
                                        alice.chat.attachment_sender(info), room_id=room_id)
        await alice.chat.export_attachment(engine.files, file_id, info,
                                           str(tmp_path / "saved.bin"))
        expected += [("client.file.download", "blob", descriptor.blob_id, "ok"),
                     ("client.file.export", "blob", descriptor.blob_id, "ok")]

        # The image viewer, wired as app/ui/workspace_setup.py wires it: its audit hook is
        # the session link's record_series_action (the session's one audit call).
        link = _session_link(alice.client.ws, tmp_path)
        imaging = ImagingService(audit=link.record_series_action)
        opened = await imaging.open(write_ct_series(tmp_path / "ct", slices=3, rows=48,
                                                    cols=40))
        [series] = opened.series
        for _ in range(3):  # shown, scrolled, shown beside: one view of one opened series
            imaging.viewed(series)
            imaging.header_shown(series)
        pixels = series.render(0)
        fields = imaging.watermark(ViewerIdentity("dr.every", device_id), series)
        await imaging.export_image(pixels, tmp_path / "export.png", "PNG", fields,
                                   series.object_id)
        await imaging.watermarked(pixels, fields)  # what the view prints, then:
        imaging.record_print(series.object_id)
        expected += [("client.image.open", "series", series.object_id, "ok"),
                     ("client.patient.open", "series", series.object_id, "ok"),
                     ("client.image.export", "series", series.object_id, "ok"),
                     ("client.file.print", "series", series.object_id, "ok")]

        # Snapshot, as the viewer's Snapshot button does it (app/ui/imaging/snapshot.py):
        # one to the clipboard (audited once it is there), one of another series sent into
        # the consult room (uploaded from memory, sent as an attachment, then audited).
        shot = await imaging.snapshot(pixels, fields, series.object_id)
        imaging.record_snapshot(shot, "clipboard")
        [other] = (await imaging.open(write_ct_series(tmp_path / "ct-other", slices=2,
                                                      rows=40, cols=40, seed=5))).series
        assert other.object_id != series.object_id
        shot = await imaging.snapshot(other.render(0), imaging.watermark(
            ViewerIdentity("dr.every", device_id), other), other.object_id)
        await send_to_room(imaging, alice.chat, engine, shot, room_id)
        expected += [("client.snapshot", "series", series.object_id, "ok"),
                     ("client.snapshot", "series", other.object_id, "ok")]

        # Lock (idle, OS lock or "Lock now" all end in SessionService.lock) and unlock with
        # the password; a second lock while locked records nothing.
        session.lock()
        session.lock()
        assert session.snapshot.state is SessionState.LOCKED
        await session.unlock(alice.client.creds.password)
        assert session.snapshot.state is SessionState.SIGNED_IN
        expected += [("client.session.lock", "device", device_id, "ok"),
                     ("client.session.unlock", "device", device_id, "ok")]

        # Break-glass into a consult alice is not in, as the emergency-access dialog asks
        # (the service wired as app/ui/audit/setup.py wires it).
        closed_room = await bob.chat.create_room()
        emergency = BreakGlassService(lambda: session.transport,
                                      record=lambda action, **f: session.audit.record(action,
                                                                                      **f))
        await emergency.request(closed_room, "Patient collapsed on the ward, need history")
        expected += [("client.break_glass", "room", closed_room, "ok"),
                     ("room.break_glass", "room", closed_room, "ok")]

        await flush_audit(alice)
        rows = device_rows(open_server, device_id, since)
        assert_exactly_one_each(rows, expected, user_id=user_id, device_id=device_id,
                                prefixes=("client.", "room.break_glass"))
        [verified] = [r for r in rows if r["action"] == "client.device.verify"]
        assert verified["detail"]["result"] == "verified"
        assert [r["detail"]["method"] for r in rows
                if r["action"] == "client.session.unlock"] == ["password"]
        assert [{k: v for k, v in r["detail"].items() if k in ("to", "room_id")}
                for r in rows if r["action"] == "client.snapshot"] == [
            {"to": "clipboard"}, {"to": "room", "room_id": room_id}]
        assert_chain_without_gaps(open_server, device_id)

        # Wipe, last: IT orders it, the device carries it out and acknowledges it.
        before_wipe = last_seq(open_server)
        admin.revoke_device(server_db(open_server), device_id, wipe=True)
        await session.poll_status()
        assert session.snapshot.state is SessionState.WIPED
        wiped = device_rows(open_server, device_id, before_wipe)
        assert [(r["action"], r["actor_user_id"], r["object_type"], r["object_id"],
                 r["outcome"]) for r in wiped if r["actor_user_id"] == user_id] == [
            ("client.wipe.local", user_id, "device", device_id, "ok"),
            ("device.wipe_ack", user_id, "device", device_id, "ok")]
        local, ack = wiped[-2]["detail"], wiped[-1]["detail"]
        assert local["reason"] == "remote" and local["order_id"] == ack["order_id"]
        assert (ack["audit_seq"], ack["audit_hash"]) == (local["device_seq"],
                                                         local["entry_hash"])
        assert_chain_without_gaps(open_server, device_id)  # nothing lost before the wipe
    finally:
        await alice.close()
        await bob.close()


async def test_recording_and_screen_sharing_leave_one_entry_each(open_server, tmp_path):
    (host, guest), services, call = await call_between(
        open_server, tmp_path, "dr.rec", "dr.guest", answers=(True,))
    session = host.ws.session
    device_id, user_id = session.device.device_id, host.creds.user_id
    try:
        since = last_seq(open_server)
        # Record (the call view's Record button), stop; then share the screen, stop.
        await services[0].record(call.call_id)
        await services[0].stop(call.call_id)
        track = ScreenShareTrack(Redactor())
        host.calls.share_screen(call.call_id, track)
        host.calls.share_screen(call.call_id, track)  # already sharing: not a second start
        host.calls.share_screen(call.call_id, None)
        host.calls.share_screen(call.call_id, None)  # not sharing: nothing to stop
        await _flush(session)
        rows = device_rows(open_server, device_id, since)
        expected: list[Row] = [("client.record.start", "call", call.call_id, "ok"),
                               ("client.record.stop", "call", call.call_id, "ok"),
                               ("client.screen.share.start", "call", call.call_id, "ok"),
                               ("client.screen.share.stop", "call", call.call_id, "ok")]
        assert_exactly_one_each(rows, expected, user_id=user_id, device_id=device_id,
                                prefixes=("client.record.", "client.screen."))
        assert_chain_without_gaps(open_server, device_id)
    finally:
        for peer in (host, guest):
            await peer.close()


async def test_admitting_denying_and_inviting_into_a_call_leave_one_entry_each(open_server,
                                                                               tmp_path):
    from app.services.calls import CallGone
    from tests.integration.test_calls import consult, flowing, new_peer, wait_for

    alice = await new_peer(open_server, tmp_path, "dr.host", use_turn=False, announce=True)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False)
    carol = await new_peer(open_server, tmp_path, "dr.carol", use_turn=False)
    dave = await new_peer(open_server, tmp_path, "dr.dave", use_turn=False)
    session = alice.ws.session
    device_id, user_id = session.device.device_id, alice.creds.user_id
    try:
        room_id = await consult(alice, bob, carol, dave)
        call = await alice.calls.place_call(room_id, peers=[bob.party])
        await wait_for(lambda: flowing(alice, bob, 3))
        since = last_seq(open_server)
        # Carol and Dave knock (the room header's Join); the host admits one, denies the
        # other (the call window's Admit / Deny), then invites Dave (Invite...).
        for _ in range(40):
            await carol.chat.sync_once()
            await dave.chat.sync_once()
            if room_id in carol.calls.active and room_id in dave.calls.active:
                break
            await asyncio.sleep(0.1)
        await carol.calls.join(room_id)
        await dave.calls.join(room_id)
        await wait_for(lambda: len(alice.calls.waiting_for(call.call_id)) == 2, 10)
        await alice.calls.admit(call.call_id, carol.party)
        try:  # no longer waiting: refused, and not a second entry
            await alice.calls.admit(call.call_id, carol.party)
            raise AssertionError("admitted twice")
        except CallGone:
            pass
        await alice.calls.deny(call.call_id, dave.party)
        await alice.calls.deny(call.call_id, dave.party)  # no longer waiting: nothing
        assert await alice.calls.invite(call.call_id, dave.creds.user_id) == 1
        # Carol's device is blocked mid-call (the device list's Block): dropped, once.
        await wait_for(lambda: flowing(alice, carol, 3), 30)
        alice.chat.block_device(carol.creds.user_id, carol.party.device_id)
        alice.chat.block_device(carol.creds.user_id, carol.party.device_id)
        alice.calls.recheck()
        await _flush(session)
        rows = device_rows(open_server, device_id, since)
        expected: list[Row] = [("client.call.admit", "call", call.call_id, "ok"),
                               ("client.call.deny", "call", call.call_id, "ok"),
                               ("client.call.invite", "call", call.call_id, "ok"),
                               ("client.call.drop", "call", call.call_id, "ok")]
        assert_exactly_one_each(rows, expected, user_id=user_id, device_id=device_id,
                                prefixes=("client.call.",))
        detail = {r["action"]: r["detail"] for r in rows}
        assert detail["client.call.admit"]["user_id"] == carol.creds.user_id
        assert detail["client.call.admit"]["device_id"] == carol.party.device_id
        assert detail["client.call.deny"]["user_id"] == dave.creds.user_id
        assert detail["client.call.deny"]["device_id"] == dave.party.device_id
        assert detail["client.call.invite"]["user_id"] == dave.creds.user_id
        assert detail["client.call.drop"]["device_id"] == carol.party.device_id
        assert detail["client.call.drop"]["reason"] == "untrusted"
        assert all(d["room_id"] == room_id for d in detail.values())
        # Only the host's device records admission: the others have no call.* entry.
        for other in (bob, carol, dave):
            assert not [r for r in device_rows(open_server, other.party.device_id, since)
                        if r["action"].startswith("client.call.")]
        assert_chain_without_gaps(open_server, device_id)
    finally:
        for peer in (alice, bob, carol, dave):
            await peer.close()


def _session_link(workstation, tmp_path: Path):
    """The GUI's SessionLink around the workstation's signed-in session (Qt-free)."""
    from app.ui.session_link import SessionLink

    link = SessionLink(AppState(), workstation.policy, Paths.under(tmp_path / "link"),
                       keystore_for=workstation.keystore_for)
    link.service = workstation.session
    return link


async def _flush(session) -> None:
    for _ in range(50):
        await session.audit.flush()
        if not session.audit.pending:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"audit entries not uploaded ({session.audit.last_error})")



async def test_actions_done_offline_arrive_after_reconnect_without_gaps(open_server,
                                                                         open_workstation,
                                                                         tmp_path):
    """Lock, unlock and an image export done while the server is down wait in the encrypted
    cache; when the session reaches the server again (its status poll, also run on every
    push reconnect) they follow at once, in order, each once, the chain unbroken."""
    ws = open_workstation("dr.offline")
    creds = create_user(open_server, "dr.offline")
    await sign_in(ws, creds)
    session = ws.session
    device_id = session.device.device_id
    imaging = ImagingService(audit=_session_link(ws, tmp_path).record_series_action)
    [series] = (await imaging.open(write_ct_series(tmp_path / "ct", slices=2, rows=32,
                                                   cols=32))).series
    await _flush(session)
    since = last_seq(open_server)

    open_server.stop()
    session.lock()
    await session.unlock(creds.password)
    await imaging.export_image(series.render(0), tmp_path / "offline.png", "PNG",
                               imaging.watermark(ViewerIdentity("dr.offline", device_id),
                                                 series), series.object_id)
    await asyncio.sleep(1.0)  # the uploader fails and backs off meanwhile
    assert session.audit.pending == 3 and session.audit.last_error

    back = restart_on_same_port(open_server)
    try:
        await session.poll_status()
        for _ in range(100):  # the poll also kicks the uploader: no waiting out its backoff
            if not session.audit.pending:
                break
            await asyncio.sleep(0.05)
        assert session.audit.pending == 0, session.audit.last_error
        rows = [r for r in device_rows(open_server, device_id, since)
                if r["action"].startswith("client.")]
        assert [(r["action"], r["object_id"]) for r in rows] == [
            ("client.session.lock", device_id), ("client.session.unlock", device_id),
            ("client.image.export", series.object_id)]
        assert all(r["actor_user_id"] == creds.user_id for r in rows)
        assert_chain_without_gaps(open_server, device_id)  # the same database, restarted
    finally:
        await session.aclose()
        back.stop()
