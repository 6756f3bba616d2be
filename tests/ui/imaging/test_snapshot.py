"""Snapshot in the viewer (issues #6 and #8): what the active pane shows -- slice, window,
zoom, measurements -- with the watermark burned in, to the clipboard or into a consult room
as an encrypted image attachment that a second real client receives; one ``snapshot`` audit
entry per snapshot, saying where it went."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QWidget

from app.config import Policy
from app.core.coview import FOLLOWER
from app.imaging.watermark import burn_in
from app.services.app_state import AppState
from app.services.imaging import SNAPSHOT_ACTION, ImagingService, ViewerIdentity
from app.services.study_share import StudyShareService
from app.services.transfers import TransferEngine
from app.storage.errors import CacheError
from app.ui.asyncbridge import TaskRunner
from app.ui.imaging.qimage import to_array
from app.ui.imaging.snapshot import configure_snapshot
from app.ui.views.images import ImagesView
from tests.integration.test_chat import new_client, room_with
from tests.support.dicom_gen import write_ct_series
from tests.ui.chat.conftest import run
from tests.ui.imaging.conftest import DEVICE, USER, WHEN, open_and_wait
from tests.ui.imaging.test_viewer import TESSERACT, drag, ocr


class Recorder:
    """The viewer's audit hook as the session link provides it (action, object, detail)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict | None]] = []

    def __call__(self, action: str, object_id: str, detail: dict | None = None) -> None:
        self.calls.append((action, object_id, detail))

    def snapshots(self) -> list[tuple[str, str, dict | None]]:
        return [c for c in self.calls if c[0] == SNAPSHOT_ACTION]


def done(qtbot, future, timeout: int = 20_000):
    assert future is not None
    qtbot.waitUntil(future.done, timeout=timeout)
    assert future.exception() is None, future.exception()
    return future.result()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def viewer(qtbot, qloop, recorder):
    v = ImagesView()
    v.configure(service=ImagingService(audit=recorder, clock=lambda: WHEN),
                identity=ViewerIdentity(USER, DEVICE))
    v.resize(1100, 720)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    return v


