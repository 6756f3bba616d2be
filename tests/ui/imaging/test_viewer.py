"""The image viewer, driven like a reader drives it (offscreen): open, scroll, window,
measure, watermark, export, print, de-identify, PHI tagging, bad files, side by side, ECG."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from app.core.imaging_types import PRESETS
from app.ui.imaging.canvas import DISTANCE, image_rect
from app.ui.imaging.qimage import to_array
from app.ui.phi import PhiLabel, phi_rects, phi_widgets
from tests.ui.imaging.conftest import DEVICE, USER, open_and_wait

TESSERACT = shutil.which("tesseract")


# -- helpers -------------------------------------------------------------------------------

def grab(widget) -> np.ndarray:
    return to_array(widget.grab().toImage())


def image_region(canvas) -> np.ndarray:
    """The grabbed pixels inside the image's on-screen rectangle (grey channel)."""
    r = image_rect(canvas).toAlignedRect().intersected(canvas.rect())
    return grab(canvas)[r.top() + 2 : r.bottom() - 2, r.left() + 2 : r.right() - 2, 0]


def send_mouse(widget, kind, pos, button, buttons) -> None:
    event = QMouseEvent(kind, QPointF(pos), widget.mapToGlobal(QPointF(pos)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(widget, start: QPoint, end: QPoint, button=Qt.MouseButton.RightButton) -> None:
    send_mouse(widget, QMouseEvent.Type.MouseButtonPress, start, button, button)
    mid = (start + end) / 2
    for pos in (mid, end):
        send_mouse(widget, QMouseEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, button)
    send_mouse(widget, QMouseEvent.Type.MouseButtonRelease, end, button,
               Qt.MouseButton.NoButton)


def wheel(widget, clicks: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(centre, widget.mapToGlobal(centre), QPoint(), QPoint(0, 120 * clicks),
                        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def ocr(pixels: np.ndarray, tmp_path: Path, scale: int = 3) -> str:
    """Text tesseract reads in ``pixels`` (grey or RGB uint8), enlarged ``scale`` times."""
    big = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    if big.ndim == 2:
        big = np.stack([big] * 3, axis=2)
    big = np.ascontiguousarray(big)
    image = QImage(big.data, big.shape[1], big.shape[0], big.shape[1] * 3,
                   QImage.Format.Format_RGB888)
    path = tmp_path / "ocr.png"
    assert image.save(str(path))
    out = subprocess.run([TESSERACT, str(path), "-", "--psm", "6"], capture_output=True,
                         text=True, timeout=60)
    return out.stdout


# -- opening -------------------------------------------------------------------------------

def test_open_folder_shows_first_image_then_whole_series(qtbot, view, ct_dir):
    task = view.open_paths([ct_dir])
    # The first image is painted before the whole series is loaded and sorted.
    qtbot.waitUntil(lambda: view.canvas.displayed_array() is not None, timeout=10_000)
    qtbot.waitUntil(task.done, timeout=10_000)
    qtbot.waitUntil(view.prefetch_done, timeout=10_000)
    canvas = view.canvas
    assert canvas.count() == 8
    assert canvas.displayed_array().shape == (96, 96)
    qtbot.waitUntil(lambda: canvas.paint_count > 0, timeout=5000)
    # The file's first window (ABDOMEN 40/400) is applied by default.
    wl = canvas.current_window()
    assert (wl.center, wl.width) == (40, 400)
    # The browser lists the study and its series with a thumbnail.
    assert len(view.browser.headers) == 1 and len(view.browser.cards) == 1
    qtbot.waitUntil(lambda: view.browser.cards[0].thumbnail.pixmap() is not None
                    and not view.browser.cards[0].thumbnail.pixmap().isNull(), timeout=5000)
    assert view.browser.headers[0].patient_name.text() == "SYNTHETIC, PATIENT"
    assert view.browser.headers[0].mrn.text() == "SYN-0001"
    assert view.browser.headers[0].study_date.text() == "2026-01-01"
    assert view.message.isHidden()


def test_first_look_keeps_its_image_when_the_series_arrives(qtbot, view, ct_dir):
    open_and_wait(qtbot, view, [ct_dir])
    # Whatever file came first in the folder, the canvas shows that same instance, now
    # at its sorted position in the full series.
    shown = view.canvas.handle.sop_uid(view.canvas.state.index)
    first_file = sorted(p for p in ct_dir.iterdir())[0]
    assert shown == pydicom.dcmread(first_file, stop_before_pixels=True).SOPInstanceUID


# -- window / level ------------------------------------------------------------------------

def test_right_drag_windows_and_changes_pixels(qtbot, view, ct_dir):
    open_and_wait(qtbot, view, [ct_dir])
    canvas = view.canvas
    before_state = canvas.current_window()
    before = image_region(canvas).astype(int)
    centre = QPoint(canvas.width() // 2, canvas.height() // 2)
    # Right: wider window (flatter contrast); down: higher level (darker).
    drag(canvas, centre, centre + QPoint(200, 60))
    after_state = canvas.current_window()
    sensitivity = max(1.0, before_state.width / 256)
    assert after_state.width == pytest.approx(before_state.width + 200 * sensitivity)
    assert after_state.center == pytest.approx(before_state.center + 60 * sensitivity)
    after = image_region(canvas).astype(int)
    assert after.shape == before.shape
    assert after.mean() < before.mean() - 3  # darker
    assert after.std() < before.std()  # wider window, less contrast
    # Middle-button drag windows too (vertical only: the width stays).
    width = canvas.current_window().width
    drag(canvas, centre, centre + QPoint(0, -40), Qt.MouseButton.MiddleButton)
    assert canvas.current_window().width == pytest.approx(width)
    assert canvas.current_window().center < after_state.center


def test_presets_from_the_menu(qtbot, view, ct_dir):
    open_and_wait(qtbot, view, [ct_dir])
    view.preset_actions["lung"].trigger()
    assert view.canvas.current_window() == PRESETS["lung"]
    lung = image_region(view.canvas)
    view.preset_actions["bone"].trigger()
    assert view.canvas.current_window() == PRESETS["bone"]
    assert view.preset_actions["bone"].isChecked()
    assert not np.array_equal(lung, image_region(view.canvas))
    view.preset_actions[""].trigger()  # back to the file's own window
    assert view.canvas.current_window().center == 40


def test_invert_rotate_flip_zoom(qtbot, view, ct_dir):
    open_and_wait(qtbot, view, [ct_dir])
    canvas = view.canvas
    plain = canvas.displayed_array().copy()
    view.invert_action.trigger()
    assert np.array_equal(canvas.displayed_array(), 255 - plain)
    view.invert_action.trigger()
    view.rotate_action.trigger()
    assert np.array_equal(canvas.oriented_array(), np.rot90(plain, -1))
    view.rotate_action.trigger()
    view.rotate_action.trigger()
    view.rotate_action.trigger()
    view.flip_h_action.trigger()
    assert np.array_equal(canvas.oriented_array(), plain[:, ::-1])
    view.flip_h_action.trigger()
    view.actual_action.trigger()
    assert canvas.scale() == 1.0
    wheel(canvas, 2, Qt.KeyboardModifier.ControlModifier)
    assert canvas.scale() == pytest.approx(1.15 ** 2)
    assert canvas.state.index == canvas.state.index  # Ctrl+wheel does not scroll
    view.fit_action.trigger()
    assert canvas.state.zoom is None


# -- slices --------------------------------------------------------------------------------

def test_wheel_and_keys_scroll_slices(qtbot, view, ct_dir):
    open_and_wait(qtbot, view, [ct_dir])
    canvas = view.canvas
    canvas.set_index(0)
    first = canvas.displayed_array().copy()
    wheel(canvas, -1)  # wheel towards the user: next slice
    assert canvas.state.index == 1
    assert not np.array_equal(first, canvas.displayed_array())
    wheel(canvas, 1)
    assert canvas.state.index == 0
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Down)
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    assert canvas.state.index == 2
    qtbot.keyClick(canvas, Qt.Key.Key_Up)
    assert canvas.state.index == 1
    qtbot.keyClick(canvas, Qt.Key.Key_PageDown)
    assert canvas.state.index == 7  # clamped at the last slice
    qtbot.keyClick(canvas, Qt.Key.Key_PageUp)
    assert canvas.state.index == 0
    qtbot.keyClick(canvas, Qt.Key.Key_End)
    assert canvas.state.index == 7
    qtbot.keyClick(canvas, Qt.Key.Key_Home)
    assert canvas.state.index == 0


def test_cine_plays_and_stops(qtbot, view, ct_dir):
    open_and_wait(qtbot, view, [ct_dir])
    canvas = view.canvas
    canvas.set_index(0)
    view.cine_action.trigger()
    assert canvas.playing()
    qtbot.waitUntil(lambda: canvas.state.index >= 2, timeout=3000)
    view.cine_action.trigger()
    assert not canvas.playing()
    stopped_at = canvas.state.index
    qtbot.wait(250)
    assert canvas.state.index == stopped_at
    view.cine_action.trigger()
    canvas.hide()  # auto-lock hides PHI widgets: cine stops with it
    assert not canvas.playing()


def test_probe_shows_hu_under_the_cursor(qtbot, view, ct_dir):
    open_and_wait(qtbot, view, [ct_dir])
    canvas = view.canvas
    centre = canvas.to_widget((48.5, 48.5))
    send_mouse(canvas, QMouseEvent.Type.MouseMove, centre, Qt.MouseButton.NoButton,
               Qt.MouseButton.NoButton)
    text = view.status.text()
    probe = canvas.handle.probe(canvas.state.index, 48, 48)
    assert "x 48" in text and "y 48" in text
    assert f"{probe.value:.0f} HU" in text


# -- measurement ---------------------------------------------------------------------------

def test_distance_in_mm_with_pixel_spacing(qtbot, view, ct_dir):
    open_and_wait(qtbot, view, [ct_dir])
    canvas = view.canvas
    view.distance_action.trigger()
    assert canvas.tool == DISTANCE
    # Drawn with the mouse from image point (10, 10) to (10, 50): 40 px * 0.5 mm.
    a, b = canvas.to_widget((10.5, 10.5)), canvas.to_widget((10.5, 50.5))
    left = Qt.MouseButton.LeftButton
    send_mouse(canvas, QMouseEvent.Type.MouseButtonPress, a, left, left)
    send_mouse(canvas, QMouseEvent.Type.MouseMove, b, Qt.MouseButton.NoButton, left)
    send_mouse(canvas, QMouseEvent.Type.MouseButtonRelease, b, left, Qt.MouseButton.NoButton)
    items = canvas.measurements[canvas.state.index]
    assert len(items) == 1
    result = items[0].result
    assert result.unit == "mm" and result.calibrated
    assert result.value == pytest.approx(20.0, abs=0.05)
    assert canvas.measure_text(result) == "20.0 mm"
    # An angle by three clicks: 90 degrees.
    view.angle_action.trigger()
    for point in ((30.5, 30.5), (60.5, 30.5), (60.5, 70.5)):
        pos = canvas.to_widget(point)
        send_mouse(canvas, QMouseEvent.Type.MouseButtonPress, pos, left, left)
        send_mouse(canvas, QMouseEvent.Type.MouseButtonRelease, pos, left,
                   Qt.MouseButton.NoButton)
    angle = canvas.measurements[canvas.state.index][-1].result
    assert angle.unit == "deg" and angle.value == pytest.approx(90.0, abs=0.1)
    view.clear_action.trigger()
    assert canvas.state.index not in canvas.measurements


def test_distance_without_pixel_spacing_is_flagged_px(qtbot, view, no_spacing_dir):
    open_and_wait(qtbot, view, [no_spacing_dir])
    canvas = view.canvas
    item = canvas.add_measurement(DISTANCE, [(0.0, 0.0), (30.0, 40.0)])
    assert item.result.unit == "px" and not item.result.calibrated
    assert item.result.value == pytest.approx(50.0)
    assert canvas.measure_text(item.result) == "50.0 px (no pixel spacing)"


# -- watermark -----------------------------------------------------------------------------

def test_watermark_on_screen(qtbot, view, ct_dir, tmp_path):
    open_and_wait(qtbot, view, [ct_dir])
    pane = view.active
    overlay = pane.watermark
    assert overlay.lines() == [f"Viewed by {USER} on {DEVICE}", "2026-11-22 09:30 UTC",
                               "Patient ID SYN-0001"]
    band = overlay.band_rect().toAlignedRect()
    with_mark = grab(pane)
    overlay.hide()
    without = grab(pane)
    overlay.show()
    offset = overlay.mapTo(pane, QPoint(0, 0))
    band.translate(offset)
    region = (slice(band.top(), band.bottom()), slice(band.left(), band.right()))
    diff = np.abs(with_mark[region].astype(int) - without[region].astype(int))
    assert diff.mean() > 10
    # The tiled layer marks the image area too (not only the band).
    whole = np.abs(with_mark.astype(int) - without.astype(int)).sum(axis=2) > 0
    assert whole.mean() > 0.02
    if TESSERACT:
        text = ocr(with_mark[region], tmp_path)
        assert USER in text.replace(" ", ""), text


def test_phi_widgets_are_tagged_and_hidden_values_dropped(qtbot, view, ct_dir):
    open_and_wait(qtbot, view, [ct_dir])
    view.set_tags_visible(True)
    found = phi_widgets(view)
    header = view.browser.headers[0]
    for widget in (header.patient_name, header.mrn, header.study_date, header.description,
                   view.tag_panel, view.active.watermark, view.active.canvas,
                   view.active.patient, view.browser.cards[0].description,
                   view.browser.cards[0].thumbnail):
        assert widget in found, widget.objectName()
    # The tag panel holds the patient's name; it is inside a PHI-tagged widget.
    assert any("SYNTHETIC^PATIENT" in t for t in view.tag_panel.visible_texts())
    assert phi_rects(view)
    # Auto-lock hides the PHI widgets; a PhiLabel then drops its text.
    for widget in found:
        widget.hide()
    assert header.patient_name.text() == ""
    assert view.active.patient.text() == ""
    labels = [w for w in found if isinstance(w, PhiLabel)]
    assert labels and all(w.text() == "" for w in labels)


# -- export, print, de-identify ------------------------------------------------------------

def test_export_png_has_the_watermark_burned_in_and_is_audited(qtbot, view, ct_dir, audit,
                                                               tmp_path):
    open_and_wait(qtbot, view, [ct_dir])
    view.preset_actions["abdomen"].trigger()
    shown = view.canvas.oriented_array().copy()
    target = tmp_path / "export.png"
    task = view.export_image(target)
    qtbot.waitUntil(task.done, timeout=10_000)
    assert task.exception() is None
    assert audit.calls == [("image.export", view.active.handle.object_id)]
    assert audit.calls[0][1].startswith("series-sha256:")
    image = QImage(str(target))
    assert not image.isNull()
    pixels = to_array(image)[:, :, 0]
    # Enlarged by a whole factor (96 -> 576) so the watermark stays legible.
    factor = pixels.shape[0] // shown.shape[0]
    assert factor == 6 and pixels.shape == (96 * 6, 96 * 6)
    plain = shown.repeat(factor, axis=0).repeat(factor, axis=1)
    band = slice(pixels.shape[0] - 40, pixels.shape[0])
    changed = pixels[band] != plain[band]
    assert changed.mean() > 0.03
    assert (pixels[band][changed] > 200).mean() > 0.7  # mostly white letters
    if TESSERACT:
        text = ocr(pixels[pixels.shape[0] - 70 :], tmp_path, scale=2)
        assert USER in text.replace(" ", ""), text
        assert "SYN-0001" in text.replace(" ", ""), text
    assert not list(tmp_path.glob("*.part"))


def test_export_jpeg_and_print_pdf_are_audited_once_each(qtbot, view, ct_dir, audit, tmp_path):
    open_and_wait(qtbot, view, [ct_dir])
    task = view.export_image(tmp_path / "export.jpg")
    qtbot.waitUntil(task.done, timeout=10_000)
    assert task.exception() is None
    assert (tmp_path / "export.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    task = view.print_pdf(tmp_path / "print.pdf")
    qtbot.waitUntil(task.done, timeout=10_000)
    assert task.exception() is None
    assert (tmp_path / "print.pdf").read_bytes()[:5] == b"%PDF-"
    oid = view.active.handle.object_id
    assert audit.calls == [("image.export", oid), ("file.print", oid)]


def test_failed_export_is_reported_and_not_audited(qtbot, view, ct_dir, audit, tmp_path):
    open_and_wait(qtbot, view, [ct_dir])
    task = view.export_image(tmp_path / "missing-dir" / "export.png")
    qtbot.waitUntil(task.done, timeout=10_000)
    assert audit.calls == []
    assert view.message.isVisible() and view.message.text()


def test_deidentified_export_warns_about_burned_in_text(qtbot, view, ct_dir, audit, tmp_path):
    source = tmp_path / "burned"
    shutil.copytree(ct_dir, source)
    for path in source.iterdir():
        ds = pydicom.dcmread(path)
        ds.BurnedInAnnotation = "YES"
        ds.save_as(path, enforce_file_format=True)
    open_and_wait(qtbot, view, [source])
    out = tmp_path / "deid"
    task = view.export_deidentified(out)
    qtbot.waitUntil(task.done, timeout=20_000)
    assert task.exception() is None
    written = sorted(out.glob("*.dcm"))
    assert len(written) == 8
    assert str(pydicom.dcmread(written[0]).PatientName) != "SYNTHETIC^PATIENT"
    box = view.findChild(QMessageBox, "burnedInWarning")
    assert box is not None and box.isVisible()
    assert "BurnedInAnnotation is YES" in box.informativeText()
    assert audit.calls == [("image.export", view.active.handle.object_id)]
    box.close()


# -- bad input -----------------------------------------------------------------------------

def test_malformed_file_gets_a_clear_message(qtbot, view, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.dcm").write_bytes(b"this is not a DICOM file at all" * 10)
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (bad / "cut.dcm").write_bytes(data[: len(data) // 3])
    open_and_wait(qtbot, view, [bad])
    assert view.message.isVisible()
    text = view.message.text()
    # One file is no DICOM at all; the other parses but its pixels are cut short.
    assert "1 file(s) could not be opened: This file is not a DICOM image" in text
    assert "This DICOM file is incomplete" in text
    assert view.canvas.displayed_array() is None
    # The canvas says so too, instead of an image; painting follows the next event loop turn.
    qtbot.waitUntil(lambda: view.canvas.paint_count > 0, timeout=5000)


def test_folder_without_dicom(qtbot, view, tmp_path):
    (tmp_path / "readme.txt").write_text("nothing to see")
    open_and_wait(qtbot, view, [tmp_path])
    assert "1 file(s) could not be opened" in view.message.text()
    empty = tmp_path / "empty"
    empty.mkdir()
    open_and_wait(qtbot, view, [empty])
    assert view.message.text() == "No DICOM images were found there."
    assert view.stage.currentIndex() == 0  # the empty page with its instructions


def test_good_series_opens_despite_a_bad_file(qtbot, view, ct_dir, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(ct_dir, mixed)
    (mixed / "zzz-broken.dcm").write_bytes(b"\0" * 50)
    open_and_wait(qtbot, view, [mixed])
    assert view.canvas.count() == 8
    assert "1 file(s) could not be opened" in view.message.text()


def test_undecodable_pixels_show_a_message_not_a_crash(qtbot, view, tmp_path, ct_dir):
    broken = tmp_path / "short-pixels"
    broken.mkdir()
    src = sorted(ct_dir.iterdir())[0]
    ds = pydicom.dcmread(src)
    ds.PixelData = ds.PixelData[:100]
    ds.save_as(broken / "a.dcm", enforce_file_format=True)
    open_and_wait(qtbot, view, [broken])
    assert view.canvas.displayed_array() is None
    assert "incomplete" in view.message.text() or "could not be decoded" in view.message.text()


# -- side by side --------------------------------------------------------------------------

def test_two_series_side_by_side(qtbot, view, ct_dir, ct_dir_b, save_screenshot):
    open_and_wait(qtbot, view, [ct_dir, ct_dir_b])
    assert len(view.handles) == 2
    view.side_action.trigger()
    left, right = view.panes
    assert right.isVisible()
    qtbot.waitUntil(lambda: right.canvas.displayed_array() is not None, timeout=5000)
    assert left.handle is not right.handle
    assert {left.canvas.count(), right.canvas.count()} == {8, 5}
    # Each pane carries its own watermark with its own patient's ID.
    ids = {p.watermark.lines()[-1] for p in view.panes}
    assert len(ids) == 2
    # Toolbar actions act on the active pane only.
    view.activate(right)
    view.preset_actions["lung"].trigger()
    assert right.canvas.current_window() == PRESETS["lung"]
    assert left.canvas.current_window() != PRESETS["lung"]
    assert right.watermark in phi_widgets(view) and left.watermark in phi_widgets(view)
    assert right.patient.text() == "OTHER, PATIENT"
    save_screenshot(view, "viewer-split.png")
    view.side_action.trigger()
    assert not right.isVisible() and view.active is left


# -- ECG -----------------------------------------------------------------------------------

def test_ecg_drawn_on_calibrated_paper(qtbot, view, save_screenshot, tmp_path):
    open_and_wait(qtbot, view, [Path(get_testdata_file("waveform_ecg.dcm"))])
    pane = view.active
    qtbot.waitUntil(lambda: pane.ecg.group is not None, timeout=5000)
    ecg = pane.ecg
    assert pane.pages.currentIndex() == 1
    assert ecg.standard_layout()  # 3 x 4 sheet with a lead II rhythm strip
    assert ecg.group.label == "RHYTHM"
    # 10 s at 25 mm/s = 250 mm of trace; at the screen's DPI.
    k = ecg.px_per_mm()
    assert k == pytest.approx(ecg.logicalDpiX() / 25.4)
    assert ecg.width() >= round(250 * k)
    pixels = grab(ecg)
    pink = (pixels[:, :, 0] > 200) & (pixels[:, :, 1] < 215) & (pixels[:, :, 2] < 215)
    dark = pixels.sum(axis=2) < 150
    assert pink.mean() > 0.02  # the grid
    assert dark.mean() > 0.003  # the traces
    assert pane.watermark.lines()[-1] == "Patient ID 642341"
    # What a user reaches for an ECG: print, export and de-identify (not image-only tools).
    assert view.print_action.isEnabled() and view.export_button.isEnabled()
    assert view.deid_action.isEnabled() and not view.invert_action.isEnabled()
    # Print: the ECG paper with the watermark burned in, audited once.
    audit = view._service.audit
    task = view.print_pdf(tmp_path / "ecg.pdf")
    qtbot.waitUntil(task.done, timeout=10_000)
    assert task.exception() is None
    assert (tmp_path / "ecg.pdf").read_bytes()[:5] == b"%PDF-"
    assert audit.calls == [("file.print", pane.handle.object_id)]
    view.resize(1280, 720)
    pane.ecg_scroll.horizontalScrollBar().setValue(0)
    qtbot.wait(50)
    save_screenshot(view, "viewer-ecg.png")


def test_screenshot_ct_viewer(qtbot, view, ct_dir_screenshot, save_screenshot):
    open_and_wait(qtbot, view, [ct_dir_screenshot])
    view.resize(1280, 800)
    view.preset_actions["abdomen"].trigger()
    view.canvas.set_index(view.canvas.count() // 2)
    view.distance_action.trigger()
    view.canvas.add_measurement(DISTANCE, [(256.0, 95.0), (256.0, 417.0)])
    view.set_tags_visible(False)
    pos = view.canvas.to_widget((300.0, 300.0))
    send_mouse(view.canvas, QMouseEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton,
               Qt.MouseButton.NoButton)
    qtbot.wait(50)
    assert "HU" in view.status.text()
    save_screenshot(view, "viewer.png")


@pytest.fixture(scope="module")
def ct_dir_screenshot(tmp_path_factory) -> Path:
    from tests.support.dicom_gen import write_ct_series

    out = tmp_path_factory.mktemp("ct512")
    write_ct_series(out, 12, rows=512, cols=512)
    return out


def test_imaging_errors_are_translated(qtbot, view, languages, tmp_path):
    from app.ui.i18n import CHINESE

    assert languages.apply(CHINESE)
    try:
        (tmp_path / "notes.dcm").write_bytes(b"not DICOM" * 20)
        open_and_wait(qtbot, view, [tmp_path])
        assert "此文件不是 DICOM 影像" in view.message.text()
    finally:
        languages.apply("en")


def test_every_file_of_pydicoms_corpus_through_the_view(qtbot, view):
    """pydicom's test files (odd syntaxes, no pixels, broken files): each series is shown,
    scrolled, windowed, rotated, with its tags; nothing crashes, no generic error."""
    import os

    folder = Path(os.path.dirname(get_testdata_file("CT_small.dcm")))
    generic: list[str] = []
    view._runner.errorReported.connect(generic.append)
    open_and_wait(qtbot, view, [folder], prefetch=False)
    assert len(view.handles) > 40
    assert "could not be opened" in view.message.text()
    view.set_tags_visible(True)
    shown = 0
    for handle in view.handles:
        view.show_in(view.active, handle)
        canvas = view.canvas
        for index in (0, canvas.count() - 1):
            canvas.set_index(index)
        canvas.set_window(PRESETS["bone"])
        view.rotate_action.trigger()
        view.invert_action.trigger()
        canvas.repaint()
        shown += canvas.displayed_array() is not None
        assert view.tag_panel.tree.topLevelItemCount() > 0
    assert shown > 30
    assert generic == []


def test_open_and_export_through_the_file_dialogs(qtbot, view, ct_dir, audit, tmp_path,
                                                  monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(ct_dir)))
    view.open_folder_action.trigger()
    qtbot.waitUntil(lambda: view.canvas.count() == 8, timeout=10_000)
    target = tmp_path / "picked"  # no suffix: PNG is added
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "")))
    view.export_image_action.trigger()
    qtbot.waitUntil(lambda: len(audit.calls) == 1, timeout=10_000)
    assert (tmp_path / "picked.png").is_file()
    # Cancelling a dialog does nothing.
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    assert view.export_image() is None and view.print_pdf() is None
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: ([], "")))
    view.open_files_action.trigger()
    assert view.canvas.count() == 8 and len(audit.calls) == 1
