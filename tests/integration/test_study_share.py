"""Sharing a DICOM study into a room end to end: two real clients (own device, SQLCipher
cache, audit log) through the reference server over TLS; chat, transfer engine, file store,
de-identification and the imaging service unmocked. Synthetic DICOM (tests/support)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from app.core.study_manifest import StudyManifest
from app.services.imaging import ImagingService
from app.services.study_share import (
    UNVERIFIED,
    VERIFIED,
    IdentifiedShareNotConfirmed,
    ReshareRefused,
    SharedStudy,
    StudyShareService,
    StudyTampered,
)
from app.services.transfers import TransferEngine, download_id, parse_descriptor
from tests.integration.test_audit_queue import client_rows
from tests.integration.test_chat import new_client, raw_files_containing, room_with
from tests.support.clients import server_db
from tests.support.dicom_gen import write_ct_series


@dataclasses.dataclass
class Sharer:
    client: object
    share: StudyShareService

    async def audit(self, server) -> list[dict]:
        """The entries this device's audit queue delivered to the server."""
        session = self.client.ws.session
        await session.audit.flush()
        return [{**r, "action": r["action"].removeprefix("client.")}
                for r in client_rows(server_db(server), session.device.device_id)]


async def _sharer(server, tmp_path, name: str) -> Sharer:
    client = await new_client(server, tmp_path, name)
    session = client.ws.session
    engine = TransferEngine.for_session(session)
    return Sharer(client, StudyShareService(client.chat, engine, audit=session.audit,
                                            work_dir=session.cache.directory / "share"))


@pytest.fixture
async def pair(open_server, tmp_path):
    alice = await _sharer(open_server, tmp_path, "dr.alice")
    bob = await _sharer(open_server, tmp_path, "dr.bob")
    room_id = await room_with(alice.client, bob.client)
    yield alice, bob, room_id
    await alice.client.close()
    await bob.client.close()


def _series(tmp_path: Path) -> list[Path]:
    return write_ct_series(tmp_path / "ct", slices=3, rows=48, cols=40)


async def _received(bob: Sharer) -> SharedStudy:
    await bob.client.chat.sync_once()
    (shared,) = bob.share.studies()
    return shared


async def test_shared_study_is_deidentified_verified_and_opens_identical_pixels(
        pair, open_server, tmp_path):
    alice, bob, room_id = pair
    paths = _series(tmp_path)
    result = await alice.share.share(room_id, paths)
    assert result.shared.manifest.deidentified
    shared = await _received(bob)
    assert shared.sender == alice.client.user_id
    assert len(shared.manifest.files) == 3
    progress = []
    bob.share.progress.connect(progress.append)
    opened = await bob.share.fetch(shared)
    assert opened.status == VERIFIED and opened.label.startswith("Verified · shared by dr.alice")
    assert progress[-1] == (shared.study_id, 3, 3)
    (blobs,) = opened.series.values()
    # The patient's identity never left Alice's machine; the pixels did, unchanged.
    assert not any(b"SYNTHETIC^PATIENT" in b or b"SYN-0001" in b for b in blobs)
    imaging = ImagingService()
    theirs = (await imaging.open(blobs)).series[0]
    ours = (await imaging.open(paths)).series[0]
    assert len(theirs) == len(ours) == 3
    for i in range(3):
        assert np.array_equal(theirs.render(i), ours.render(i))
    # Stored encrypted only; the relay and the blob store hold no plaintext either.
    needles = [b"SYNTHETIC^PATIENT", b"SYN-0001", b"DICM"]
    assert raw_files_containing(open_server.data_dir, needles) == {}
    assert raw_files_containing(bob.client.ws.paths.data, needles) == {}
    assert not (alice.client.ws.session.cache.directory / "share").exists()
    # One audit entry per shared / fetched study (object: the study), none per file.
    for sharer, action in ((alice, "file.send"), (bob, "file.download")):
        rows = [r for r in await sharer.audit(open_server) if r["action"] == action]
        assert [(r["object_type"], r["object_id"], r["outcome"], r["detail"]["files"])
                for r in rows] == [("study", shared.study_id, "ok", 3)]


