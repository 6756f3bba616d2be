"""Files in the chat view, with real clients (own device, cache, keyring), the real relay and
blob store, and the real transfer engine: Attach -> upload row (bytes, speed, time left,
Cancel) -> file message; Download -> progress -> verified -> Open / Save as; a tampered
blob refused in the engine's words; Cancel stops an upload and a download. Synthetic data."""

from __future__ import annotations

import asyncio
import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPlainTextEdit

from app.services.transfers import TransferEngine, TransferOptions
from tests.integration.test_chat import room_with
from tests.ui.chat.conftest import run

OPTIONS = TransferOptions(chunk_size=64 * 1024, parallel=2, progress_interval_s=0.0)
REPORT = (b"ECHO REPORT (synthetic test data)\nPatient: Test, Tessa  MRN 000-TEST\n"
          b"LVEF 55 %, no regional wall motion abnormality.\n")


def _shown(widget) -> bool:
    return not widget.isHidden()


def _engine(person) -> TransferEngine:
    engine = TransferEngine.for_session(person.client.ws.session, options=OPTIONS)
    person.view.configure(transfers=engine)
    return engine


def _file(tmp_path, name: str, size: int, head: bytes = b"") -> tuple[str, bytes]:
    data = head + os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return str(path), data


def _send(qtbot, person, path: str) -> str:
    before = set(person.view.timeline.bubbles)
    transfer_id = person.view.attach_file(path)
    assert transfer_id in person.view.composer.uploads
    qtbot.waitUntil(lambda: not person.view.composer.uploads, timeout=30_000)
    (event_id,) = set(person.view.timeline.bubbles) - before
    return event_id


def test_send_download_open_save_and_refuse_tampered(qtbot, people, open_server, tmp_path,
                                                     save_screenshot):
    alice, bob = people("dr.amaf", "dr.bruf")
    room = run(qtbot, room_with(alice.client, bob.client))
    alice_engine, bob_engine = _engine(alice), _engine(bob)
    alice.view.refresh()
    alice.view.open_room(room)
    assert alice.view.composer.attach.isEnabled()

    # Upload: the composer's row shows bytes, speed and time left while it runs.
    shown: list[str] = []
    alice_engine.progress.connect(lambda p: [shown.append(r.detail.text())
                                             for r in alice.view.composer.uploads.values()])
    path, _data = _file(tmp_path, "echo-report.txt", 0, REPORT)
    big_path, big = _file(tmp_path, "ct-series-synthetic.zip", 3_000_000)
    report_event = _send(qtbot, alice, path)
    big_event = _send(qtbot, alice, big_path)
    assert any(" of " in t and "/s" in t for t in shown), shown
    mine = alice.view.timeline.bubbles[big_event].attachment
    assert mine is not None and mine.name.text() == "ct-series-synthetic.zip"
    assert mine.size.text() == "3.0 MB"

    # Receive: the file message offers Download.
    run(qtbot, bob.chat.sync_once())
    bob.view.refresh()
    bob.view.open_room(room)
    box = bob.view.timeline.bubbles[big_event].attachment
    assert box is not None and _shown(box.download_button)
    assert not _shown(box.open_button)

    # Download with progress; the screenshot while it runs (synthetic content).
    rows: list[str] = []
    shot: list[object] = []

    def watch(p) -> None:
        if box.row is not None and p.transfer_id == box.row.transfer_id:
            rows.append(box.row.detail.text())
            if p.phase == "downloading" and p.fraction > 0.4 and not shot:
                shot.append(save_screenshot(bob.view, "chat-attachment.png"))

    bob_engine.progress.connect(watch)
    qtbot.mouseClick(box.download_button, Qt.MouseButton.LeftButton)
    assert box.row is not None and _shown(box.row.cancel_button)
    qtbot.waitUntil(lambda: box.state == "ready", timeout=30_000)
    assert any(" of 3.0 MB" in t for t in rows), rows
    assert _shown(box.open_button) and _shown(box.save_button)
    assert "Verified" in box.status.text()

    # Save as: decrypted only to the chosen path, and audited.
    out = tmp_path / "out" / "copy.zip"
    out.parent.mkdir()
    bob.view.save_attachment_to(big_event, str(out))
    qtbot.waitUntil(out.exists, timeout=10_000)
    qtbot.waitUntil(lambda: out.stat().st_size == len(big), timeout=10_000)
    assert out.read_bytes() == big

    # Open: the text report in an in-app preview.
    report_box = bob.view.timeline.bubbles[report_event].attachment
    qtbot.mouseClick(report_box.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: report_box.state == "ready", timeout=30_000)
    qtbot.mouseClick(report_box.open_button, Qt.MouseButton.LeftButton)
    preview = bob.view.preview
    assert "LVEF 55 %" in preview.findChild(QPlainTextEdit, "previewText").toPlainText()
    preview.close()

    # Tampered on the server: refused with the engine's message, nothing opens.
    t_path, _ = _file(tmp_path, "tampered.bin", 200_000)
    t_event = _send(qtbot, alice, t_path)
    info = alice.chat.attachment(t_event)
    chunk = open_server.settings.blob_dir / info.descriptor.blob_id / "00000001"
    raw = bytearray(chunk.read_bytes())
    raw[10] ^= 0x01
    chunk.write_bytes(bytes(raw))
    run(qtbot, bob.chat.sync_once())
    bad = bob.view.timeline.bubbles[t_event].attachment
    qtbot.mouseClick(bad.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "tampered" in bad.status.text(), timeout=30_000)
    assert _shown(bad.status) and bad.state == "available"
    assert not _shown(bad.open_button)
    assert shot, "the download was too quick for the screenshot"


