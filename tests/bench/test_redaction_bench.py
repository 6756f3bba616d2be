"""Screen-share redaction cost per 1080p frame (goal <= 5 ms), as a ratio to a plain copy of the
same frame measured in the same run; plus what surrounds it, for the record.

* *redact*: ``Redactor.process`` on a 1920x1080 BGRA snapshot (what the capture hands over;
  RGB too) with 24 PHI widget rectangles,
  3 user regions and 12 OCR boxes -- every check, the copy of the frame (the snapshot stays
  as grabbed) and the black-out. Reference: ``frame.copy()``.
* *black-out only*: ``black_out`` in place, the same 39 rectangles.
* *to video frame*: BGRA/RGB -> yuv420p ``VideoFrame`` (the track's worker does it after
  redaction; the encoder follows in aiortc's own thread).
* *capture on the GUI thread*: ``WindowCapture.grab_once`` of a 1920x1080 window (offscreen
  Qt) with 24 PHI labels -- grab, a BGRA view of the image (no copy), PHI geometry;
  reference: ``QWidget.grab().toImage()`` alone (what any capture must do on that thread).
* *OCR pass*: one tesseract pass over the 1080p frame (sets the feasible OCR rate).

Rounds alternate measure and reference; medians are compared.
"""

from __future__ import annotations

import shutil
import statistics
import time

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication, QGridLayout, QLabel, QWidget

from app.core.phi import Phi
from app.rtc.ocr import TesseractOcr
from app.rtc.redaction import (
    OcrBoxes,
    Outcome,
    Rect,
    RedactionPolicy,
    Redactor,
    Snapshot,
    black_out,
)
from app.rtc.screen_track import to_video_frame
from app.ui.phi import PhiLabel
from app.ui.screenshare.capture import WindowCapture
from tests.bench.timing import fmt_ms, latency_ms

pytestmark = pytest.mark.bench

W, H = 1920, 1080
ROUNDS = 200
GOAL_MS = 5.0


def frame(channels: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(H, W, channels), dtype=np.uint8)


def rects() -> tuple[list[Rect], list[Rect], list[Rect]]:
    widgets = [Rect(40 + (i % 4) * 460, 60 + (i // 4) * 160, 420, 36) for i in range(24)]
    user = [Rect(1500, 900, 380, 140), Rect(0, 0, 300, 40), Rect(900, 500, 200, 200)]
    ocr = [Rect(100 + i * 140, 1000, 120, 24) for i in range(12)]
    return widgets, user, ocr


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


@pytest.mark.parametrize("channels", [4, 3], ids=["bgra", "rgb"])
def test_redaction_cost_per_1080p_frame(channels):
    image = frame(channels)
    widgets, user, ocr = rects()
    redactor = Redactor(RedactionPolicy(max_snapshot_age_s=1e9))
    redactor.set_user_regions(user)
    redactor.set_ocr(OcrBoxes(tuple(ocr), (W, H), 0.0, time.monotonic()))
    now = time.monotonic()
    snapshot = Snapshot(image, tuple(widgets), now, now)
    out, outcome = redactor.process(snapshot)
    assert outcome is Outcome.REDACTED and not out[60:96, 40:460, :3].any()

    redact, copy, blackout, convert = [], [], [], []
    scratch = image.copy()
    for _ in range(ROUNDS):
        t = time.perf_counter()
        redactor.process(snapshot)
        redact.append(time.perf_counter() - t)
        t = time.perf_counter()
        image.copy()
        copy.append(time.perf_counter() - t)
        t = time.perf_counter()
        black_out(scratch, [*widgets, *user, *ocr])
        blackout.append(time.perf_counter() - t)
    for _ in range(ROUNDS // 4):
        t = time.perf_counter()
        to_video_frame(out)
        convert.append(time.perf_counter() - t)

    ratio = median_ms(redact) / median_ms(copy)
    print()
    kind = "BGRA" if channels == 4 else "RGB"
    print(f"redaction bench: 1920x1080 {kind}, {len(widgets)} widget + {len(user)} user + "
          f"{len(ocr)} OCR rects, {ROUNDS} rounds")
    print(f"  redact (process)     {fmt_ms(latency_ms(redact))}")
    print(f"  plain frame copy     {fmt_ms(latency_ms(copy))}")
    print(f"  black-out only       {fmt_ms(latency_ms(blackout))}")
    print(f"  to yuv420p frame     {fmt_ms(latency_ms(convert))}")
    print(f"  redact / copy (median) = {ratio:.2f}x; goal redact <= {GOAL_MS} ms")
    assert median_ms(redact) <= GOAL_MS * 4  # an order of magnitude, not noise


def test_capture_cost_on_the_gui_thread(qapp):
    window = QWidget()
    window.setStyleSheet("background: white;")
    grid = QGridLayout(window)
    for i in range(24):
        grid.addWidget(QLabel(f"Note {i}: reviewed"), i // 4, (i % 4) * 2)
        grid.addWidget(PhiLabel(Phi(f"MRN {48213377 + i}")), i // 4, (i % 4) * 2 + 1)
    window.resize(W, H)
    window.show()
    QApplication.processEvents()
    pushed: list[Snapshot] = []
    capture = WindowCapture(window, pushed.append)
    capture.grab_once()
    assert pushed[-1].image.shape == (H, W, 4) and len(pushed[-1].rects) == 24

    ours, grab = [], []
    kept = []  # both keep what they grabbed alive, as the share does until it is sent

    def measure_ours() -> None:
        t = time.perf_counter()
        capture.grab_once()
        ours.append(time.perf_counter() - t)

    def measure_grab() -> None:
        t = time.perf_counter()
        kept.append(window.grab().toImage())
        grab.append(time.perf_counter() - t)

    for i in range(40):
        first, second = (measure_ours, measure_grab) if i % 2 else (measure_grab, measure_ours)
        first()
        second()
        del pushed[:-3], kept[:-3]
    window.close()
    print()
    print("capture bench: 1920x1080 window, 24 PHI labels, offscreen Qt, 40 rounds")
    print(f"  grab_once (grab + BGRA view + geometry)  {fmt_ms(latency_ms(ours))}")
    print(f"  QWidget.grab().toImage() alone          {fmt_ms(latency_ms(grab))}")
    print(f"  ratio (median) = {median_ms(ours) / median_ms(grab):.2f}x")


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr not installed")
def test_ocr_pass_on_a_1080p_frame(qapp):
    window = QWidget()
    window.setStyleSheet("background: white;")
    grid = QGridLayout(window)
    for i in range(24):
        grid.addWidget(QLabel(f"Patient ID PT-{42917 + i} reviewed"), i // 4, i % 4)
    window.resize(W, H)
    window.show()
    QApplication.processEvents()
    pushed: list[Snapshot] = []
    WindowCapture(window, pushed.append).grab_once()
    window.close()
    engine = TesseractOcr()
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        words = engine(pushed[-1].image)
        runs.append(time.perf_counter() - t)
    print()
    print(f"OCR bench: one tesseract pass, 1920x1080, {len(words)} words read: "
          f"{fmt_ms(latency_ms(runs))}")
    assert words