def _plaintext_dicom_files(root: Path, needles: list[bytes]) -> list[str]:
    """Files under ``root`` that are plaintext DICOM (``DICM`` at offset 128) or hold a
    synthetic patient marker anywhere."""
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                data = fh.read()
            if data[128:132] == b"DICM" or any(n in data for n in needles):
                hits.append(str(path))
    return hits


async def test_nothing_plaintext_is_written_while_a_study_is_shared(pair, open_server, tmp_path):
    """Issue #6: the de-identified copies go from memory to the transfer engine. The sharer's
    whole data directory is scanned while every file is being uploaded, and after."""
    alice, bob, room_id = pair
    paths = _series(tmp_path)
    data_dir = alice.client.ws.paths.data
    assert not str(paths[0]).startswith(str(data_dir))  # the user's files are elsewhere
    needles = [b"SYNTHETIC^PATIENT", b"SYN-0001"]
    hits: list[str] = []
    scans = []

    def scan(snapshot) -> None:
        if snapshot.phase in ("preparing", "uploading"):
            scans.append(snapshot.transfer_id)
            hits.extend(_plaintext_dicom_files(data_dir, needles))

    alice.share.engine.progress.connect(scan)
    await alice.share.share(room_id, paths)
    assert len(set(scans)) == 3 and hits == []
    assert _plaintext_dicom_files(data_dir, needles) == []
    # The receiving side: chunks staged as ciphertext, files in the encrypted store only.
    bob.share.engine.progress.connect(lambda s: hits.extend(
        _plaintext_dicom_files(bob.client.ws.paths.data, needles)))
    opened = await bob.share.fetch(await _received(bob))
    assert len(next(iter(opened.series.values()))) == 3
    assert hits == [] and _plaintext_dicom_files(bob.client.ws.paths.data, needles) == []


def _has(rows: list[dict], action: str, outcome: str) -> dict | None:
    return next((r for r in rows if (r["action"], r["outcome"], r["object_type"])
                 == (action, outcome, "study")), None)


async def test_an_identified_share_needs_explicit_confirmation_and_is_audited(
        pair, open_server, tmp_path):
    alice, bob, room_id = pair
    paths = _series(tmp_path)
    with pytest.raises(IdentifiedShareNotConfirmed):
        await alice.share.share(room_id, paths, deidentify=False)
    result = await alice.share.share(room_id, paths, deidentify=False, confirm_identified=True)
    assert not result.shared.manifest.deidentified
    entry = _has(await alice.audit(open_server), "file.send", "ok")
    assert entry["detail"]["identified_confirmed"] is True
    opened = await bob.share.fetch(await _received(bob))
    assert any(b"SYN-0001" in b for b in next(iter(opened.series.values())))


async def test_a_tampered_manifest_is_refused(pair, open_server, tmp_path):
    alice, bob, room_id = pair
    await alice.share.share(room_id, _series(tmp_path))
    shared = await _received(bob)
    forged_series = (dataclasses.replace(shared.manifest.series[0],
                                         files=shared.manifest.series[0].files[:2]),)
    for manifest in (
            dataclasses.replace(shared.manifest, series=forged_series),
            dataclasses.replace(shared.manifest, ts_ms=shared.manifest.ts_ms + 1),
            dataclasses.replace(shared.manifest, signature=shared.manifest.signature[::-1])):
        with pytest.raises(StudyTampered):
            await bob.share.fetch(dataclasses.replace(shared, manifest=manifest))
    # A manifest naming another device than the one whose room key carried it.
    with pytest.raises(StudyTampered):
        await bob.share.fetch(dataclasses.replace(shared, sender_device="FORGED"))
    assert _has(await bob.audit(open_server), "file.download", "refused")
    assert isinstance(shared.manifest, StudyManifest)
    opened = await bob.share.fetch(shared)  # the genuine one still opens
    assert opened.status == VERIFIED


