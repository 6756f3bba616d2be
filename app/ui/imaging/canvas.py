"""The image canvas: one slice of a series on screen, and the ways a reader works with it.

Mouse: left drag pans (or places measurement points when a measuring tool is on); right or
middle drag windows -- horizontal changes the width, vertical the level (drag down: higher
level, darker image); the wheel scrolls slices, with Ctrl it zooms about the cursor.
Keys: Up/Left and Down/Right step one slice, PageUp/PageDown ten, Home/End the ends.
Moving the mouse probes the pixel under it (stored value and modality value, HU for CT).

The pixels come from :class:`~app.services.imaging.SeriesHandle` (a decoded frame renders in
a millisecond or two); painting maps the image with one transform (zoom, pan, rotation, flip),
so none of those touch the pixels.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.core.imaging_types import PRESETS, Measurement, WindowLevel
from app.imaging.errors import ImagingError
from app.services.imaging import SeriesHandle
from app.ui.asyncbridge import user_message
from app.ui.i18n import fill
from app.ui.imaging.qimage import ArrayImage
from app.ui.phi import mark_phi

Point = tuple[float, float]  # (row, col) in image pixels

NAVIGATE, DISTANCE, ANGLE = "navigate", "distance", "angle"
PRESET_ORDER = ("brain", "lung", "bone", "abdomen", "mediastinum")
_MEASURE_COLOUR = QColor(255, 214, 10)
_TEXT_COLOUR = QColor(235, 235, 235)
_POINTER_COLOUR = QColor(64, 196, 255)


@dataclass(slots=True)
class MeasureItem:
    kind: str  # DISTANCE or ANGLE
    points: list[Point]
    result: Measurement | None = None


@dataclass(slots=True)
class ViewState:
    index: int = 0
    window: WindowLevel | None = None  # None: the file's own window
    zoom: float | None = None  # None: fit to the widget
    pan: QPointF = field(default_factory=QPointF)
    rotation: int = 0  # quarter turns clockwise
    flip_h: bool = False
    flip_v: bool = False
    invert: bool = False


class ImageCanvas(QWidget):
    stateChanged = Signal()  # slice, window, zoom or orientation changed
    probeChanged = Signal(str)  # a status line for the pixel under the cursor
    measurementAdded = Signal(object)  # MeasureItem
    painted = Signal()
    failed = Signal(str)  # a user-safe message (the frame could not be decoded)
    pointerMoved = Signal(object)  # Point under the mouse (image pixels), None when it left

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        mark_phi(self)  # the pixels are patient data (burned-in text, faces)
        self.setObjectName("imageCanvas")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.handle: SeriesHandle | None = None
        self.state = ViewState()
        self.tool = NAVIGATE
        self.measurements: dict[int, list[MeasureItem]] = {}
        self._pending: MeasureItem | None = None
        self._shown: ArrayImage | None = None
        self._error = ""
        self._drag_button: Qt.MouseButton | None = None
        self._drag_last = QPointF()
        self._drag_start = QPointF()
        self._window_at_drag: WindowLevel | None = None
        self.paint_count = 0
        self.cine = QTimer(self)
        self.cine.timeout.connect(self._cine_step)
        self.cine_fps = 10
        self.remote_pointer: tuple[Point, str] | None = None  # co-view: (point, who)
        # Co-view: the region another view shows, kept across this widget's resizes until
        # the reader zooms or pans here.
        self.held_region: tuple[Point, tuple[float, float]] | None = None

    # -- series ----------------------------------------------------------------------------

    def set_series(self, handle: SeriesHandle | None, index: int = 0, *,
                   keep_view: bool = False) -> None:
        """Show ``handle`` at ``index``. ``keep_view`` keeps window, zoom and orientation
        (used when the full series replaces the first image shown while it loaded)."""
        self.stop()
        self.handle = handle
        if not keep_view:
            self.state = ViewState()
            self.measurements = {}
            self.held_region = None
        self._pending = None
        self.state.index = max(0, min(index, len(handle) - 1)) if handle and len(handle) else 0
        self._refresh()

    def count(self) -> int:
        return len(self.handle) if self.handle is not None else 0

    def current_window(self) -> WindowLevel | None:
        """The window in use (the file's default until the reader changes it)."""
        if self.state.window is not None:
            return self.state.window
        if self.handle is None or not self.count():
            return None
        try:
            return self.handle.default_window(self.state.index)
        except ImagingError:
            return None

    def displayed_array(self) -> np.ndarray | None:
        """The pixels on screen now (windowed, inverted), before zoom/rotation."""
        return self._shown.array if self._shown is not None else None

    def oriented_array(self) -> np.ndarray | None:
        """The pixels on screen with rotation and flips applied (for export and print)."""
        arr = self.displayed_array()
        if arr is None:
            return None
        if self.state.flip_h:
            arr = arr[:, ::-1]
        if self.state.flip_v:
            arr = arr[::-1, :]
        return np.ascontiguousarray(np.rot90(arr, -self.state.rotation))

    # -- navigation ------------------------------------------------------------------------

    def set_index(self, index: int) -> None:
        if not self.count():
            return
        index = max(0, min(index, self.count() - 1))
        if index != self.state.index:
            self.state.index = index
            self._pending = None
            self._refresh()

    def step(self, delta: int) -> None:
        self.set_index(self.state.index + delta)

    def set_window(self, window: WindowLevel | None) -> None:
        self.state.window = window
        self._refresh()

    def apply_preset(self, name: str) -> None:
        self.set_window(PRESETS[name] if name else None)

    def set_invert(self, on: bool) -> None:
        self.state.invert = on
        self._refresh()

    def rotate(self, quarter_turns: int = 1) -> None:
        self.state.rotation = (self.state.rotation + quarter_turns) % 4
        self._changed()

    def flip(self, horizontal: bool = True) -> None:
        # Flips act on the screen axes: swap which image axis is flipped when turned 90 deg.
        if self.state.rotation % 2:
            horizontal = not horizontal
        if horizontal:
            self.state.flip_h = not self.state.flip_h
        else:
            self.state.flip_v = not self.state.flip_v
        self._changed()

    def zoom_fit(self) -> None:
        self.held_region = None
        self.state.zoom = None
        self.state.pan = QPointF()
        self._changed()

    def zoom_actual(self) -> None:
        self.held_region = None
        self.state.zoom = 1.0
        self.state.pan = QPointF()
        self._changed()

    def zoom_by(self, factor: float, about: QPointF | None = None) -> None:
        self.held_region = None
        old = self.scale()
        new = max(0.05, min(old * factor, 40.0))
        if about is not None:
            # Keep the image point under the cursor where it is.
            centre = QPointF(self.width() / 2, self.height() / 2) + self.state.pan
            self.state.pan += (about - centre) * (1 - new / old)
        self.state.zoom = new
        self._changed()

    def set_tool(self, tool: str) -> None:
        self.tool = tool
        self._pending = None
        self.setCursor(Qt.CursorShape.CrossCursor if tool != NAVIGATE
                       else Qt.CursorShape.ArrowCursor)
        self.update()

    def clear_measurements(self) -> None:
        self.measurements.pop(self.state.index, None)
        self._pending = None
        self.update()

    # -- cine ------------------------------------------------------------------------------

    def play(self, fps: int | None = None) -> None:
        if self.count() > 1:
            self.cine_fps = fps or self.cine_fps
            self.cine.start(max(10, round(1000 / self.cine_fps)))

    def stop(self) -> None:
        self.cine.stop()

    def playing(self) -> bool:
        return self.cine.isActive()

    def _cine_step(self) -> None:
        if not self.count():
            self.stop()
            return
        self.set_index((self.state.index + 1) % self.count())

    # -- geometry --------------------------------------------------------------------------

    def _image_size(self) -> tuple[int, int]:
        if self._shown is None:
            return 0, 0
        return self._shown.width, self._shown.height

    def scale(self) -> float:
        if self.state.zoom is not None:
            return self.state.zoom
        w, h = self._image_size()
        if not w or not h:
            return 1.0
        if self.state.rotation % 2:
            w, h = h, w
        return max(0.01, min(self.width() / w, self.height() / h))

    def image_transform(self) -> QTransform:
        """Image pixel coordinates (x = column, y = row) -> widget coordinates."""
        w, h = self._image_size()
        s = self.scale()
        t = QTransform()
        t.translate(self.width() / 2 + self.state.pan.x(), self.height() / 2 + self.state.pan.y())
        t.rotate(90 * self.state.rotation)
        t.scale(-s if self.state.flip_h else s, -s if self.state.flip_v else s)
        t.translate(-w / 2, -h / 2)
        return t

    def to_image(self, pos: QPointF) -> Point | None:
        inverse, ok = self.image_transform().inverted()
        if not ok:
            return None
        p = inverse.map(pos)
        return (p.y(), p.x())

    def to_widget(self, point: Point) -> QPointF:
        return self.image_transform().map(QPointF(point[1], point[0]))

    # -- rendering -------------------------------------------------------------------------

    def _refresh(self) -> None:
        self._render()
        self._changed()

    def _render(self) -> None:
        self._error = ""
        if self.handle is None or not self.count():
            self._shown = None
        else:
            try:
                arr = self.handle.render(self.state.index, self.state.window)
            except ImagingError as exc:
                self._shown = None
                self._error = user_message(exc)
                self.failed.emit(self._error)
            else:
                if self.state.invert:
                    arr = 255 - arr
                self._shown = ArrayImage(arr)

    def _changed(self) -> None:
        self.update()
        self.stateChanged.emit()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0))
        if self._shown is not None:
            painter.save()
            painter.setTransform(self.image_transform())
            if self.scale() != 1.0 and self.scale() < 3.0:
                # Interpolated when shrinking or moderately enlarging; from 3x up the
                # reader is looking at pixels, and sees them as squares.
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(0, 0, self._shown.display)
            painter.restore()
            self._paint_measurements(painter)
            self._paint_remote_pointer(painter)
            self._paint_corners(painter)
        else:
            painter.setPen(_TEXT_COLOUR)
            text = self._error or (self.tr("Loading…") if self.handle is not None else "")
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             text)
        painter.end()
        self.paint_count += 1
        self.painted.emit()

    def _paint_measurements(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        items = list(self.measurements.get(self.state.index, []))
        if self._pending is not None:
            items.append(self._pending)
        for item in items:
            points = [self.to_widget(p) for p in item.points]
            painter.setPen(QPen(QColor(0, 0, 0, 160), 3))
            for a, b in itertools.pairwise(points):
                painter.drawLine(a, b)
            painter.setPen(QPen(_MEASURE_COLOUR, 1.5))
            for a, b in itertools.pairwise(points):
                painter.drawLine(a, b)
            for p in points:
                painter.drawEllipse(p, 3, 3)
            if item.result is not None and points:
                anchor = points[1] if item.kind == ANGLE else points[-1]
                self._label(painter, anchor + QPointF(8, -8), self.measure_text(item.result),
                            _MEASURE_COLOUR)

    def set_remote_pointer(self, point: Point | None, who: str = "") -> None:
        """Co-viewing: the presenter's pointer (image pixels), drawn as a labelled ring."""
        new = (point, who) if point is not None else None
        if new != self.remote_pointer:
            self.remote_pointer = new
            self.update()

    def _paint_remote_pointer(self, painter: QPainter) -> None:
        if self.remote_pointer is None:
            return
        point, who = self.remote_pointer
        at = self.to_widget(point)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(0, 0, 0, 170), 4))
        painter.drawEllipse(at, 9, 9)
        painter.setPen(QPen(_POINTER_COLOUR, 2))
        painter.drawEllipse(at, 9, 9)
        painter.drawLine(at + QPointF(-14, 0), at + QPointF(-5, 0))
        painter.drawLine(at + QPointF(5, 0), at + QPointF(14, 0))
        if who:
            self._label(painter, at + QPointF(14, -12), who, _POINTER_COLOUR)

    def visible_region(self) -> tuple[Point, tuple[float, float]] | None:
        """Co-viewing: the part of the image shown, independent of this widget's size --
        the image point (row, col) at the centre of the view and the visible width and
        height in image pixels along the screen axes. None when fitting the whole image."""
        if self._shown is None or (self.state.zoom is None and self.state.pan.isNull()):
            return None
        focus = self.to_image(QPointF(self.width() / 2, self.height() / 2))
        if focus is None:
            return None
        s = self.scale()
        return focus, (self.width() / s, self.height() / s)

    def show_region(self, focus: Point, extent: tuple[float, float]) -> None:
        """Show at least the ``extent`` (image pixels, screen axes) around ``focus`` (image
        row, col) in the middle of this widget, whatever its size (no stateChanged: the
        caller announces the whole change)."""
        self.state.zoom = max(0.01, min(self.width() / max(extent[0], 1e-3),
                                        self.height() / max(extent[1], 1e-3), 100.0))
        self.state.pan = QPointF()
        at = self.to_widget(focus)
        self.state.pan = QPointF(self.width() / 2 - at.x(), self.height() / 2 - at.y())

    def apply_view(self, *, index: int, window: WindowLevel | None,
                   region: tuple[Point, tuple[float, float]] | None, rotation: int,
                   flip_h: bool, flip_v: bool, invert: bool) -> None:
        """Co-viewing: take a whole view state at once (one render, one stateChanged).
        ``region`` is another view's :meth:`visible_region` (None: fit)."""
        self.stop()
        count = self.count()
        self.state.index = max(0, min(index, count - 1)) if count else 0
        self.state.window = window
        self.state.rotation, self.state.flip_h, self.state.flip_v = rotation % 4, flip_h, flip_v
        self.state.invert = invert
        self._pending = None
        self._render()
        if region is None:
            self.state.zoom, self.state.pan = None, QPointF()
        else:
            self.show_region(*region)
        self.held_region = region
        self._changed()

    def measure_text(self, m: Measurement) -> str:
        if m.unit == "deg":
            text = fill(self.tr("%1°"), f"{m.value:.1f}")
        elif m.unit == "px":
            text = fill(self.tr("%1 px (no pixel spacing)"), f"{m.value:.1f}")
        else:
            text = fill(self.tr("%1 mm"), f"{m.value:.1f}")
            if not m.calibrated:
                text = fill(self.tr("%1 (at detector)"), text)
        return text

    def _label(self, painter: QPainter, at: QPointF, text: str, colour: QColor) -> None:
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor(0, 0, 0))
        for dx, dy in ((1, 1), (-1, -1), (1, -1), (-1, 1)):
            painter.drawText(at + QPointF(dx, dy), text)
        painter.setPen(colour)
        painter.drawText(at, text)

    def _paint_corners(self, painter: QPainter) -> None:
        fm = painter.fontMetrics()
        line = fm.height()
        wl = self.current_window()
        top_left = [fill(self.tr("Image %1 / %2"), str(self.state.index + 1), str(self.count()))]
        if wl is not None:
            top_left.append(fill(self.tr("W %1  L %2"), f"{wl.width:.0f}", f"{wl.center:.0f}"))
        top_left.append(fill(self.tr("Zoom %1%"), f"{self.scale() * 100:.0f}"))
        if self.state.invert:
            top_left.append(self.tr("Inverted"))
        if self.playing():
            top_left.append(fill(self.tr("Cine %1 fps"), str(self.cine_fps)))
        for n, text in enumerate(top_left):
            self._label(painter, QPointF(8, 8 + line * (n + 1) - fm.descent()), text,
                        _TEXT_COLOUR)
        if self.tool != NAVIGATE:
            tool = self.tr("Distance") if self.tool == DISTANCE else self.tr("Angle")
            text = fill(self.tr("Tool: %1"), tool)
            self._label(painter, QPointF(self.width() - fm.horizontalAdvance(text) - 8,
                                         8 + line - fm.descent()), text, _MEASURE_COLOUR)

    # -- mouse and keys --------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        pos = event.position()
        button = event.button()
        if button == Qt.MouseButton.LeftButton and self.tool != NAVIGATE and self._shown:
            self._measure_press(pos)
            return
        if button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton,
                      Qt.MouseButton.MiddleButton):
            self._drag_button = button
            self._drag_last = pos
            self._drag_start = pos
            self._window_at_drag = self.current_window()
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag_button is not None:
            delta = pos - self._drag_last
            self._drag_last = pos
            if self._drag_button == Qt.MouseButton.LeftButton:
                self.state.pan += delta
                self.held_region = None
                self._changed()
            else:
                total = pos - self._drag_start
                self.drag_window(total.x(), total.y(), self._window_at_drag)
        elif self._pending is not None and self.tool == DISTANCE and len(self._pending.points) == 2:
            point = self.to_image(pos)
            if point is not None:
                self._pending.points[1] = point
                self.update()
        self._probe(pos)
        if self._shown is not None:
            self.pointerMoved.emit(self.to_image(pos))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pending is not None and self.tool == DISTANCE and len(self._pending.points) == 2:
            point = self.to_image(event.position())
            if point is not None:
                self._pending.points[1] = point
            self._finish_measure()
        self._drag_button = None
        super().mouseReleaseEvent(event)

    def drag_window(self, dx: float, dy: float, start: WindowLevel | None = None) -> None:
        """Window by a drag of (dx, dy) screen pixels from the window ``start`` (the current
        one if None): right widens, down raises the level. The step per pixel scales with
        the starting width, so a 4000 HU range and a 100-value MR range both feel right."""
        wl = start or self.current_window()
        if wl is None:
            wl = WindowLevel(128, 256)
        sensitivity = max(1.0, wl.width / 256)
        width = max(1.0, wl.width + dx * sensitivity)
        center = wl.center + dy * sensitivity
        self.set_window(WindowLevel(center, width, "custom"))

    def _measure_press(self, pos: QPointF) -> None:
        point = self.to_image(pos)
        if point is None:
            return
        if self.tool == DISTANCE:
            self._pending = MeasureItem(DISTANCE, [point, point])
        else:
            if self._pending is None:
                self._pending = MeasureItem(ANGLE, [point])
            else:
                self._pending.points.append(point)
                if len(self._pending.points) == 3:
                    self._finish_measure()
        self.update()

    def add_measurement(self, kind: str, points: list[Point]) -> MeasureItem | None:
        """Measure between image points (row, col) on the current slice, as a click would."""
        self._pending = MeasureItem(kind, list(points))
        return self._finish_measure()

    def _finish_measure(self) -> MeasureItem | None:
        item, self._pending = self._pending, None
        if item is None or self.handle is None:
            return None
        try:
            if item.kind == DISTANCE:
                a, b = item.points
                if math.dist(a, b) < 1e-6:
                    self.update()
                    return None
                item.result = self.handle.distance(self.state.index, a, b)
            else:
                a, v, b = item.points
                item.result = self.handle.angle(self.state.index, a, v, b)
        except (ValueError, ImagingError):
            self.update()
            return None
        self.measurements.setdefault(self.state.index, []).append(item)
        self.measurementAdded.emit(item)
        self.update()
        return item

    def _probe(self, pos: QPointF) -> None:
        if self.handle is None or self._shown is None:
            return
        point = self.to_image(pos)
        if point is None:
            return
        row, col = math.floor(point[0]), math.floor(point[1])
        probe = self.handle.probe(self.state.index, row, col)
        if probe is None:
            self.probeChanged.emit("")
            return
        stored = ", ".join(f"{v:g}" for v in probe.stored)
        if probe.value is None:
            text = fill(self.tr("x %1  y %2  value %3"), str(col), str(row), stored)
        else:
            value = f"{probe.value:.0f} {probe.unit}".strip() if probe.unit == "HU" else (
                f"{probe.value:g} {probe.unit}".strip())
            text = fill(self.tr("x %1  y %2  stored %3  value %4"), str(col), str(row), stored,
                        value)
        self.probeChanged.emit(text)

    def hideEvent(self, event: QEvent) -> None:
        self.stop()  # locked or switched away: no cine behind the lock screen
        super().hideEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self.probeChanged.emit("")
        self.pointerMoved.emit(None)
        super().leaveEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if not steps:
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(1.15 ** steps, event.position())
        else:
            self.step(-1 if steps > 0 else 1)
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        moves = {
            Qt.Key.Key_Up: -1, Qt.Key.Key_Left: -1, Qt.Key.Key_Down: 1, Qt.Key.Key_Right: 1,
            Qt.Key.Key_PageUp: -10, Qt.Key.Key_PageDown: 10,
        }
        if key in moves:
            self.step(moves[key])
        elif key == Qt.Key.Key_Home:
            self.set_index(0)
        elif key == Qt.Key.Key_End:
            self.set_index(self.count() - 1)
        elif key == Qt.Key.Key_Escape and self._pending is not None:
            self._pending = None
            self.update()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:
        if self.held_region is not None and self._shown is not None:
            self.show_region(*self.held_region)  # still the same part of the image
        super().resizeEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(512, 512)


def image_rect(canvas: ImageCanvas) -> QRectF:
    """Where the image lies in the canvas (for tests and the overlay)."""
    w, h = canvas._image_size()
    return canvas.image_transform().mapRect(QRectF(0, 0, w, h))
