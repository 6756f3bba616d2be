"""The redaction step of screen sharing (docs/calls.md, "Screen sharing"): Qt-free, numpy only.

Every frame handed to the screen-share track passes :meth:`Redactor.process` before it is
encoded. What is blacked out, with a small margin:

* the rectangles of the PHI-tagged widgets of our own windows, measured at the moment the
  frame was grabbed (the capture side hands them with the image, in image pixels);
* the regions the user drew on the share preview;
* the boxes of the last OCR pass (:mod:`app.rtc.ocr`) where a configured pattern (MRN,
  patient id, phone number) was read, until the next pass replaces them.

Fail closed: :meth:`Redactor.process` never raises and never returns the raw image when it
cannot vouch for it. The frame is all black when the snapshot is missing, marked locked or
paused, carries no geometry (the provider failed), has geometry older than the image by more
than ``max_geometry_lag_s``, is itself older than ``max_snapshot_age_s`` (capture stalled),
when OCR is required and has not completed a pass over this frame size within
``ocr_max_age_s``, or when anything at all raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MARGIN = 4  # pixels of black around each rectangle (anti-aliased edges, focus rings)
# Colour bytes 0, alpha byte 255, as one native-order 32-bit pixel.
_OPAQUE_BLACK = np.frombuffer(bytes((0, 0, 0, 255)), dtype=np.uint32)[0]


@dataclass(frozen=True, slots=True)
class Rect:
    """An axis-aligned rectangle in image pixels; may lie partly or wholly outside the image."""

    x: int
    y: int
    w: int
    h: int

    def inflated(self, margin: int) -> Rect:
        return Rect(self.x - margin, self.y - margin, self.w + 2 * margin, self.h + 2 * margin)

    def clipped(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) inside a ``width`` x ``height`` image, or None when empty."""
        x0, y0 = max(self.x, 0), max(self.y, 0)
        x1, y1 = min(self.x + self.w, width), min(self.y + self.h, height)
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1, y1

    def scaled(self, sx: float, sy: float) -> Rect:
        """This rectangle in an image scaled by (sx, sy), grown outward to whole pixels."""
        x0, y0 = int(np.floor(self.x * sx)), int(np.floor(self.y * sy))
        x1 = int(np.ceil((self.x + self.w) * sx))
        y1 = int(np.ceil((self.y + self.h) * sy))
        return Rect(x0, y0, x1 - x0, y1 - y0)


def black_out(image: np.ndarray, rects: Iterable[Rect], margin: int = DEFAULT_MARGIN) -> int:
    """Paint each rectangle (grown by ``margin``) black in ``image`` in place.

    ``image`` is (H, W) gray, (H, W, 3) RGB/BGR or (H, W, 4) with alpha last (BGRA as Qt's
    RGB32 lies in memory): colour channels become 0 and alpha opaque. Rectangles partly or
    wholly outside the image are clipped. Returns how many rectangles touched the image.
    """
    height, width = image.shape[:2]
    target, fill = image, 0
    if image.ndim == 3 and image.shape[2] == 4:
        if image.strides[1:] == (4, 1):
            # One 32-bit store a pixel (strided per-channel stores are ~50x slower).
            target, fill = image.view(np.uint32)[..., 0], _OPAQUE_BLACK
        else:
            target = None
    touched = 0
    for rect in rects:
        box = rect.inflated(margin).clipped(width, height)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        if target is None:
            image[y0:y1, x0:x1, :3] = 0
            image[y0:y1, x0:x1, 3] = 255
        else:
            target[y0:y1, x0:x1] = fill
        touched += 1
    return touched