async def test_a_tampered_file_is_refused(pair, open_server, tmp_path):
    alice, bob, room_id = pair
    await alice.share.share(room_id, _series(tmp_path))
    shared = await _received(bob)
    blob_id = shared.manifest.files[1].descriptor["blob_id"]
    chunk = open_server.settings.blob_dir / blob_id / "00000000"
    raw = bytearray(chunk.read_bytes())
    raw[200] ^= 0x01
    chunk.write_bytes(bytes(raw))
    with pytest.raises(StudyTampered) as caught:
        await bob.share.fetch(shared)
    assert "was not opened" in caught.value.user_message


# -- kept across restarts, retention and wipe ------------------------------------------------


async def _restart(sharer: Sharer) -> Sharer:
    """The workstation signs out and in again: new session, chat and sharing services over
    the same (reopened) encrypted cache."""
    from app.services.chat import ChatService
    from tests.integration.test_chat import sign_in

    client = sharer.client
    sharer.share.close()
    await client.chat.stop()
    await client.ws.session.sign_out()
    await sign_in(client.ws, client.creds)
    client.chat = ChatService(client.ws.session)
    await client.chat.start(background=False)
    session = client.ws.session
    return Sharer(client, StudyShareService(
        client.chat, TransferEngine.for_session(session), audit=session.audit,
        work_dir=session.cache.directory / "share"))


async def test_shared_studies_are_listed_again_after_a_restart_and_open_from_the_cache(
        pair, open_server, tmp_path):
    alice, bob, room_id = pair
    await alice.share.share(room_id, _series(tmp_path))
    shared = await _received(bob)
    first = await bob.share.fetch(shared)
    assert bob.share.status(shared.study_id) == VERIFIED
    # Nothing readable on Bob's disk: no DICOM, no description, no file key in the clear.
    key_b64 = shared.manifest.files[0].descriptor["key"].encode()
    needles = [b"DICM", key_b64, shared.manifest.series[0].series_id.encode()]
    assert raw_files_containing(bob.client.ws.paths.data, needles) == {}

    bob = await _restart(bob)
    (again,) = bob.share.studies()
    assert again == shared  # same room, event, sender device and signed manifest
    assert bob.share.status(shared.study_id) == VERIFIED
    # Opening it again after the restart needs no download: the files come from the
    # encrypted store, checked again (signature, digests) and decrypted into memory.
    fetched_before = len(list(open_server.settings.blob_dir.rglob("*")))
    opened = await bob.share.fetch(again)
    assert opened.status == VERIFIED and opened.series == first.series
    assert opened.file_ids == first.file_ids
    assert len(list(open_server.settings.blob_dir.rglob("*"))) == fetched_before
    assert raw_files_containing(bob.client.ws.paths.data, needles) == {}
    bob.share.close()


async def test_retention_removes_shared_studies_and_their_files(pair, tmp_path):
    alice, bob, room_id = pair
    await alice.share.share(room_id, _series(tmp_path))
    shared = await _received(bob)
    opened = await bob.share.fetch(shared)
    files = bob.share.engine.files
    assert set(opened.file_ids) <= set(files.ids())
    transfer_ids = [download_id(parse_descriptor(f.descriptor)) for f in shared.manifest.files]
    assert all(bob.share.engine.result(t) is not None for t in transfer_ids)
    removed = []
    bob.share.removed.connect(removed.append)
    now = bob.share._received[shared.study_id]
    # Within the retention period: kept. Beyond it: gone with its decrypted-on-read files.
    assert bob.share.purge_expired(now + 1000) == []
    retention = bob.client.chat.retention_ms
    assert bob.share.purge_expired(now + retention + 1) == [shared.study_id]
    assert removed == [[shared.study_id]] and bob.share.studies() == []
    assert not set(opened.file_ids) & set(files.ids())
    # The downloads' rows (descriptor and key) went too.
    assert [bob.share.engine.result(t) for t in transfer_ids] == [None] * len(transfer_ids)
    # ... and it stays gone after a restart.
    bob = await _restart(bob)
    assert bob.share.studies() == []
    bob.share.close()


