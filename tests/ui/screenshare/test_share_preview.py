"""Screen-share capture and preview (offscreen Qt): the preview shows the very frames the track
encodes, PHI-tagged widgets are black in them, user-drawn regions are added and removed on the
preview, the lock pauses the share, screen mode covers every window of ours, HiDPI geometry.

With SAFECONSULT_SCREENSHOTS=1 the preview is saved to docs/screenshots/share-preview.png.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.core.phi import Phi
from app.rtc.redaction import Outcome, Rect
from app.services.app_state import AppState
from app.ui.phi import PhiLabel, mark_phi, phi_rects
from app.ui.screenshare.capture import to_image_rects
from app.ui.screenshare.share import ScreenShare


def consult_window(qtbot) -> QWidget:
    """A stand-in for a consult view: synthetic patient data in PHI-tagged widgets."""
    window = QWidget()
    window.setWindowTitle("Consult")
    window.setStyleSheet("background: white; color: black;")
    font = QFont()
    font.setPointSize(14)
    window.setFont(font)
    layout = QVBoxLayout(window)
    layout.addWidget(QLabel("Consult room · Cardiology · Ward 7"))
    header = QWidget()
    row = QHBoxLayout(header)
    row.addWidget(PhiLabel(Phi("Jane Example-Patient")))
    row.addWidget(PhiLabel(Phi("MRN 48213377")))
    layout.addWidget(header)
    notes = QLabel("Chest X-ray reviewed; echo tomorrow.")
    layout.addWidget(notes)
    tagged_box = mark_phi(QLabel("DOB 1961-04-02 · bed 3"))
    layout.addWidget(tagged_box)
    layout.addStretch(1)
    window.resize(560, 320)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def run(qtbot, coro, timeout: int = 5000):
    task = asyncio.ensure_future(coro)
    qtbot.waitUntil(task.done, timeout=timeout)
    return task.result()


def black(area: np.ndarray) -> bool:
    return not area[..., :3].any()


async def next_frames(share: ScreenShare, count: int):
    frames = []
    for _ in range(count):
        share.capture.grab_once()
        frames.append(await share.track.recv())
    return frames


@pytest.fixture
def share_of(qtbot, qloop):
    made: list[ScreenShare] = []

    def make(window, **kwargs) -> ScreenShare:
        share = ScreenShare(window, fps=20, **kwargs)
        made.append(share)
        if share.preview is not None:
            qtbot.addWidget(share.preview)
        return share

    yield make
    for share in made:
        share.stop()


def test_the_preview_shows_exactly_the_redacted_frames_sent(qtbot, share_of):
    window = consult_window(qtbot)
    share = share_of(window)
    preview = share.preview
    preview.resize(640, 470)
    preview.show()
    frames = run(qtbot, next_frames(share, 3))
    qtbot.waitUntil(lambda: preview.frames_shown >= 3)

    shown = preview.last_frame
    assert preview.last_outcome is Outcome.REDACTED
    assert shown.shape == (320, 560, 4)  # BGRA as grabbed, no conversion on the GUI thread
    rects = phi_rects(window)
    assert len(rects) == 3  # two PhiLabels and the tagged box
    for rect in rects:
        assert black(shown[rect.top():rect.bottom() + 1, rect.left():rect.right() + 1])
    assert shown[..., :3].mean() > 150  # the rest of the window is there (white page)
    # What was encoded is the preview's frame (up to the YUV 4:2:0 round trip).
    sent = frames[-1].to_ndarray(format="rgb24")
    shown_rgb = shown[..., 2::-1]
    assert sent.shape == shown_rgb.shape
    assert np.abs(sent.astype(int) - shown_rgb.astype(int)).mean() < 6
    assert "hidden" in preview.status.text()


def test_regions_drawn_on_the_preview_are_blacked_out_and_can_be_removed(qtbot, share_of,
                                                                        save_screenshot):
    window = consult_window(qtbot)
    share = share_of(window)
    preview = share.preview
    preview.resize(640, 470)
    preview.show()
    qtbot.waitExposed(preview)
    run(qtbot, next_frames(share, 1))
    qtbot.waitUntil(lambda: preview.frames_shown >= 1)

    view = preview.view
    target = view.target()
    assert not target.isEmpty()
    # Drag from frame (20, 200) to (300, 260).
    scale = target.width() / 560
    start = QPoint(target.x() + int(20 * scale), target.y() + int(200 * scale))
    end = QPoint(target.x() + int(300 * scale), target.y() + int(260 * scale))
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view, end)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=end)
    (region,) = share.redactor.user_regions
    assert abs(region.x - 20) <= 2 and abs(region.y - 200) <= 2
    assert abs(region.x + region.w - 300) <= 3 and abs(region.y + region.h - 260) <= 3
    assert preview.clear.isEnabled()

    run(qtbot, next_frames(share, 1))
    qtbot.waitUntil(lambda: preview.frames_shown >= 2)
    assert black(preview.last_frame[205:255, 25:295])
    assert "1" in preview.regions.text()
    save_screenshot(preview, "share-preview.png")  # PHI widgets and the drawn area black

    inside = QPoint(target.x() + int(100 * scale), target.y() + int(230 * scale))
    qtbot.mouseClick(view, Qt.MouseButton.RightButton, pos=inside)
    assert share.redactor.user_regions == ()
    assert not preview.clear.isEnabled()
    preview.add_region(Rect(0, 0, 10, 10))
    qtbot.mouseClick(preview.clear, Qt.MouseButton.LeftButton)
    assert share.redactor.user_regions == ()


def test_the_lock_pauses_sharing_and_nothing_is_grabbed(qtbot, share_of):
    window = consult_window(qtbot)
    state = AppState()
    share = share_of(window, state=state)
    run(qtbot, next_frames(share, 1))
    assert share.preview.last_outcome is Outcome.REDACTED or share.redactor.stats.last \
        is Outcome.REDACTED
    grabs = share.capture.grabs
    state.locked = True
    assert share.redactor.paused
    frames = run(qtbot, next_frames(share, 2))
    assert share.capture.grabs == grabs  # locked: the window is not even grabbed
    assert share.redactor.stats.last is Outcome.PAUSED
    assert not frames[-1].to_ndarray(format="rgb24").max() > 20
    state.locked = False
    run(qtbot, next_frames(share, 1))
    assert share.redactor.stats.last is Outcome.REDACTED


def test_a_hidden_window_is_not_grabbed(qtbot, share_of):
    window = consult_window(qtbot)
    share = share_of(window)
    window.hide()
    frames = run(qtbot, next_frames(share, 1))
    assert share.redactor.stats.last is Outcome.NO_FRAME
    assert frames[-1].to_ndarray(format="rgb24").max() <= 20


def test_a_geometry_provider_that_raises_blanks_the_frame(qtbot, share_of):
    def broken(window):
        raise RuntimeError("no geometry")

    window = consult_window(qtbot)
    share = share_of(window, geometry=broken)
    frames = run(qtbot, next_frames(share, 2))
    assert share.redactor.stats.blank == {Outcome.NO_GEOMETRY.value: 2}
    assert frames[-1].to_ndarray(format="rgb24").max() <= 20


def test_screen_mode_covers_the_phi_of_every_window_of_ours(qtbot, share_of):
    window = consult_window(qtbot)
    window.move(40, 30)
    other = QWidget()
    other.setStyleSheet("background: white;")
    PhiLabel(Phi("MRN 99887766"), other).setGeometry(10, 10, 180, 30)
    other.resize(220, 60)
    other.move(420, 500)
    qtbot.addWidget(other)
    other.show()
    qtbot.waitExposed(other)
    screen = window.screen()
    # The screen is composed from the windows' backing stores: wait until both are painted.
    qtbot.waitUntil(lambda: all(
        screen.grabWindow(0).toImage().pixelColor(point).lightness() > 200
        for point in (QPoint(300, 300), QPoint(600, 520))))
    share = share_of(window, mode="screen")
    run(qtbot, next_frames(share, 1))
    qtbot.waitUntil(lambda: share.preview.frames_shown >= 1)
    frame = share.preview.last_frame
    screen = screen.geometry()
    assert frame.shape[:2] == (screen.height(), screen.width())
    for top in (window, other):
        for rect in phi_rects(top):
            at = top.mapToGlobal(rect.topLeft()) - screen.topLeft()
            area = frame[at.y():at.y() + rect.height(), at.x():at.x() + rect.width()]
            assert area.size and black(area)
    assert frame[..., :3].mean() > 20  # the rest of the screen is there


@pytest.mark.parametrize("ratio", [1.0, 1.25, 1.5, 2.0])
def test_geometry_is_mapped_to_image_pixels_at_any_device_pixel_ratio(ratio):
    logical = [QRect(10, 7, 33, 11), QRect(0, 0, 1, 1)]
    for rect, mapped in zip(logical, to_image_rects(logical, ratio), strict=True):
        # The mapped box covers every image pixel the logical rectangle paints.
        assert mapped.x <= rect.x() * ratio and mapped.y <= rect.y() * ratio
        assert mapped.x + mapped.w >= (rect.x() + rect.width()) * ratio
        assert mapped.y + mapped.h >= (rect.y() + rect.height()) * ratio
        assert mapped.w <= rect.width() * ratio + 2  # and not much more
    (shifted,) = to_image_rects([QRect(110, 60, 20, 10)], 2.0, QPoint(100, 50))
    assert shifted == Rect(20, 20, 40, 20)
