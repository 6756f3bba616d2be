"""Viewing together, GUI: two ImagesViews in one process, each over its own real
ChatService, transfer engine and study sharing (own device, own SQLCipher cache) through the
reference server. Dr. A shares a synthetic CT series into the room, both open it from
"Shared studies" (verified), A presents and B follows: A's slice scroll, window/level drag,
zoom and pointer show at B, rendered from B's own pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QHBoxLayout, QWidget

from app.core.coview import FOLLOWER, PRESENTER
from app.services.imaging import ImagingService, ViewerIdentity
from app.services.study_share import StudyShareService
from app.services.transfers import TransferEngine
from app.ui.asyncbridge import TaskRunner
from app.ui.views.images import ImagesView
from tests.integration.test_chat import new_client, room_with
from tests.support.dicom_gen import write_ct_series
from tests.ui.chat.conftest import run
from tests.ui.imaging.test_viewer import drag, send_mouse, wheel


class Reader:
    def __init__(self, qtbot, client) -> None:
        self.client = client
        session = client.ws.session
        self.sharing = StudyShareService(
            client.chat, TransferEngine.for_session(session), audit=session.audit,
            work_dir=session.cache.directory / "share",
            own_ed25519=session.device.identity.ed25519)
        self.view = ImagesView()
        self.view.configure(runner=TaskRunner(self.view), service=ImagingService(),
                            identity=ViewerIdentity(client.creds.username,
                                                    session.device.device_id))
        self.view.configure_consult(chat=client.chat, sharing=self.sharing,
                                    device_id=session.device.device_id)
        self.view.resize(900, 640)

    @property
    def canvas(self):
        return self.view.panes[0].canvas


def wait(qtbot, future, timeout: int = 20_000) -> None:
    qtbot.waitUntil(future.done, timeout=timeout)
    assert future.exception() is None


@pytest.fixture
def readers(qtbot, qloop, theme, open_server, tmp_path):
    made = []
    a = run(qtbot, new_client(open_server, tmp_path, "dr.ana", background=True))
    made.append(a)
    b = run(qtbot, new_client(open_server, tmp_path, "dr.ben", background=True))
    made.append(b)
    room_id = run(qtbot, room_with(a, b))
    yield Reader(qtbot, a), Reader(qtbot, b), room_id
    for client in made:
        run(qtbot, client.close())


def test_view_together_b_follows_a(qtbot, readers, tmp_path, save_screenshot):
    a, b, room_id = readers
    paths = write_ct_series(tmp_path / "ct", 6, rows=96, cols=96, pixel_spacing=0.5)
    host = QWidget()
    qtbot.addWidget(host)
    row = QHBoxLayout(host)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(a.view)
    row.addWidget(b.view)
    host.resize(2640, 760)
    host.show()
    qtbot.waitExposed(host)

    # A opens the series from files and shares it (de-identified: the room is "outside").
    wait(qtbot, a.view.open_paths(paths))
    assert a.view.share_action.isEnabled()
    wait(qtbot, a.view.share_to_consult(room_id, mode="deidentified"))
    qtbot.waitUntil(lambda: bool(a.view.shared_panel.studies() and b.view.shared_panel.studies()),
                    timeout=20_000)
    # Both open it from "Shared studies": downloaded, verified, decrypted in memory.
    for reader in (a, b):
        (shared,) = reader.view.shared_panel.studies()
        wait(qtbot, reader.view.open_shared_study(shared))
        qtbot.waitUntil(lambda r=reader: r.canvas.displayed_array() is not None, timeout=10_000)
        assert reader.view.share_status.text().startswith("Verified · shared by dr.ana")
    assert np.array_equal(a.canvas.displayed_array(), b.canvas.displayed_array())

    # B follows, A presents.
    wait(qtbot, b.view.start_coview(FOLLOWER))
    wait(qtbot, a.view.start_coview(PRESENTER))
    assert b.view.coview.role == FOLLOWER and a.view.coview.role == PRESENTER
    qtbot.waitUntil(lambda: b.view.coview_status.text().startswith("Following dr.ana"),
                    timeout=20_000)

    # A scrolls three slices (wheel) and windows by a right drag; zooms with Ctrl+wheel.
    a.canvas.setFocus()
    for _ in range(3):
        wheel(a.canvas, -1)
    centre = QPoint(a.canvas.width() // 2, a.canvas.height() // 2)
    drag(a.canvas, centre, centre + QPoint(120, 40))
    wheel(a.canvas, 2, Qt.KeyboardModifier.ControlModifier)
    send_mouse(a.canvas, QMouseEvent.Type.MouseMove, QPointF(centre) + QPointF(30, 20),
               Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    assert a.canvas.state.index == 3 and a.canvas.state.window is not None

    def followed() -> bool:
        sa, sb = a.canvas.state, b.canvas.state
        return (sb.index == sa.index and sb.window is not None
                and (sb.window.center, sb.window.width) == (sa.window.center, sa.window.width)
                and sb.zoom == pytest.approx(sa.zoom) and b.canvas.remote_pointer is not None)

    qtbot.waitUntil(followed, timeout=20_000)
    # B rendered the same slice and window from its own copy: identical pixels.
    assert np.array_equal(a.canvas.displayed_array(), b.canvas.displayed_array())
    point, who = b.canvas.remote_pointer
    assert who == "dr.ana"
    assert point == pytest.approx(a.canvas.to_image(QPointF(centre) + QPointF(30, 20)), abs=0.2)
    # Updates were coalesced (a burst of mouse moves and wheel steps, few events).
    assert a.view.coview.sent_count <= 12
    assert b.view.coview.presenter().user_id == a.client.user_id
    save_screenshot(host, "imaging-coview.png")

    # A stops: B is told, and stays where it was.
    a.view.stop_coview()
    qtbot.waitUntil(lambda: b.view.coview.presenter() is None, timeout=20_000)
    assert b.view.coview_status.text() == "Waiting for a presenter…"
    b.view.stop_coview()


def test_the_signed_in_workspace_wires_sharing_into_the_viewer(qtbot, signed_in_window,
                                                               open_server):
    window = signed_in_window(open_server, "dr.wire", "physician")
    images = window.workspace.views["images"]
    assert images.sharing is window.workspace.study_sharing
    assert images.sharing.chat is window.workspace.chat_service
    assert not images.share_action.isEnabled()  # nothing open yet
    assert not images.coview_button.isEnabled()  # no shared study open


def test_a_tampered_shared_study_is_refused_in_the_viewer(qtbot, readers, open_server,
                                                          tmp_path, save_screenshot):
    a, b, room_id = readers
    for reader in (a, b):
        qtbot.addWidget(reader.view)
    b.view.resize(1300, 600)
    b.view.show()
    run(qtbot, a.sharing.share(room_id, write_ct_series(tmp_path / "ct", 2, rows=48, cols=48)))
    qtbot.waitUntil(lambda: bool(b.view.shared_panel.studies()), timeout=20_000)
    (shared,) = b.view.shared_panel.studies()
    # The server (or anyone with its disk) changes one bit of a stored file.
    chunk = (open_server.settings.blob_dir / shared.manifest.files[1].descriptor["blob_id"]
             / "00000000")
    raw = bytearray(chunk.read_bytes())
    raw[100] ^= 0x01
    chunk.write_bytes(bytes(raw))
    future = b.view.open_shared_study(shared)
    qtbot.waitUntil(future.done, timeout=20_000)
    assert b.view.share_status.isVisible()
    assert b.view.share_status.text() == (
        "This shared study was changed after it was sent, or its sender cannot be verified. "
        "It was not opened.")
    assert b.canvas.handle is None and b.view.shared_open is None
    assert not b.view.coview_button.isEnabled()
    save_screenshot(b.view, "imaging-shared-refused.png")
