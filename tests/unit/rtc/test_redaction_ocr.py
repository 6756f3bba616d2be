"""Pattern redaction: tesseract's TSV parsed into words, patterns matched across words, the
worker posting boxes, and a failing tesseract leaving required OCR to blank the frames."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from app.rtc.ocr import (
    DEFAULT_PATTERNS,
    OcrFailed,
    OcrWorker,
    TesseractOcr,
    match_boxes,
    parse_tsv,
    pgm,
    to_gray,
)
from app.rtc.redaction import Outcome, Rect, RedactionPolicy, Redactor, Snapshot

# tesseract 5.3's TSV for a synthetic window (values shortened to the columns we read).
TSV = "\n".join([
    "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext",
    "1\t1\t0\t0\t0\t0\t0\t0\t1280\t720\t-1\t",
    "5\t1\t1\t1\t1\t1\t12\t74\t44\t9\t96\tPatient:",
    "5\t1\t1\t1\t1\t2\t60\t74\t26\t12\t93\tJane",
    "5\t1\t2\t1\t1\t1\t12\t215\t25\t9\t89\tMBN",
    "5\t1\t2\t1\t1\t2\t43\t215\t59\t9\t94\t48213377",
    "5\t1\t3\t1\t1\t1\t12\t354\t36\t10\t94\tPhone",
    "5\t1\t3\t1\t1\t2\t53\t355\t42\t9\t67\t+1555",
    "5\t1\t3\t1\t1\t3\t101\t355\t21\t9\t95\t013",
    "5\t1\t3\t1\t1\t4\t127\t355\t29\t9\t95\t4477",
    "5\t1\t4\t1\t1\t1\t11\t495\t30\t10\t94\tWard",
    "5\t1\t4\t1\t1\t2\t46\t496\t6\t9\t94\t7",
    "5\t1\t5\t1\t1\t1\t12\t637\t15\t9\t93\tID:",
    "5\t1\t5\t1\t1\t2\t33\t637\t69\t9\t73\tPT-0042917",
])


def patterns():
    import re
    return [re.compile(p) for p in DEFAULT_PATTERNS.values()]


def contains(outer: Rect, inner: Rect) -> bool:
    return (outer.x <= inner.x and outer.y <= inner.y and outer.x + outer.w >= inner.x + inner.w
            and outer.y + outer.h >= inner.y + inner.h)


def test_identifiers_and_phone_numbers_are_found_across_words():
    words = parse_tsv(TSV)
    assert len(words) == 12
    boxes = match_boxes(words, patterns())
    mrn, phone, pid = Rect(43, 215, 59, 9), Rect(53, 355, 103, 9), Rect(33, 637, 69, 9)
    for wanted in (mrn, phone, pid):
        assert any(contains(box, wanted) for box in boxes), wanted
    # Words that are no identifier stay readable.
    for free in (Rect(12, 74, 44, 9), Rect(11, 495, 30, 10)):
        assert not any(contains(box, free) for box in boxes)


def test_configured_patterns_replace_the_defaults():
    redactor = Redactor()
    worker = OcrWorker(redactor, engine=lambda image: parse_tsv(TSV),
                       patterns={"ward": r"Ward \d+"})
    worker.offer(Snapshot(np.zeros((720, 1280, 3), np.uint8), (), 1.0, 1.0))
    assert worker.run_once()
    assert redactor.ocr is not None and redactor.ocr.boxes == (Rect(11, 495, 41, 10),)
    assert redactor.ocr.size == (1280, 720)


def test_not_tesseract_output_is_a_failure():
    with pytest.raises(OcrFailed):
        parse_tsv("Error: something")


def test_gray_and_pgm():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (255, 255, 255)
    gray = to_gray(rgb)
    assert gray.shape == (2, 3) and gray[0, 0] == 255 and gray[1, 1] == 0
    assert pgm(gray) == b"P5 3 2 255\n" + gray.tobytes()


def test_a_failing_tesseract_changes_nothing_and_required_ocr_then_blanks(tmp_path):
    redactor = Redactor(RedactionPolicy(ocr_required=True))
    worker = OcrWorker(redactor, engine=TesseractOcr(str(tmp_path / "no-tesseract")))
    image = np.full((90, 160, 3), 200, np.uint8)
    worker.offer(Snapshot(image, (), 0.0, 0.0))
    assert not worker.run_once()
    assert worker.failures == 1 and worker.last_error == "OcrFailed"
    assert redactor.ocr is None
    import time
    now = time.monotonic()
    out, outcome = redactor.process(Snapshot(image, (), now, now))
    assert outcome is Outcome.OCR_MISSING and not out.any()


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr not installed")
def test_real_tesseract_reads_an_empty_frame_as_no_words():
    assert TesseractOcr()(np.full((60, 200, 3), 255, np.uint8)) == []


def test_worker_thread_runs_at_its_interval_and_stops():
    import threading
    redactor = Redactor()
    calls = threading.Event()

    def engine(image):
        calls.set()
        return parse_tsv(TSV)

    worker = OcrWorker(redactor, engine=engine, interval_s=0.05)
    worker.start()
    try:
        worker.offer(Snapshot(np.zeros((720, 1280, 3), np.uint8), (), 1.0, 1.0))
        assert calls.wait(5)
        for _ in range(100):
            if redactor.ocr is not None:
                break
            threading.Event().wait(0.02)
        assert redactor.ocr is not None and len(redactor.ocr.boxes) >= 3
    finally:
        worker.stop()
    assert worker._thread is None
