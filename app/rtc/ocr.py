"""Pattern redaction for screen sharing: tesseract reads the shared frames at a low rate (1-2 Hz)
in a worker thread; the boxes of words matching a configured pattern (MRN, patient id, phone
number) are handed to the :class:`~app.rtc.redaction.Redactor`, which blacks them out of every
following frame until the next pass replaces them (docs/calls.md, "Screen sharing").

Tesseract is Debian's ``tesseract-ocr``, run as a program: the image goes in on stdin as a PGM
and the words come back on stdout as TSV. Nothing touches the disk (``pytesseract`` writes
each image to a temporary file, which would put screen contents -- PHI -- in /tmp).
A failing pass (no tesseract, a crash, a timeout) changes nothing in the redactor; with OCR
required, its boxes then age out and the redactor sends blank frames (fail closed).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.rtc.redaction import OcrBoxes, Rect, Redactor, Snapshot

log = logging.getLogger(__name__)

# Defaults, deliberately wide: over-redaction costs a black box, under-redaction a leak.
DEFAULT_PATTERNS: dict[str, str] = {
    # A medical record number: 6-12 digits, alone or after a label tesseract may misread.
    "mrn": r"(?<![\d])\d{6,12}(?![\d])",
    # A labelled identifier: "MRN 123", "ID: PT-0042917", "Patient ID #A12345".
    "labelled_id": r"(?i)\b(?:MRN|MR#|ID|NHS|patient\s*id)\b\s*[:#]?\s*[A-Z0-9][A-Z0-9-]{2,}",
    # A patient id of letters and digits: "PT-0042917", "A1234567".
    "patient_id": r"\b[A-Z]{1,4}-?\d{5,}\b",
    # A phone number: 8+ digits with spaces, dots, dashes or brackets, maybe a leading +.
    "phone": r"\+?\(?\d[\d\s().-]{6,}\d",
}


@dataclass(frozen=True, slots=True)
class Word:
    rect: Rect
    text: str
    line: tuple[int, int, int, int]  # (page, block, paragraph, line) as tesseract numbers them


class OcrFailed(Exception):
    """A pass could not run (no tesseract, non-zero exit, timeout, unreadable output)."""


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 luminance of a gray, RGB or BGRA (alpha last) frame."""
    if image.ndim == 2:
        return image
    c0 = image[..., 0].astype(np.uint16)
    c1 = image[..., 1].astype(np.uint16)
    c2 = image[..., 2].astype(np.uint16)
    # Rec. 601 weights; for BGRA the outer weights swap, which OCR does not notice.
    return ((c0 * 77 + c1 * 150 + c2 * 29) >> 8).astype(np.uint8)


def pgm(gray: np.ndarray) -> bytes:
    height, width = gray.shape
    return f"P5 {width} {height} 255\n".encode() + np.ascontiguousarray(gray).tobytes()


class TesseractOcr:
    """Words and their boxes in an image, by the ``tesseract`` program (stdin -> TSV stdout)."""

    def __init__(self, command: str = "tesseract", *, timeout_s: float = 10.0,
                 language: str = "eng") -> None:
        self.command = command
        self.timeout_s = timeout_s
        self.language = language

    def available(self) -> bool:
        return shutil.which(self.command) is not None

    def __call__(self, image: np.ndarray) -> list[Word]:
        # One thread: the machine is shared with the call's encoder and the GUI.
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        try:
            done = subprocess.run(
                [self.command, "stdin", "stdout", "-l", self.language, "--psm", "11", "tsv"],
                input=pgm(to_gray(image)), capture_output=True, timeout=self.timeout_s,
                env=env, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise OcrFailed(exc.__class__.__name__) from None
        if done.returncode != 0:
            raise OcrFailed(f"tesseract exit {done.returncode}")
        return parse_tsv(done.stdout.decode("utf-8", "replace"))


def parse_tsv(tsv: str) -> list[Word]:
    lines = tsv.splitlines()
    if not lines or not lines[0].startswith("level\t"):
        raise OcrFailed("not tesseract TSV")
    words = []
    for row in lines[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = cols[11].strip()
        if not text:
            continue
        left, top, width, height = (int(v) for v in cols[6:10])
        line = (int(cols[1]), int(cols[2]), int(cols[3]), int(cols[4]))
        words.append(Word(Rect(left, top, width, height), text, line))
    return words


def union(rects: Sequence[Rect]) -> Rect:
    x0 = min(r.x for r in rects)
    y0 = min(r.y for r in rects)
    x1 = max(r.x + r.w for r in rects)
    y1 = max(r.y + r.h for r in rects)
    return Rect(x0, y0, x1 - x0, y1 - y0)


def match_boxes(words: Sequence[Word], patterns: Sequence[re.Pattern[str]]) -> list[Rect]:
    """The box of every match of any pattern, matched over each line's words joined by
    spaces (so "MRN 48213377" and "+1 555 013 4477" match across words)."""
    by_line: dict[tuple[int, int, int, int], list[Word]] = {}
    for word in words:
        by_line.setdefault(word.line, []).append(word)
    boxes: list[Rect] = []
    for line_words in by_line.values():
        spans: list[tuple[int, int, Word]] = []
        text = ""
        for word in line_words:
            if text:
                text += " "
            spans.append((len(text), len(text) + len(word.text), word))
            text += word.text
        for pattern in patterns:
            for found in pattern.finditer(text):
                hit = [w for start, end, w in spans
                       if start < found.end() and end > found.start()]
                if hit:
                    boxes.append(union([w.rect for w in hit]))
    return boxes


Engine = Callable[[np.ndarray], list[Word]]


class OcrWorker:
    """Reads the newest offered frame every ``interval_s`` in its own thread and posts the
    matching boxes to ``redactor``. :meth:`offer` is cheap (it keeps a reference)."""

    def __init__(self, redactor: Redactor, *, engine: Engine | None = None,
                 patterns: dict[str, str] | None = None, interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.redactor = redactor
        self.engine = engine or TesseractOcr()
        self.patterns = [re.compile(p) for p in (patterns or DEFAULT_PATTERNS).values()]
        self.interval_s = interval_s
        self._clock = clock
        self._latest: Snapshot | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0
        self.failures = 0
        self.last_error = ""
        self.last_duration_s: float | None = None

    def offer(self, snapshot: Snapshot) -> None:
        self._latest = snapshot
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="screenshare-ocr",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 12.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> bool:
        """One pass over the newest frame; True when it posted boxes."""
        snapshot, self._latest = self._latest, None
        if snapshot is None or snapshot.image is None:
            return False
        started = self._clock()
        try:
            words = self.engine(snapshot.image)
            boxes = match_boxes(words, self.patterns)
        except Exception as exc:  # the redactor keeps the old boxes, which then age out
            self.failures += 1
            self.last_error = exc.__class__.__name__
            log.info("OCR pass failed", extra={"event": "screenshare_ocr_failed",
                                               "reason_code": self.last_error})
            return False
        height, width = snapshot.image.shape[:2]
        finished = self._clock()
        self.redactor.set_ocr(OcrBoxes(tuple(boxes), (int(width), int(height)),
                                       snapshot.captured_at, finished))
        self.passes += 1
        self.last_error = ""
        self.last_duration_s = finished - started
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            self._wake.clear()
            started = self._clock()
            self.run_once()
            rest = self.interval_s - (self._clock() - started)
            if rest > 0 and self._stop.wait(rest):
                return
