"""Viewing together, GUI: two ImagesViews in one process, each over its own real
ChatService, transfer engine and study sharing (own device, own SQLCipher cache) through the
reference server. Dr. A shares a synthetic CT series into the room, both open it from
"Shared studies" (verified), A presents and B follows: A's slice scroll, window/level drag,
zoom and pointer show at B, rendered from B's own pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
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


def centre_point(canvas) -> tuple[float, float]:
    return canvas.to_image(QPointF(canvas.width() / 2, canvas.height() / 2))


def same_region(a, b, tol: float = 0.6) -> bool:
    """B shows the part of the image A shows: the same image point in the middle, and all of
    A's visible area (in image pixels) fits B's view, filling it along one axis."""
    (ra, ca), (rb, cb) = centre_point(a), centre_point(b)
    if abs(ra - rb) > tol or abs(ca - cb) > tol:
        return False
    wa, ha = a.width() / a.scale(), a.height() / a.scale()
    wb, hb = b.width() / b.scale(), b.height() / b.scale()
    fits = wb >= wa - tol and hb >= ha - tol
    return fits and (abs(wb - wa) <= tol or abs(hb - ha) <= tol)


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
                and b.canvas.visible_region() is not None
                and same_region(a.canvas, b.canvas) and b.canvas.remote_pointer is not None)

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
    assert not b.view.present_action.isEnabled()  # nothing open to present
    save_screenshot(b.view, "imaging-shared-refused.png")


def test_a_follower_opens_the_study_first_and_both_panes_follow_at_other_sizes(
        qtbot, readers, tmp_path, save_screenshot):
    """B has no study open and clicks Follow: the study A presents is fetched, verified and
    opened, then followed -- both panes (two series side by side), each pane's slice,
    window, zoom and pan (as the same image region in a smaller window), measurements and
    the pane the pointer is in."""
    a, b, room_id = readers
    first = write_ct_series(tmp_path / "ct1", 5, rows=96, cols=96, pixel_spacing=0.5)
    second = write_ct_series(tmp_path / "ct2", 4, rows=80, cols=120, pixel_spacing=0.6,
                             seed=7)
    host = QWidget()
    qtbot.addWidget(host)
    row = QHBoxLayout(host)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(a.view, 3)
    row.addWidget(b.view, 2)
    host.resize(3200, 820)
    host.show()
    qtbot.waitExposed(host)

    wait(qtbot, a.view.open_paths([*first, *second]))
    wait(qtbot, a.view.share_to_consult(room_id, mode="deidentified"))
    qtbot.waitUntil(lambda: bool(a.view.shared_panel.studies() and b.view.shared_panel.studies()),
                    timeout=20_000)
    (shared,) = a.view.shared_panel.studies()
    assert len(shared.manifest.series) == 2
    wait(qtbot, a.view.open_shared_study(shared))
    a.view.set_side_by_side(True)
    left, right = (pane.canvas for pane in a.view.panes)
    assert a.view.series_id_of(left.handle) != a.view.series_id_of(right.handle)
    wait(qtbot, a.view.start_coview(PRESENTER))

    # B has nothing open; "Follow the presenter" is offered all the same.
    assert b.view.shared_open is None and b.view.follow_action.isEnabled()
    assert not b.view.present_action.isEnabled()
    wait(qtbot, b.view.start_coview(FOLLOWER))
    qtbot.waitUntil(lambda: b.view.shared_open is not None
                    and b.view.panes[1].isVisible() and b.view.coview.role == FOLLOWER,
                    timeout=30_000)
    assert b.view.share_status.text().startswith("Verified · shared by dr.ana")
    b_left, b_right = (pane.canvas for pane in b.view.panes)
    for mine, theirs in ((left, b_left), (right, b_right)):
        qtbot.waitUntil(lambda m=mine, t=theirs: t.handle is not None and
                        b.view.series_id_of(t.handle) == a.view.series_id_of(m.handle),
                        timeout=20_000)

    # A works in the right pane: next slice, bone window, zoom about a point off centre,
    # a pan, a measurement, and points at something there.
    right.set_index(2)
    right.apply_preset("bone")
    right.zoom_by(2.5, QPointF(right.width() * 0.3, right.height() * 0.6))
    centre = QPoint(right.width() // 2, right.height() // 2)
    drag(right, centre, centre + QPoint(-40, 25), Qt.MouseButton.LeftButton)
    right.add_measurement("distance", [(20.0, 30.0), (50.0, 70.0)])
    left.set_index(4)
    pointer_at = QPointF(centre) + QPointF(15, -10)
    send_mouse(right, QMouseEvent.Type.MouseMove, pointer_at, Qt.MouseButton.NoButton,
               Qt.MouseButton.NoButton)
    assert (b.view.panes[0].width(), b.view.panes[0].height()) != (
        a.view.panes[0].width(), a.view.panes[0].height())  # windows of other sizes

    def followed() -> bool:
        wb = b_right.state.window
        return (b_right.state.index == 2 and b_left.state.index == 4 and wb is not None
                and (wb.center, wb.width) == (right.state.window.center,
                                              right.state.window.width)
                and b_right.visible_region() is not None and same_region(right, b_right)
                and b_right.remote_pointer is not None
                and len(b_right.measurements.get(2, [])) == 1)

    qtbot.waitUntil(followed, timeout=20_000)
    before_width = b_right.width()
    # The same image region, each side at its own size: different zoom factors.
    assert b_right.scale() != pytest.approx(right.scale(), rel=0.02)
    assert np.array_equal(right.displayed_array(), b_right.displayed_array())
    assert np.array_equal(left.displayed_array(), b_left.displayed_array())
    point, who = b_right.remote_pointer
    assert who == "dr.ana"
    assert point == pytest.approx(right.to_image(pointer_at), abs=0.2)
    assert b_left.remote_pointer is None  # the pointer is in the right pane only
    (measured,) = b_right.measurements[2]
    assert measured.result is not None and measured.result.unit == "mm"
    save_screenshot(host, "imaging-coview-two-panes.png")
    # B's window gets narrower (A's stays as it is): B still shows the same part.
    a.view.setFixedWidth(a.view.width())
    sent = a.view.coview.sent_count
    b.view.setMaximumWidth(int(b.view.width() * 0.85))
    qtbot.waitUntil(lambda: b_right.width() < 0.95 * before_width, timeout=5_000)
    assert same_region(right, b_right) and a.view.coview.sent_count == sent

    # The pointer moves to the left pane: it moves there at B too.
    right.leaveEvent(QEvent(QEvent.Type.Leave))
    send_mouse(left, QMouseEvent.Type.MouseMove, QPointF(40, 40), Qt.MouseButton.NoButton,
               Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: b_left.remote_pointer is not None and b_right.remote_pointer is None,
                    timeout=20_000)

    # A goes back to one pane: so does B.
    a.view.set_side_by_side(False)
    qtbot.waitUntil(lambda: not b.view.panes[1].isVisible(), timeout=20_000)

    # A opens another study of the room while presenting: B fetches, verifies and opens
    # it too, and goes on following.
    other = run(qtbot, a.sharing.share(room_id, second)).shared
    qtbot.waitUntil(lambda: len(a.view.shared_panel.studies()) == 2, timeout=20_000)
    wait(qtbot, a.view.open_shared_study(other))
    assert a.view.coview is not None and a.view.coview.role == PRESENTER
    qtbot.waitUntil(lambda: b.view.shared_open is not None
                    and b.view.shared_open.shared.study_id == other.study_id
                    and b.view.panes[0].canvas.displayed_array() is not None, timeout=30_000)
    assert b.view.coview.role == FOLLOWER
    assert np.array_equal(a.view.panes[0].canvas.displayed_array(),
                          b.view.panes[0].canvas.displayed_array())
    a.view.stop_coview()
    b.view.stop_coview()


def test_a_received_study_is_shared_on_from_the_viewer_deidentified(qtbot, readers, tmp_path):
    """B opens an identified study A shared (confirmed) in their room, and shares it on into
    another of B's rooms from the viewer: a de-identified copy, signed by B's device."""
    a, b, room_id = readers
    qtbot.addWidget(b.view)
    b.view.show()
    run(qtbot, a.sharing.share(room_id, write_ct_series(tmp_path / "ct", 2, rows=48, cols=48),
                               deidentify=False, confirm_identified=True))
    qtbot.waitUntil(lambda: bool(b.view.shared_panel.studies()), timeout=20_000)
    (shared,) = b.view.shared_panel.studies()
    assert not b.view.share_action.isEnabled()  # nothing open yet
    wait(qtbot, b.view.open_shared_study(shared))
    assert b.view.share_action.isEnabled()  # a verified study may be shared on
    other = run(qtbot, b.client.chat.create_room())
    wait(qtbot, b.view.share_to_consult(other, mode="deidentified"))
    qtbot.waitUntil(lambda: b.view.message.text()  # the result callback runs after done
                    == "A de-identified copy of the study was shared in the room.")
    (copy,) = b.sharing.studies(other)
    assert copy.manifest.deidentified and copy.sender == b.client.user_id
    opened = run(qtbot, b.sharing.fetch(copy))
    blobs = [x for series in opened.series.values() for x in series]
    assert len(blobs) == 2 and not any(b"SYN-0001" in x for x in blobs)
    # A study that did not check out as verified is not offered for sharing on.
    b.view.shared_open.status = "unverified"
    b.view._enable_consult()
    assert not b.view.share_action.isEnabled()


def test_sharing_into_the_patients_own_room_goes_as_it_is_without_asking(qtbot, readers,
                                                                         tmp_path):
    from app.services.room_patient import RoomPatientService

    a, _b, room_id = readers
    qtbot.addWidget(a.view)
    patients = RoomPatientService(a.client.chat, role="physician")
    a.sharing.patients = patients
    try:
        run(qtbot, patients.set_link(room_id, "Synthetic Patient", "SYN-0001"))
        wait(qtbot, a.view.open_paths(write_ct_series(tmp_path / "ct", 2, rows=48, cols=48)))
        wait(qtbot, a.view.share_to_consult(room_id))  # no dialog: the check decided
        (shared,) = a.sharing.studies(room_id)
        assert not shared.manifest.deidentified
        qtbot.waitUntil(lambda: a.view.message.text() == "The study was shared in the room.")
    finally:
        patients.close()


def test_view_together_from_the_shared_studies_menu_opens_and_follows(qtbot, readers,
                                                                      tmp_path):
    a, b, room_id = readers
    for reader in (a, b):
        qtbot.addWidget(reader.view)
        reader.view.show()
    run(qtbot, a.sharing.share(room_id, write_ct_series(tmp_path / "ct", 4, rows=64, cols=64)))
    qtbot.waitUntil(lambda: bool(a.view.shared_panel.studies() and b.view.shared_panel.studies()),
                    timeout=20_000)
    wait(qtbot, a.view.open_shared_study(a.view.shared_panel.studies()[0]))
    a.canvas.set_index(3)
    wait(qtbot, a.view.start_coview(PRESENTER))
    # B: "View together" in the list's context menu.
    panel = b.view.shared_panel
    panel._menu(panel.list.visualItemRect(panel.list.item(0)).center())
    (follow,) = [x for x in panel.context_menu.actions() if x.text() == "View together"]
    follow.trigger()
    panel.context_menu.close()
    qtbot.waitUntil(lambda: b.view.shared_open is not None and b.view.coview is not None
                    and b.view.coview.role == FOLLOWER and b.canvas.state.index == 3,
                    timeout=30_000)
    assert b.view.share_status.text().startswith("Verified")
    qtbot.waitUntil(lambda: a.view.coview_status.text() == "Presenting · 1 following",
                    timeout=20_000)
    a.view.stop_coview()
    b.view.stop_coview()