async def test_a_room_with_disappearing_messages_lets_its_studies_disappear(pair, tmp_path):
    alice, bob, room_id = pair
    await alice.share.share(room_id, _series(tmp_path))
    shared = await _received(bob)
    await alice.client.chat.set_disappearing(room_id, 60)
    await bob.client.chat.sync_once()
    now = bob.share._received[shared.study_id]
    assert bob.share.purge_expired(now + 30_000) == []
    assert bob.share.purge_expired(now + 61_000) == [shared.study_id]


async def test_a_kiosk_session_keeps_no_shared_study_after_sign_out(open_server, tmp_path):
    from app.services.chat import ChatService
    from tests.integration.test_chat import Client
    from tests.integration.test_kiosk_session import Kiosk
    from tests.support.clients import create_user, next_totp_code

    alice = await _sharer(open_server, tmp_path, "dr.alice.k")
    creds = create_user(open_server, "nurse.cart.k")
    kiosk = Kiosk(open_server, tmp_path / "cart")
    code = await next_totp_code(open_server, creds.username, creds.totp_secret)
    await kiosk.session.sign_in(creds.username, creds.password, code)
    chat = ChatService(kiosk.session)
    await chat.start(background=False)
    cart = Client(creds, kiosk, chat)
    session = kiosk.session
    share = StudyShareService(chat, TransferEngine.for_session(session), audit=session.audit,
                              work_dir=session.cache.directory / "share")
    try:
        room_id = await room_with(alice.client, cart)
        await alice.share.share(room_id, _series(tmp_path))
        await chat.sync_once()
        (shared,) = share.studies()
        assert (await share.fetch(shared)).status == VERIFIED
        share.close()
        await chat.stop()
        await session.sign_out()
        assert [p for p in kiosk.paths.data.rglob("*") if p.is_file()] == []
    finally:
        await alice.client.close()


# -- re-sharing a received study -------------------------------------------------------------


async def test_a_received_verified_study_is_reshared_deidentified_signed_by_the_resharer(
        pair, open_server, tmp_path):
    alice, bob, room_id = pair
    carol = await _sharer(open_server, tmp_path, "dr.carol")
    try:
        # Alice shares the *identified* study into the patient's room (confirmed).
        await alice.share.share(room_id, _series(tmp_path), deidentify=False,
                                confirm_identified=True)
        shared = await _received(bob)
        opened = await bob.share.fetch(shared)
        assert any(b"SYN-0001" in b for b in next(iter(opened.series.values())))
        second = await room_with(bob.client, carol.client)

        # Not into the same room, not into a room Bob is not in, not an unverified one.
        for target in (room_id, "not-a-room-of-bob"):
            with pytest.raises(ReshareRefused):
                await bob.share.reshare(opened, target)
        with pytest.raises(ReshareRefused):
            await bob.share.reshare(dataclasses.replace(opened, status=UNVERIFIED), second)

        result = await bob.share.reshare(opened, second)
        manifest = result.shared.manifest
        assert manifest.deidentified and manifest.room_id == second
        assert (manifest.sender_user, manifest.sender_device) == (
            bob.client.user_id, bob.client.ws.session.device.device_id)
        # Carol gets it, signed by Bob's device, and it holds no identity.
        await carol.client.chat.sync_once()
        (theirs,) = carol.share.studies()
        assert theirs.sender == bob.client.user_id
        got = await carol.share.fetch(theirs)
        assert got.status == VERIFIED and got.label.startswith("Verified · shared by dr.bob")
        blobs = [b for series in got.series.values() for b in series]
        assert len(blobs) == 3
        assert not any(b"SYNTHETIC^PATIENT" in b or b"SYN-0001" in b for b in blobs)
        imaging = ImagingService()
        before = (await imaging.open(next(iter(opened.series.values())))).series[0]
        after = (await imaging.open(blobs)).series[0]
        for i in range(3):
            assert np.array_equal(before.render(i), after.render(i))
        # Nothing identified (nor any DICOM) was written to Bob's disk on the way.
        assert raw_files_containing(bob.client.ws.paths.data,
                                    [b"SYNTHETIC^PATIENT", b"SYN-0001", b"DICM"]) == {}
        # Audited on Bob's device: the refusals and the share, naming the source study.
        rows = await bob.audit(open_server)
        (sent,) = [r for r in rows if (r["action"], r["outcome"]) == ("file.send", "ok")]
        assert (sent["object_type"], sent["detail"]["files"]) == ("study", 3)
        assert sent["detail"]["reshared_from"] == shared.study_id
        assert sent["detail"]["deidentified"] is True
        reasons = [r["detail"]["reason"] for r in rows
                   if (r["action"], r["outcome"]) == ("file.send", "refused")]
        assert reasons == ["not_a_member", "not_a_member", "not_verified"]
    finally:
        await carol.client.close()


