"""The share preview: shows exactly the frames being sent (after redaction, before encoding),
and lets the user black out more of the screen.

Drag on the picture to add a region; right-click inside a region to remove it; "Clear regions"
removes all of them. Regions are kept in the sent frame's pixels, so they follow the shared
window, not the preview's size.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QT_TRANSLATE_NOOP, QCoreApplication, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRubberBand,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.rtc.redaction import Outcome, Rect, Redactor
from app.ui.i18n import fill

_CONTEXT = "SharePreview"
_BLACK_NO_GEOMETRY = QT_TRANSLATE_NOOP(
    "SharePreview", "Others see a black screen: hidden areas could not be measured")
STATUS = {
    Outcome.REDACTED: QT_TRANSLATE_NOOP("SharePreview", "Sharing — hidden areas are black"),
    Outcome.PAUSED: QT_TRANSLATE_NOOP(
        "SharePreview", "Paused — the session is locked; others see a black screen"),
    Outcome.NO_FRAME: QT_TRANSLATE_NOOP("SharePreview", "Others see a black screen"),
    Outcome.NO_GEOMETRY: _BLACK_NO_GEOMETRY,
    Outcome.STALE_GEOMETRY: _BLACK_NO_GEOMETRY,
    Outcome.STALE_FRAME: QT_TRANSLATE_NOOP(
        "SharePreview", "Others see a black screen: the window is not being captured"),
    Outcome.OCR_MISSING: QT_TRANSLATE_NOOP(
        "SharePreview", "Others see a black screen: text scanning is not running"),
    Outcome.ERROR: QT_TRANSLATE_NOOP("SharePreview", "Others see a black screen: redaction failed"),
}


def _tr(text: str) -> str:
    return QCoreApplication.translate(_CONTEXT, text)


class FrameView(QWidget):
    """The sent frame, scaled to fit, with a rubber band for new regions."""

    region_drawn = Signal(object)  # Rect in frame pixels
    region_removed = Signal(object)  # QPoint in frame pixels

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self._pixmap: QPixmap | None = None
        self._frame_size = QSize()
        self._band = QRubberBand(QRubberBand.Shape.Rectangle, self)
        self._origin: QPoint | None = None

    def set_frame(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        data = np.ascontiguousarray(image)
        if data.ndim == 3 and data.shape[2] == 4:  # BGRA, as grabbed (little-endian RGB32)
            qimage = QImage(data.data, width, height, width * 4, QImage.Format.Format_RGB32)
        else:
            qimage = QImage(data.data, width, height, width * 3, QImage.Format.Format_RGB888)
        self._pixmap = QPixmap.fromImage(qimage)  # copies: ``data`` may go
        self._frame_size = QSize(width, height)
        self.update()

    def target(self) -> QRect:
        """Where the frame is drawn in this widget (aspect kept, centred)."""
        if self._frame_size.isEmpty():
            return QRect()
        size = self._frame_size.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRect(QPoint((self.width() - size.width()) // 2,
                            (self.height() - size.height()) // 2), size)

    def to_frame(self, point: QPoint) -> QPoint:
        target = self.target()
        if target.isEmpty():
            return QPoint()
        sx = self._frame_size.width() / target.width()
        sy = self._frame_size.height() / target.height()
        return QPoint(round((point.x() - target.x()) * sx), round((point.y() - target.y()) * sy))

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.darkGray)
        if self._pixmap is not None:
            painter.drawPixmap(self.target(), self._pixmap)
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._origin = event.position().toPoint()
            self._band.setGeometry(QRect(self._origin, QSize()))
            self._band.show()
        elif event.button() == Qt.MouseButton.RightButton:
            self.region_removed.emit(self.to_frame(event.position().toPoint()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._origin is not None:
            self._band.setGeometry(QRect(self._origin, event.position().toPoint()).normalized())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._origin is None or event.button() != Qt.MouseButton.LeftButton:
            return
        drawn = QRect(self._origin, event.position().toPoint()).normalized()
        self._origin = None
        self._band.hide()
        if drawn.width() < 4 or drawn.height() < 4:
            return
        top_left = self.to_frame(drawn.topLeft())
        bottom_right = self.to_frame(drawn.bottomRight())
        self.region_drawn.emit(Rect(top_left.x(), top_left.y(),
                                    bottom_right.x() - top_left.x() + 1,
                                    bottom_right.y() - top_left.y() + 1))


class SharePreview(QWidget):
    """What the others see, live. ``show_sent`` is safe to call from any thread."""

    frame_sent = Signal(object, str)  # (RGB ndarray, Outcome value); queued across threads

    def __init__(self, redactor: Redactor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.redactor = redactor
        self.setObjectName("sharePreview")
        self.view = FrameView(self)
        self.status = QLabel(_tr(STATUS[Outcome.NO_FRAME]), self)
        self.status.setObjectName("shareStatus")
        self.status.setWordWrap(True)
        self.regions = QLabel(self)
        self.clear = QPushButton(self.tr("Clear regions"), self)
        self.clear.clicked.connect(self.clear_regions)
        hint = QLabel(self.tr("Drag on the picture to hide an area; right-click an area to show "
                              "it again."), self)
        hint.setWordWrap(True)
        bottom = QHBoxLayout()
        bottom.addWidget(self.regions, 1)
        bottom.addWidget(self.clear)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.view, 1)
        layout.addWidget(hint)
        layout.addLayout(bottom)
        self.view.region_drawn.connect(self.add_region)
        self.view.region_removed.connect(self.remove_region_at)
        self.frame_sent.connect(self._show)
        self.last_outcome: Outcome | None = None
        self.last_frame: np.ndarray | None = None
        self.frames_shown = 0
        self._update_regions()

    def show_sent(self, image: np.ndarray, outcome: Outcome) -> None:
        self.frame_sent.emit(image, outcome.value)

    def _show(self, image: np.ndarray, outcome: str) -> None:
        self.last_outcome = Outcome(outcome)
        self.last_frame = image
        self.frames_shown += 1
        self.view.set_frame(image)
        self.status.setText(_tr(STATUS[self.last_outcome]))

    # -- user regions ----------------------------------------------------------------------

    def add_region(self, rect: Rect) -> None:
        self.redactor.set_user_regions([*self.redactor.user_regions, rect])
        self._update_regions()

    def remove_region_at(self, point: QPoint) -> None:
        kept = [r for r in self.redactor.user_regions
                if not (r.x <= point.x() < r.x + r.w and r.y <= point.y() < r.y + r.h)]
        self.redactor.set_user_regions(kept)
        self._update_regions()

    def clear_regions(self) -> None:
        self.redactor.set_user_regions([])
        self._update_regions()

    def _update_regions(self) -> None:
        count = len(self.redactor.user_regions)
        self.regions.setText(fill(self.tr("Areas you hid: %1"), str(count)))
        self.clear.setEnabled(count > 0)
