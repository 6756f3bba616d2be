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
    VERIFIED,
    IdentifiedShareNotConfirmed,
    SharedStudy,
    StudyShareService,
    StudyTampered,
)
from app.services.transfers import TransferEngine
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
    assert not list((alice.client.ws.session.cache.directory / "share").glob("*"))
    assert _has(await alice.audit(open_server), "file.send", "ok")
    assert _has(await bob.audit(open_server), "file.download", "ok")


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