def measure(qtbot, view) -> None:
    """A distance measurement across the middle of the view, dragged with the mouse."""
    view.distance_action.trigger()
    canvas = view.canvas
    centre = QPoint(canvas.width() // 2, canvas.height() // 2)
    drag(canvas, centre - QPoint(80, 0), centre + QPoint(80, 30), Qt.MouseButton.LeftButton)
    assert canvas.measurements[canvas.state.index]


def test_snapshot_to_clipboard_is_the_view_watermarked_and_audited_once(
        qtbot, viewer, recorder, ct_dir, tmp_path):
    open_and_wait(qtbot, viewer, [ct_dir])
    assert viewer.snapshot_button.isEnabled()
    assert viewer.snapshot_copy_action.shortcut().toString() == "S"
    # The reader goes to slice 4, picks a window, zooms in and measures.
    canvas = viewer.canvas
    canvas.set_index(3)
    viewer.preset_actions["abdomen"].trigger()
    canvas.zoom_by(1.6)
    measure(qtbot, viewer)
    QGuiApplication.clipboard().clear()

    shown = to_array(viewer.active.pages.grab().toImage())  # what the pane shows now
    snapshot = done(qtbot, viewer.snapshot_to_clipboard())

    # Exactly that view, with the watermark burned in by the export path's burn-in.
    lines = [f"{USER} @ {DEVICE}", "Snapshot 2026-11-22 09:30 UTC", "Patient ID SYN-0001"]
    assert np.array_equal(snapshot.pixels, burn_in(shown, lines))
    assert snapshot.pixels.shape == shown.shape
    # The view it carries is the zoomed, windowed slice 4 with the yellow measurement...
    yellow = ((shown[..., 0] > 200) & (shown[..., 1] > 160) & (shown[..., 2] < 80)).sum()
    assert yellow > 50
    canvas.zoom_fit()
    assert not np.array_equal(to_array(viewer.active.pages.grab().toImage()), shown)
    # ... and the watermark is in its pixels: a darkened band of white letters at the
    # bottom, the origin tiled faintly over the image; tesseract reads it.
    band = slice(shown.shape[0] - 60, shown.shape[0])
    changed = np.any(snapshot.pixels[band] != shown[band], axis=2)
    assert changed.mean() > 0.5
    tiled = np.any(snapshot.pixels[: shown.shape[0] // 2] != shown[: shown.shape[0] // 2],
                   axis=2)
    assert tiled.mean() > 0.01
    if TESSERACT:
        text = ocr(snapshot.pixels[shown.shape[0] - 70 :], tmp_path, scale=2).replace(" ", "")
        assert USER in text and "SYN-0001" in text, text

    # The clipboard holds that image; the PNG (what a room would get) decodes to it too.
    held = QGuiApplication.clipboard().image()
    assert not held.isNull()
    assert np.array_equal(to_array(held), snapshot.pixels)
    assert np.array_equal(to_array(QImage.fromData(snapshot.png, "PNG")), snapshot.pixels)

    # One audit entry: the series, to the clipboard.
    assert recorder.snapshots() == [(SNAPSHOT_ACTION, viewer.active.handle.object_id,
                                     {"to": "clipboard"})]
    qtbot.waitUntil(lambda: viewer.message.text()
                    == "Snapshot with watermark copied to the clipboard.", timeout=5_000)
    # A second snapshot is a second entry; nothing else was audited by them.
    done(qtbot, viewer.snapshot_to_clipboard())
    assert len(recorder.snapshots()) == 2


def test_snapshot_of_an_ecg_is_its_paper_watermarked(qtbot, viewer, recorder):
    open_and_wait(qtbot, viewer, [Path(get_testdata_file("waveform_ecg.dcm"))])
    pane = viewer.active
    qtbot.waitUntil(lambda: pane.ecg.group is not None, timeout=5000)
    assert viewer.snapshot_copy_action.isEnabled()
    shown = to_array(pane.pages.grab().toImage())
    snapshot = done(qtbot, viewer.snapshot_to_clipboard())
    lines = [f"{USER} @ {DEVICE}", "Snapshot 2026-11-22 09:30 UTC",
             f"Patient ID {pane.handle.patient_id.reveal() or '(none)'}"]
    assert np.array_equal(snapshot.pixels, burn_in(shown, lines))
    # The paper's pink grid is in it (not an empty canvas).
    pink = ((shown[..., 0] > 200) & (shown[..., 1] < 200) & (shown[..., 2] < 220)).mean()
    assert pink > 0.01
    assert [c[2] for c in recorder.snapshots()] == [{"to": "clipboard"}]


def test_a_snapshot_that_cannot_be_audited_is_not_left_on_the_clipboard(qtbot, qloop, ct_dir):
    def closed_log(action, _object_id, _detail=None) -> None:
        if action == SNAPSHOT_ACTION:  # signed out meanwhile: the log closed
            raise CacheError("the audit log is closed (no session)")

    view = ImagesView()
    view.configure(service=ImagingService(audit=closed_log),
                   identity=ViewerIdentity(USER, DEVICE))
    qtbot.addWidget(view)
    view.show()
    open_and_wait(qtbot, view, [ct_dir])
    clipboard = QGuiApplication.clipboard()
    clipboard.clear()
    task = view.snapshot_to_clipboard()
    qtbot.waitUntil(task.done, timeout=10_000)
    assert clipboard.image().isNull()
    qtbot.waitUntil(lambda: view.message.isVisible() and bool(view.message.text()),
                    timeout=5_000)
    assert "copied" not in view.message.text()


def test_snapshot_needs_a_series_and_a_room_needs_a_session(qtbot, viewer, recorder):
    assert not viewer.snapshot_button.isEnabled()
    assert viewer.snapshot_to_clipboard() is None
    assert viewer.snapshot_to_room() is None  # no consult services: nothing happens
    assert recorder.calls == []


# -- policy and the clipboard's life ----------------------------------------------------------

def test_policy_can_remove_snapshot(qtbot, viewer, recorder, ct_dir):
    assert Policy.from_mapping({"allow_snapshot": False}, source="test").allow_snapshot is False
    configure_snapshot(viewer, state=AppState(), policy=Policy(allow_snapshot=False))
    open_and_wait(qtbot, viewer, [ct_dir])
    assert not viewer._snapshot_slot.isVisible()
    assert not viewer.snapshot_copy_action.isEnabled()
    assert not viewer.snapshot_room_action.isEnabled()
    assert viewer.snapshot_to_clipboard() is None
    assert recorder.calls == [] or all(c[0] != SNAPSHOT_ACTION for c in recorder.calls)


def test_clipboard_snapshot_is_taken_off_on_lock_and_sign_out_unless_replaced(
        qtbot, viewer, ct_dir):
    state = AppState()
    configure_snapshot(viewer, state=state, policy=Policy())
    assert viewer._snapshot_slot.isVisible()
    open_and_wait(qtbot, viewer, [ct_dir])
    clipboard = QGuiApplication.clipboard()

    done(qtbot, viewer.snapshot_to_clipboard())
    assert not clipboard.image().isNull()
    state.locked = True  # auto-lock, OS lock, "Lock now": the snapshot goes too
    assert clipboard.image().isNull()
    state.locked = False

    done(qtbot, viewer.snapshot_to_clipboard())
    state.user = None  # already None: no change, nothing happens
    assert not clipboard.image().isNull()
    viewer.snapshot_clipboard.held = viewer.last_snapshot.pixels
    clipboard.setText("the ward's phone number")  # the user copied something else since
    state.locked = True
    assert clipboard.text() == "the ward's phone number"  # that is theirs: left alone
    state.locked = False

    # The workspace goes (sign-out, wipe, window closed): its view's snapshot goes too.
    other = ImagesView()
    other.configure(service=ImagingService(audit=Recorder()),
                    identity=ViewerIdentity(USER, DEVICE))
    configure_snapshot(other, state=state, policy=Policy())
    open_and_wait(qtbot, other, [ct_dir])
    done(qtbot, other.snapshot_to_clipboard())
    assert not clipboard.image().isNull()
    other.deleteLater()
    qtbot.waitUntil(lambda: clipboard.image().isNull(), timeout=5_000)


def test_signed_in_workspace_takes_the_snapshot_off_the_clipboard_on_lock(
        qtbot, signed_in_window, open_server, tmp_path):
    window = signed_in_window(open_server, "dr.shot", "physician")
    view = window.workspace.views["images"]
    paths = write_ct_series(tmp_path / "ct", 3, rows=64, cols=64)
    done(qtbot, view.open_paths(paths))
    assert view._snapshot_slot.isVisible()
    done(qtbot, view.snapshot_to_clipboard())
    clipboard = QGuiApplication.clipboard()
    assert not clipboard.image().isNull()
    window.lock_now()
    qtbot.waitUntil(lambda: clipboard.image().isNull(), timeout=5_000)


# -- into a consult room, received by a second real client ----------------------------------

class Reader:
    def __init__(self, client, recorder: Recorder | None = None) -> None:
        self.client = client
        session = client.ws.session
        self.engine = TransferEngine.for_session(session)
        self.sharing = StudyShareService(
            client.chat, self.engine, audit=session.audit,
            work_dir=session.cache.directory / "share",
            own_ed25519=session.device.identity.ed25519)
        self.view = ImagesView()
        self.view.configure(runner=TaskRunner(self.view),
                            service=ImagingService(audit=recorder or Recorder()),
                            identity=ViewerIdentity(client.creds.username,
                                                    session.device.device_id))
        self.view.configure_consult(chat=client.chat, sharing=self.sharing,
                                    device_id=session.device.device_id)
        self.view.resize(1000, 700)


@pytest.fixture
def pair(qtbot, qloop, theme, open_server, tmp_path):
    a = run(qtbot, new_client(open_server, tmp_path, "dr.snap", background=True))
    b = run(qtbot, new_client(open_server, tmp_path, "dr.recv", background=True))
    room_id = run(qtbot, room_with(a, b))
    yield a, b, room_id
    for client in (a, b):
        run(qtbot, client.close())


def plaintext_images_under(root) -> list[str]:
    """Files under ``root`` holding a PNG signature (a snapshot written as it is)."""
    return [str(p) for p in root.rglob("*")
            if p.is_file() and b"\x89PNG\r\n\x1a\n" in p.read_bytes()]


def test_snapshot_sent_to_room_arrives_as_encrypted_attachment(
        qtbot, pair, recorder, tmp_path, monkeypatch, save_screenshot):
    a_client, b_client, room_id = pair
    a = Reader(a_client, recorder)
    host = QWidget()  # A's viewer, and (for the screenshot) the image B receives
    qtbot.addWidget(host)
    row = QHBoxLayout(host)
    row.addWidget(a.view, 3)
    got = QLabel()
    row.addWidget(got, 2)
    host.resize(1600, 700)
    host.show()
    qtbot.waitExposed(host)
    paths = write_ct_series(tmp_path / "ct", 4, rows=96, cols=96, pixel_spacing=0.5)
    done(qtbot, a.view.open_paths(paths))
    qtbot.waitUntil(a.view.prefetch_done, timeout=10_000)
    a.view.canvas.set_index(2)
    centre = QPoint(a.view.canvas.width() // 2, a.view.canvas.height() // 2)
    drag(a.view.canvas, centre, centre + QPoint(60, -20))  # a window of the reader's own
    assert a.view.snapshot_room_action.isEnabled()
    assert a.view.snapshot_room_action.shortcut().toString() == "Shift+S"

    # The files' patient is not linked to this room: the snapshot (patient ID in its
    # watermark) goes only once the reader confirms; cancelling sends nothing.
    asked: list[str] = []

    def answer(choice):
        def exec_(box) -> int:
            asked.append(box.objectName())
            return choice
        return exec_

    monkeypatch.setattr(QMessageBox, "exec", answer(QMessageBox.StandardButton.Cancel))
    assert a.view.snapshot_to_room(room_id) is None
    assert asked == ["snapshotConfirm"] and recorder.snapshots() == []
    monkeypatch.setattr(QMessageBox, "exec", answer(QMessageBox.StandardButton.Ok))
    snapshot = done(qtbot, a.view.snapshot_to_room(room_id), timeout=30_000)
    assert asked == ["snapshotConfirm", "snapshotConfirm"]
    qtbot.waitUntil(lambda: a.view.message.text()
                    == "Snapshot with watermark sent to the consult room.", timeout=5_000)
    assert recorder.snapshots() == [(SNAPSHOT_ACTION, a.view.active.handle.object_id,
                                     {"to": "room", "room_id": room_id})]
    # Never written to disk as it is (both clients' data directories are scanned).
    assert plaintext_images_under(tmp_path) == []

    # B's chat receives an attachment message; B downloads, verifies and decrypts it.
    def arrived():
        return [m for m in b_client.chat.messages(room_id)
                if b_client.chat.attachment(m.event_id) is not None]

    run(qtbot, b_client.chat.sync_once())
    qtbot.waitUntil(lambda: bool(arrived()), timeout=20_000)
    (message,) = arrived()
    info = b_client.chat.attachment(message.event_id)
    assert info.name.reveal() == snapshot.file_name() and info.mime.reveal() == "image/png"
    assert message.sender == a_client.user_id
    b_engine = TransferEngine.for_session(b_client.ws.session)
    file_id = run(qtbot, b_engine.download(info.descriptor.to_wire(),
                                           b_client.chat.attachment_sender(info),
                                           room_id=room_id))
    data = b"".join(b_engine.files.open(file_id))
    assert data == snapshot.png
    received = to_array(QImage.fromData(data, "PNG"))
    assert np.array_equal(received, snapshot.pixels)
    if TESSERACT:
        text = ocr(received[received.shape[0] - 70 :], tmp_path, scale=2).replace(" ", "")
        assert "dr.snap" in text and "SYN-0001" in text, text
    got.setPixmap(QPixmap.fromImage(QImage.fromData(data, "PNG")).scaledToWidth(
        600, Qt.TransformationMode.SmoothTransformation))
    save_screenshot(host, "imaging-snapshot.png")
    a.view.close()


def test_snapshot_while_viewing_together_goes_to_that_room(qtbot, pair, tmp_path,
                                                           monkeypatch):
    a_client, b_client, room_id = pair
    a, b = Reader(a_client), Reader(b_client, recorder := Recorder())
    host = QWidget()
    qtbot.addWidget(host)
    row = QHBoxLayout(host)
    row.addWidget(a.view)
    row.addWidget(b.view)
    host.resize(1800, 640)
    host.show()
    qtbot.waitExposed(host)
    paths = write_ct_series(tmp_path / "ct", 3, rows=64, cols=64, pixel_spacing=0.5)
    done(qtbot, a.view.open_paths(paths))
    done(qtbot, a.view.share_to_consult(room_id, mode="deidentified"), timeout=30_000)
    qtbot.waitUntil(lambda: bool(b.view.shared_panel.studies()), timeout=20_000)
    (shared,) = b.view.shared_panel.studies()
    done(qtbot, b.view.open_shared_study(shared), timeout=30_000)
    qtbot.waitUntil(lambda: b.view.canvas.displayed_array() is not None, timeout=10_000)
    done(qtbot, b.view.start_coview(FOLLOWER))
    assert b.view.coview.active and b.view.coview.room_id == room_id

    # Shift+S in B's viewer: no room to pick, no question (the study's own room).
    def no_dialog(_box) -> int:
        raise AssertionError("no dialog expected")

    monkeypatch.setattr(QMessageBox, "exec", no_dialog)
    b.view.canvas.setFocus()
    qtbot.keyClick(b.view.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: bool(recorder.snapshots()), timeout=20_000)
    assert recorder.snapshots() == [(SNAPSHOT_ACTION, b.view.active.handle.object_id,
                                     {"to": "room", "room_id": room_id})]

    def arrived():
        return [m for m in a_client.chat.messages(room_id)
                if (info := a_client.chat.attachment(m.event_id)) is not None
                and info.mime.reveal() == "image/png"]

    run(qtbot, a_client.chat.sync_once())
    qtbot.waitUntil(lambda: bool(arrived()), timeout=20_000)
    assert arrived()[0].sender == b_client.user_id
    b.view.stop_coview()
