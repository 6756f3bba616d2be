"""Grabbing what is shared, with the PHI geometry of the same moment (docs/calls.md,
"Screen sharing").

On each tick of a timer at the share rate, on the GUI thread (Qt paints only there):

1. the image -- ``QWidget.grab()`` of our window (``window`` mode: Qt renders our own widget
   tree, so whatever overlaps it on the desktop never enters the frame), or
   ``QScreen.grabWindow(0)`` (``screen`` mode);
2. the rectangles of every visible PHI-tagged widget (``app.ui.phi.phi_rects``): of the shared
   window in ``window`` mode, of every visible top-level window of ours in ``screen`` mode,
   mapped into the image's pixels (device pixel ratio included, grown outward to whole pixels).

No event is processed between the two steps, so the geometry is the one the image was painted
with. Both go to ``push`` as one :class:`~app.rtc.redaction.Snapshot`; everything else
(redaction, conversion, encoding) runs off the GUI thread. While the session is locked nothing
is grabbed: a locked snapshot is pushed and the track sends black.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QPoint, QRect, QTimer
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import QApplication, QWidget

from app.rtc.redaction import Rect, Snapshot
from app.services.app_state import AppState
from app.ui.phi import phi_rects

log = logging.getLogger(__name__)

Geometry = Callable[[QWidget], list[QRect]]  # PHI rects of a window, in its own coordinates


_BGRA_IN_MEMORY = (QImage.Format.Format_RGB32, QImage.Format.Format_ARGB32,
                   QImage.Format.Format_ARGB32_Premultiplied)


def qimage_pixels(image: QImage) -> tuple[np.ndarray, QImage]:
    """``image`` as an (H, W, 4) BGRA array *viewing* its memory (no conversion, no copy:
    what ``grab()`` gives on little-endian machines), else as an (H, W, 3) RGB array of a
    converted copy. Returns the QImage that owns the memory: keep it with the array."""
    if sys.byteorder == "little" and image.format() in _BGRA_IN_MEMORY:
        owner, channels = image, 4
    else:
        owner, channels = image.convertToFormat(QImage.Format.Format_RGB888), 3
    height, width, stride = owner.height(), owner.width(), owner.bytesPerLine()
    rows = np.frombuffer(owner.constBits(), dtype=np.uint8, count=stride * height)
    pixels = rows.reshape(height, stride)[:, : width * channels].reshape(height, width, channels)
    return pixels, owner


def to_image_rects(rects: list[QRect], ratio: float, offset: QPoint | None = None) -> list[Rect]:
    """Logical rectangles (relative to ``offset``) in the pixels of an image grabbed at device
    pixel ratio ``ratio``; grown outward so a fractional edge is covered."""
    dx, dy = (offset.x(), offset.y()) if offset is not None else (0, 0)
    return [Rect(r.x() - dx, r.y() - dy, r.width(), r.height()).scaled(ratio, ratio)
            for r in rects]


class WindowCapture(QObject):
    def __init__(self, window: QWidget, push: Callable[[Snapshot], None], *,
                 fps: float = 5.0, state: AppState | None = None, mode: str = "window",
                 geometry: Geometry = phi_rects, clock: Callable[[], float] = time.monotonic,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        if mode not in ("window", "screen"):
            raise ValueError("mode is 'window' or 'screen'")
        self.window = window
        self.push = push
        self.state = state
        self.mode = mode
        self.geometry = geometry
        self._clock = clock
        self.timer = QTimer(self)
        self.timer.setInterval(max(int(1000 / fps), 10))
        self.timer.timeout.connect(self.grab_once)
        self.grabs = 0
        self.grab_ms: list[float] = []  # GUI-thread cost per grab, for the benchmark

    def start(self) -> None:
        self.grab_once()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def locked(self) -> bool:
        return self.state is not None and self.state.locked

    def push_locked(self) -> None:
        now = self._clock()
        self.push(Snapshot(None, (), now, now, locked=True))

    def grab_once(self) -> None:
        """Grab, measure, push. Never raises: a failure pushes a snapshot that blanks."""
        started = time.perf_counter()
        if self.locked():
            self.push_locked()
            return
        if self.mode == "window" and not self.window.isVisible():
            # grab() would still render a hidden window, but phi_rects() measures only what
            # is visible: nothing to vouch for, so no image (the frame sent is black).
            now = self._clock()
            self.push(Snapshot(None, (), now, now))
            return
        image: np.ndarray | None = None
        owner: QImage | None = None
        rects: tuple[Rect, ...] | None = None
        captured_at = geometry_at = self._clock()
        try:
            pixmap, origin = self._grab()
            # No conversion or copy here: the track's worker copies while redacting.
            image, owner = qimage_pixels(pixmap.toImage())
            captured_at = self._clock()
            rects = tuple(self._rects(pixmap.devicePixelRatio(), origin))
            geometry_at = self._clock()
        except Exception as exc:  # no geometry (or no image): the redactor sends black
            log.warning("screen capture step failed", extra={
                "event": "screenshare_capture_failed", "reason_code": exc.__class__.__name__})
            rects = None
        self.push(Snapshot(image, rects, captured_at, geometry_at, locked=self.locked(),
                           owner=owner))
        self.grabs += 1
        self.grab_ms.append((time.perf_counter() - started) * 1000)
        del self.grab_ms[:-200]

    def _grab(self) -> tuple[QPixmap, QPoint]:
        if self.mode == "window":
            return self.window.grab(), QPoint(0, 0)
        screen = self.window.screen() or QGuiApplication.primaryScreen()
        return screen.grabWindow(0), screen.geometry().topLeft()

    def _rects(self, ratio: float, origin: QPoint) -> list[Rect]:
        if self.mode == "window":
            return to_image_rects(self.geometry(self.window), ratio)
        rects: list[Rect] = []
        for top in QApplication.topLevelWidgets():
            if not top.isVisible():
                continue
            to_global = top.mapToGlobal(QPoint(0, 0))
            local = [QRect(r.topLeft() + to_global, r.size()) for r in self.geometry(top)]
            rects.extend(to_image_rects(local, ratio, origin))
        return rects