def test_cancel_an_upload_and_a_download(qtbot, people, tmp_path):
    alice, bob = people("dr.amac", "dr.bruc")
    room = run(qtbot, room_with(alice.client, bob.client))
    alice_engine, bob_engine = _engine(alice), _engine(bob)
    alice.view.refresh()
    alice.view.open_room(room)

    # Upload: Cancel on the composer's row once bytes are moving.
    path, _ = _file(tmp_path, "big.bin", 4_000_000)

    clicked: list[str] = []

    def cancel_upload(p) -> None:
        row = alice.view.composer.uploads.get(p.transfer_id)
        if row is not None and p.phase == "uploading" and p.bytes_done and not clicked:
            clicked.append(row.detail.text())
            qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)

    alice_engine.progress.connect(cancel_upload)
    before = set(alice.view.timeline.bubbles)
    alice.view.attach_file(path)
    qtbot.waitUntil(lambda: not alice.view.composer.uploads, timeout=30_000)
    assert clicked and "cancelled" in alice.view.message.text()
    assert set(alice.view.timeline.bubbles) == before  # nothing was sent
    alice_engine.progress.disconnect(cancel_upload)

    event_id = _send(qtbot, alice, path)
    run(qtbot, bob.chat.sync_once())
    bob.view.refresh()
    bob.view.open_room(room)
    box = bob.view.timeline.bubbles[event_id].attachment

    def cancel_download(p) -> None:
        if box.row is not None and p.phase == "downloading" and p.bytes_done \
                and box.row.cancel_button.isEnabled():
            box.row.cancel_button.setEnabled(False)
            box.row.cancel.emit(box.row.transfer_id)

    bob_engine.progress.connect(cancel_download)
    qtbot.mouseClick(box.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "cancelled" in box.status.text(), timeout=30_000)
    assert _shown(box.download_button) and box.row is None
    assert bob_engine.files.ids() == []


def test_the_signed_in_workspace_gives_the_chat_the_sessions_one_engine(
        qtbot, qapp, qloop, open_server, tmp_path):
    from tests.support.clients import create_user
    from tests.support.signed_in import sign_in_window

    creds = create_user(open_server, "dr.wiref", role="physician")
    window = sign_in_window(qtbot, qapp, open_server, creds, tmp_path / "c")
    try:
        view = window.workspace.views["chat"]
        engine = window.workspace.transfer_engine
        assert view.transfers is engine and window.workspace.study_sharing.engine is engine
        assert view.composer._attach_available
    finally:
        closing = asyncio.ensure_future(window.shutdown())
        qtbot.waitUntil(closing.done, timeout=10_000)
