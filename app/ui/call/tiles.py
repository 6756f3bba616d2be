"""Video tiles and the frame feed behind them.

Decoded frames arrive from aiortc on the event loop's thread (which, with qasync, is the GUI
thread). :class:`FrameFeed` does no pixel work there: each frame is handed to a worker thread
(:func:`app.ui.asyncbridge.run_in_worker`) that converts it to an RGB ``QImage``; the GUI
thread only paints the finished image. While a peer's previous frame is still converting, the
new one is dropped (a late frame is worth nothing in a call).

A :class:`VideoTile` shows one participant's video, name and state line. The video area is
PHI-tagged (a consult's video shows the patient or their images): the auto-lock hides it and a
screen share covers it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.rtc.tracks import frame_to_rgb
from app.ui.asyncbridge import TaskRunner, run_in_worker
from app.ui.phi import mark_phi

LOCAL = "local"  # the feed key of our own camera preview


def to_qimage(frame: Any) -> QImage:
    """A decoded video frame as an RGB QImage that owns its pixels (worker thread)."""
    rgb = frame_to_rgb(frame)
    height, width = rgb.shape[:2]
    return QImage(rgb.data, width, height, width * 3, QImage.Format.Format_RGB888).copy()


class FrameFeed(QObject):
    """The calls' raw frame sink: ``feed(peer, frame)`` -> ``frame_ready(key, QImage)``."""

    frame_ready = Signal(object, QImage)

    def __init__(self, runner: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self._busy: set[Any] = set()
        self.converted = 0
        self.dropped = 0

    def __call__(self, key: Any, frame: Any) -> None:
        if key in self._busy:
            self.dropped += 1
            return
        self._busy.add(key)

        def done(image: QImage) -> None:
            self._busy.discard(key)
            self.converted += 1
            self.frame_ready.emit(key, image)

        def failed(_message: str) -> None:
            self._busy.discard(key)

        self.runner.run_task(run_in_worker(to_qimage, frame), owner=self, on_result=done,
                             on_error=failed)


class VideoSurface(QWidget):
    """Paints the latest image, aspect kept; a green frame while its participant speaks."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        mark_phi(self)
        self.setObjectName("callVideo")
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.image: QImage | None = None
        self.speaking = False
        self.frames = 0

    def set_image(self, image: QImage | None) -> None:
        self.image = image
        if image is not None:
            self.frames += 1
        self.update()

    def clear(self) -> None:
        self.image = None
        self.update()

    def target(self) -> QRect:
        if self.image is None or self.image.isNull():
            return QRect()
        size = self.image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRect(QPoint((self.width() - size.width()) // 2,
                            (self.height() - size.height()) // 2), size)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 28))
        if self.image is not None:
            painter.drawImage(self.target(), self.image)
        if self.speaking:
            painter.setPen(QPen(QColor(46, 204, 113), 6))
            painter.drawRect(self.rect().adjusted(3, 3, -3, -3))
        painter.end()

    def hideEvent(self, event) -> None:
        self.clear()  # a locked (hidden) tile keeps no picture of the consult
        super().hideEvent(event)


class VideoTile(QWidget):
    """One participant: video, name, and the state line (encryption, device, route, quality)."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("callTile")
        self.video = VideoSurface(self)
        self.name = QLabel(name, self)
        self.name.setObjectName("callTileName")
        self.name.setProperty("role", "heading")
        self.state = QLabel(self)
        self.state.setObjectName("callTileState")
        self.state.setProperty("role", "subtle")
        self.state.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addWidget(self.video, 1)
        layout.addWidget(self.name)
        layout.addWidget(self.state)

    def set_state(self, text: str) -> None:
        if self.state.text() != text:
            self.state.setText(text)

    def set_speaking(self, speaking: bool) -> None:
        if self.video.speaking != speaking:
            self.video.speaking = speaking
            self.video.update()

    @property
    def speaking(self) -> bool:
        return self.video.speaking
