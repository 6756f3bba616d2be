"""A room linked to a patient, end to end: three and four real clients (own device identity,
SQLCipher cache, keyring, audit log) through the reference relay over TLS. The link goes
only to members, end-to-end encrypted; the relay's database never holds the name or MRN."""

from __future__ import annotations

import pytest

from app.services.room_patient import (
    PATIENT_LINK_EVENT,
    InvalidPatient,
    LinkNotAllowed,
    RoomPatientService,
)
from tests.integration.test_audit_queue import client_rows
from tests.integration.test_chat import new_client, raw_files_containing, room_with
from tests.support.clients import create_user, server_db

NAME, MRN = "Jane Doe", "PT-0042917"
NAME_2, MRN_2 = "Zhang Wei", "48213377"
NEEDLES = [NAME.encode(), MRN.encode(), NAME_2.encode(), MRN_2.encode()]


def _service(client) -> RoomPatientService:
    session = client.ws.session
    return RoomPatientService(client.chat, role=session.snapshot.user.role, audit=session.audit)


async def _sync(client, service) -> None:
    """Sync, then let the service look up the roles of setters it has not met yet."""
    await client.chat.sync_once()
    await service.settle()


def _shown(service, room_id):
    link = service.link(room_id)
    return None if link is None else (link.name.reveal(), link.mrn.reveal())


async def _link_rows(client):
    await client.ws.session.audit.flush()
    rows = client_rows(server_db(client.ws.server), client.ws.session.device.device_id)
    return [(r["detail"].get("op"), r["outcome"], r["object_id"]) for r in rows
            if r["action"] == "client.room.patient_link"]