async def test_a_wipe_leaves_no_shared_study_to_list_or_open(pair, open_server, tmp_path):
    alice, bob, room_id = pair
    await alice.share.share(room_id, _series(tmp_path))
    shared = await _received(bob)
    await bob.share.fetch(shared)
    data = bob.client.ws.paths.data
    bob.share.close()
    await bob.client.chat.stop()
    await bob.client.ws.session.wipe(reason="test", acknowledge=False)
    # The cache (the kept list, the manifests and their file keys) and every encrypted file
    # are gone; whatever name is left on disk holds nothing of the study.
    left = [p for p in data.rglob("*") if p.is_file()]
    assert not [p for p in left if p.suffix in (".scf", ".db") or "cache" in p.name]
    needles = [shared.manifest.series[0].series_id.encode(), shared.study_id.encode(),
               shared.manifest.files[0].descriptor["key"].encode(), b"DICM"]
    assert raw_files_containing(data, needles) == {}


async def test_the_patients_own_consult_room_takes_the_study_as_it_is(pair, open_server,
                                                                       tmp_path):
    """The check before a study leaves its patient's consult room: a room linked to the
    patient whose MRN the files carry takes the identified study without a confirmation;
    a room linked to another patient, or to none, is outside."""
    from app.services.room_patient import RoomPatientService

    alice, bob, room_id = pair
    patients = RoomPatientService(alice.client.chat, role="physician",
                                  audit=alice.client.ws.session.audit)
    alice.share.patients = patients
    other = await room_with(alice.client, bob.client)
    try:
        paths = _series(tmp_path)
        await patients.set_link(room_id, "Synthetic Patient", "SYN-0001")
        await patients.set_link(other, "Someone Else", "SYN-0002")
        assert alice.share.patient_room(room_id, paths)
        assert not alice.share.patient_room(other, paths)
        with pytest.raises(IdentifiedShareNotConfirmed):
            await alice.share.share(other, paths, deidentify=False)
        unlinked = await room_with(alice.client, bob.client)
        with pytest.raises(IdentifiedShareNotConfirmed):
            await alice.share.share(unlinked, paths, deidentify=False)
        result = await alice.share.share(room_id, paths, deidentify=False)
        assert not result.shared.manifest.deidentified
        entry = _has(await alice.audit(open_server), "file.send", "ok")
        assert entry["detail"]["patient_room"] is True
        assert entry["detail"]["identified_confirmed"] is False
    finally:
        patients.close()