def blank(height: int, width: int, channels: int = 3) -> np.ndarray:
    """An all-black frame (opaque when it has alpha)."""
    image = np.zeros((height, width, channels), dtype=np.uint8)
    if channels == 4:
        image[..., 3] = 255
    return image


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One grabbed frame and what the capture side knew about it at that moment.

    ``rects`` is None when the geometry could not be collected (fail closed). Times are
    ``time.monotonic()`` seconds.
    """

    image: np.ndarray | None
    rects: tuple[Rect, ...] | None
    captured_at: float
    geometry_at: float | None = None
    locked: bool = False
    owner: object = None  # keeps the memory of an image that views another object's alive


class Outcome(StrEnum):
    REDACTED = "redacted"
    # Blank frames, by reason:
    NO_FRAME = "no_frame"
    PAUSED = "paused"  # locked, or sharing paused by the user
    NO_GEOMETRY = "no_geometry"
    STALE_GEOMETRY = "stale_geometry"
    STALE_FRAME = "stale_frame"
    OCR_MISSING = "ocr_missing"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class OcrBoxes:
    """What one OCR pass found: boxes in the pixels of an image of ``size`` (width, height),
    finished at ``finished_at`` (monotonic) over a frame captured at ``frame_at``."""

    boxes: tuple[Rect, ...]
    size: tuple[int, int]
    frame_at: float
    finished_at: float


@dataclass
class RedactionPolicy:
    margin: int = DEFAULT_MARGIN
    max_geometry_lag_s: float = 0.05  # geometry and image must be from the same moment
    max_snapshot_age_s: float = 1.0  # capture stalled (GUI hung, window gone): blank
    ocr_required: bool = False  # True: no recent OCR pass -> blank
    # A pass takes 0.1-0.4 s on a 720p window, 1.5-2 s on a busy 1080p screen (2 shared
    # cores, docs/performance.md): passes every 1-2 s, and one late pass is tolerated.
    ocr_max_age_s: float = 4.0


@dataclass
class RedactionStats:
    frames: int = 0
    blank: dict[str, int] = field(default_factory=dict)
    last: Outcome | None = None

    def count(self, outcome: Outcome) -> None:
        self.frames += 1
        self.last = outcome
        if outcome is not Outcome.REDACTED:
            self.blank[outcome.value] = self.blank.get(outcome.value, 0) + 1


class Redactor:
    """Turns snapshots into frames that are safe to send. Thread-safe: the GUI thread edits
    the user's regions, the OCR worker posts its boxes, the track's worker calls
    :meth:`process`."""

    def __init__(self, policy: RedactionPolicy | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or RedactionPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._user: tuple[Rect, ...] = ()
        self._ocr: OcrBoxes | None = None
        self.paused = False  # set by whoever observes the lock state; blank while True
        self.stats = RedactionStats()

    # -- inputs ------------------------------------------------------------------------------

    @property
    def user_regions(self) -> tuple[Rect, ...]:
        return self._user

    def set_user_regions(self, rects: Sequence[Rect]) -> None:
        with self._lock:
            self._user = tuple(rects)

    def set_ocr(self, found: OcrBoxes) -> None:
        with self._lock:
            self._ocr = found

    @property
    def ocr(self) -> OcrBoxes | None:
        return self._ocr

    # -- the step ----------------------------------------------------------------------------

    def process(self, snapshot: Snapshot | None, *,
                size: tuple[int, int] | None = None) -> tuple[np.ndarray, Outcome]:
        """The frame to send for ``snapshot`` and why it looks as it does. Never raises, never
        returns the raw image unless every check passed; a blank frame is ``size`` (w, h), else
        the snapshot's size, else 640x360."""
        try:
            outcome, image = self._process(snapshot)
        except Exception as exc:
            log.warning("redaction failed, blank frame sent",
                        extra={"event": "redaction_failed",
                               "reason_code": exc.__class__.__name__})
            outcome, image = Outcome.ERROR, None
        if image is None:
            image = self._blank_for(snapshot, size)
        self.stats.count(outcome)
        return image, outcome

    def _blank_for(self, snapshot: Snapshot | None, size: tuple[int, int] | None) -> np.ndarray:
        channels = 3
        if size is None:
            size = (640, 360)
            try:
                if snapshot is not None and snapshot.image is not None:
                    height, width = snapshot.image.shape[:2]
                    if snapshot.image.ndim == 3 and snapshot.image.shape[2] == 4:
                        channels = 4
                    size = (int(width), int(height))
            except Exception:  # a malformed image: the default size will do
                size = (640, 360)
        return blank(max(size[1], 2), max(size[0], 2), channels)

    def _process(self, snapshot: Snapshot | None) -> tuple[Outcome, np.ndarray | None]:
        policy = self.policy
        if self.paused or (snapshot is not None and snapshot.locked):
            return Outcome.PAUSED, None
        if snapshot is None or snapshot.image is None:
            return Outcome.NO_FRAME, None
        if snapshot.rects is None or snapshot.geometry_at is None:
            return Outcome.NO_GEOMETRY, None
        if abs(snapshot.captured_at - snapshot.geometry_at) > policy.max_geometry_lag_s:
            return Outcome.STALE_GEOMETRY, None
        now = self._clock()
        if now - snapshot.captured_at > policy.max_snapshot_age_s:
            return Outcome.STALE_FRAME, None
        image = snapshot.image
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise TypeError("frames are uint8 (H, W) or (H, W, C) arrays")
        height, width = image.shape[:2]
        with self._lock:
            user, ocr = self._user, self._ocr
        rects: list[Rect] = [*snapshot.rects, *user]
        ocr_fresh = (ocr is not None and ocr.size == (width, height)
                     and now - ocr.finished_at <= policy.ocr_max_age_s)
        if policy.ocr_required and not ocr_fresh:
            return Outcome.OCR_MISSING, None
        if ocr is not None and ocr.size == (width, height):
            rects.extend(ocr.boxes)  # older boxes still hide what they found: keep them
        out = image.copy()
        black_out(out, rects, policy.margin)
        return Outcome.REDACTED, out