async def test_members_see_the_link_the_relay_never_does(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.pl")
    bob = await new_client(open_server, tmp_path, "cons.bob.pl",
                           creds=create_user(open_server, "cons.bob.pl", role="consultant"))
    nurse = await new_client(open_server, tmp_path, "nurse.carol.pl",
                             creds=create_user(open_server, "nurse.carol.pl", role="nurse"))
    services = {c.user_id: _service(c) for c in (alice, bob, nurse)}
    pa, pb, pn = (services[c.user_id] for c in (alice, bob, nurse))
    try:
        room_id = await room_with(alice, bob, nurse)
        assert pa.may_edit(room_id) and pb.may_edit(room_id) and not pn.may_edit(room_id)
        changed = []
        pn.changed.connect(changed.append)

        await pa.set_link(room_id, f" {NAME} ", MRN)  # trimmed
        assert _shown(pa, room_id) == (NAME, MRN)
        for client in (bob, nurse):
            await _sync(client, services[client.user_id])
        assert _shown(pb, room_id) == _shown(pn, room_id) == (NAME, MRN)
        assert changed == [room_id]
        # The link is PHI-tagged everywhere it is handed out.
        assert str(pn.link(room_id).name) == "[PHI]" and NAME not in repr(pn.link(room_id))
        # Not a chat message: nothing in the timeline, nothing searchable.
        assert bob.texts(room_id) == [] and bob.chat.search("Doe") == []

        # A nurse may not set it: refused before anything is sent, and audited as refused.
        with pytest.raises(LinkNotAllowed):
            await pn.set_link(room_id, NAME_2, MRN_2)
        with pytest.raises(InvalidPatient):
            await pb.set_link(room_id, NAME_2, "48213377;\x07")
        # The consultant changes it; every member sees the newest.
        await pb.set_link(room_id, NAME_2, MRN_2)
        for client in (alice, nurse):
            await _sync(client, services[client.user_id])
        assert {_shown(s, room_id) for s in services.values()} == {(NAME_2, MRN_2)}
        assert pa.link(room_id).set_by == bob.user_id

        # A member's client that claims another setter is ignored (the setter is the
        # authenticated Megolm sender, except for a replay, which never wins over newer).
        forged = {"link_id": "ab" * 16, "set_ms": 2**52, "set_by": alice.user_id,
                  "patient": {"name": "Forged", "mrn": "X1"}, "replay": False}
        await bob.chat.send_room_event(room_id, PATIENT_LINK_EVENT, forged)
        ignored = []
        pa.ignored.connect(ignored.append)
        await _sync(alice, pa)
        assert ignored == ["not_the_setter"] and _shown(pa, room_id) == (NAME_2, MRN_2)
        # A nurse's modified client that skips the check on her side: every receiver checks
        # the setter's role in the key directory and ignores it.
        by_nurse = {**forged, "link_id": "cd" * 16, "set_by": nurse.user_id}
        await nurse.chat.send_room_event(room_id, PATIENT_LINK_EVENT, by_nurse)
        await _sync(alice, pa)
        await _sync(bob, pb)
        assert ignored == ["not_the_setter", "role"]
        assert _shown(pa, room_id) == _shown(pb, room_id) == (NAME_2, MRN_2)

        # The relay's database, WAL and blob files hold neither name nor MRN; nor do the
        # workstations' disks (the SQLCipher cache).
        assert raw_files_containing(open_server.data_dir, NEEDLES) == {}
        for client in (alice, bob, nurse):
            assert raw_files_containing(client.ws.paths.data, NEEDLES) == {}

        # Audit: once per change on the device that made it; ids and the op only.
        assert await _link_rows(alice) == [("set", "ok", room_id)]
        assert await _link_rows(bob) == [("change", "ok", room_id)]
        assert await _link_rows(nurse) == [("set", "refused", room_id)]
        rows = client_rows(server_db(open_server), alice.ws.session.device.device_id)
        assert not any(n.decode() in str(rows) for n in NEEDLES)

        # The nurse is removed: her device forgets the link and gets no later change.
        await alice.chat.remove_member(room_id, nurse.user_id)
        await nurse.chat.refresh_rooms()
        await nurse.chat.sync_once()
        assert pn.link(room_id) is None
        await pa.set_link(room_id, NAME, MRN)
        await pa.clear_link(room_id)
        await pa.set_link(room_id, NAME, "PT-0042917-B")
        await _sync(bob, pb)
        await _sync(nurse, pn)
        assert _shown(pb, room_id) == (NAME, "PT-0042917-B")
        assert pn.link(room_id) is None
        assert nurse.chat.state.get("patient_link:" + room_id) is None
        assert [op for op, *_ in await _link_rows(alice)] == ["set", "change", "clear", "set"]

        # Cleared for everyone.
        await pb.clear_link(room_id)
        await _sync(alice, pa)
        assert pa.link(room_id) is None and pb.link(room_id) is None
    finally:
        for client in (alice, bob, nurse):
            services[client.user_id].close()
            await client.close()


async def test_a_late_joiner_gets_the_current_link(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.lj")
    bob = await new_client(open_server, tmp_path, "dr.bob.lj")
    dave = await new_client(open_server, tmp_path, "dr.dave.lj")
    pa, pb, pd = (_service(c) for c in (alice, bob, dave))
    try:
        room_id = await room_with(alice, bob)
        await pa.set_link(room_id, NAME, MRN)
        await _sync(bob, pb)
        assert _shown(pb, room_id) == (NAME, MRN)
        # An earlier setting, long after, must not come back with the replay.
        await alice.chat.invite(room_id, dave.creds.username)
        await dave.chat.refresh_rooms()
        await dave.chat.join(room_id)
        await _sync(dave, pd)
        assert pd.link(room_id) is None  # the setting was sent before dave was a member
        # The setter's device sees dave join and re-sends the current link (one replay:
        # bob, also a member, leaves it to the setter).
        await bob.chat.sync_once()
        await pb.settle()
        await alice.chat.sync_once()
        await pa.settle()
        await _sync(dave, pd)
        assert _shown(pd, room_id) == (NAME, MRN)
        assert pd.link(room_id).set_by == alice.user_id
        # Nobody replays twice; the replay is not a new setting (no audit entry).
        await alice.chat.sync_once()
        await pa.settle()
        assert not pa._replays and not pb._replays
        assert [op for op, *_ in await _link_rows(alice)] == ["set"]
        assert raw_files_containing(open_server.data_dir, NEEDLES) == {}
    finally:
        for service in (pa, pb, pd):
            service.close()
        for client in (alice, bob, dave):
            await client.close()


async def test_a_members_new_device_gets_the_current_link(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.nd")
    bob = await new_client(open_server, tmp_path, "dr.bob.nd")
    pa, pb = _service(alice), _service(bob)
    bob2 = pb2 = None
    try:
        room_id = await room_with(alice, bob)
        await pa.set_link(room_id, NAME, MRN)
        await _sync(bob, pb)
        # Bob signs in on the ward workstation: a new device, which Alice's device accepts
        # (under the trust-on-first-use policy a contact's new device waits for that).
        bob2 = await new_client(open_server, tmp_path, "dr.bob.nd", creds=bob.creds)
        pb2 = _service(bob2)
        await bob2.chat.refresh_rooms()
        await _sync(bob2, pb2)
        assert pb2.link(room_id) is None
        await alice.chat.refresh_device_lists([bob.user_id])
        for record in alice.chat.devices(bob.user_id):
            if not alice.chat.may_receive_keys(record):
                alice.chat.accept_device(bob.user_id, record.device_id, record.ed25519)
        # The next change in the room (here a message) lets Alice's device see the new
        # device, and it re-sends the link to it.
        await bob.chat.send_text(room_id, "on the ward PC now")
        await _sync(alice, pa)
        await _sync(bob2, pb2)
        assert _shown(pb2, room_id) == (NAME, MRN)
        assert pb2.link(room_id).set_by == alice.user_id
        assert [op for op, *_ in await _link_rows(alice)] == ["set"]
    finally:
        for service in (pa, pb, pb2):
            if service is not None:
                service.close()
        for client in (alice, bob, bob2):
            if client is not None:
                await client.close()


async def test_an_observer_may_not_link_the_room(open_server, tmp_path):
    """A physician who only watches the consult (room role observer, as under break-glass)
    may read the link but not set it; the relay would refuse the event anyway."""
    alice = await new_client(open_server, tmp_path, "dr.alice.ob")
    erin = await new_client(open_server, tmp_path, "dr.erin.ob")
    pa, pe = _service(alice), _service(erin)
    try:
        room_id = await alice.chat.create_room()
        await alice.chat.invite(room_id, erin.creds.username, role="observer")
        await erin.chat.refresh_rooms()
        await erin.chat.join(room_id)
        await alice.chat.sync_once()
        await pa.set_link(room_id, NAME, MRN)
        await _sync(erin, pe)  # also learns its room role
        assert _shown(pe, room_id) == (NAME, MRN)
        assert pa.may_edit(room_id) and not pe.may_edit(room_id)
        with pytest.raises(LinkNotAllowed):
            await pe.set_link(room_id, NAME_2, MRN_2)
        assert await _link_rows(erin) == [("set", "refused", room_id)]
    finally:
        for service in (pa, pe):
            service.close()
        for client in (alice, erin):
            await client.close()
