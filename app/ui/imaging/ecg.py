"""ECG traces on calibrated paper: 25 mm/s and 10 mm/mV, on a 1 mm / 5 mm grid.

A standard 12-lead recording (leads I, II, III, aVR, aVL, aVF, V1-V6) is laid out as the
usual 3 x 4 sheet -- four 2.5 s columns (I/II/III, aVR/aVL/aVF, V1-V3, V4-V6) -- with a lead
II rhythm strip over the full length underneath; any other waveform gets one row per channel.
Each row starts with a 1 mV calibration pulse. Millimetres are physical on screen: the
widget uses the screen's logical DPI (adjustable with :meth:`EcgView.set_zoom`).
"""

from __future__ import annotations

import itertools
import re

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from app.imaging.waveform import Channel, MultiplexGroup
from app.ui.i18n import fill

MM_PER_S = 25.0
MM_PER_MV = 10.0
ROW_MM = 30.0  # height of one lead row (3 mV)
MARGIN_MM = 8.0
_STANDARD = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_COLUMNS = (("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6"))
_PAPER = QColor(255, 250, 248)
_MINOR = QColor(246, 200, 200)
_MAJOR = QColor(226, 140, 140)
_TRACE = QColor(10, 10, 10)


def lead_name(label: str) -> str:
    """'Lead I (Einthoven)' -> 'I'; 'aVR' stays; unknown labels pass through."""
    text = re.sub(r"\(.*?\)", "", label).strip()
    text = re.sub(r"^lead\s+", "", text, flags=re.IGNORECASE).strip()
    for name in _STANDARD:
        if text.lower() == name.lower():
            return name
    return text or label


class EcgView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ecgView")
        self.group: MultiplexGroup | None = None
        self._zoom = 1.0
        self._rows: list[tuple[str, Channel, float, float]] = []  # name, channel, t0, t1
        self._layout_rows: list[list[tuple[str, Channel, float, float]]] = []
        self.duration_s = 0.0

    # -- data
    def set_group(self, group: MultiplexGroup | None) -> None:
        self.group = group
        self._layout_rows = self._plan(group) if group is not None else []
        self.updateGeometry()
        self.resize(self.sizeHint())
        self.update()

    def _plan(self, group: MultiplexGroup) -> list[list[tuple[str, Channel, float, float]]]:
        t = group.time_s
        start, end = (float(t[0]), float(t[-1])) if t.size else (0.0, 0.0)
        self.duration_s = end - start
        by_name = {lead_name(c.label): c for c in group.channels}
        if all(name in by_name for name in _STANDARD) and self.duration_s >= 4.0:
            span = min(10.0, self.duration_s)
            col_s = span / 4
            rows: list[list[tuple[str, Channel, float, float]]] = []
            for r in range(3):
                rows.append([(col[r], by_name[col[r]], start + c * col_s, start + (c + 1) * col_s)
                             for c, col in enumerate(_COLUMNS)])
            rows.append([("II", by_name["II"], start, start + span)])
            return rows
        return [[(lead_name(c.label), c, start, end)] for c in group.channels]

    def standard_layout(self) -> bool:
        return len(self._layout_rows) == 4 and len(self._layout_rows[0]) == 4

    # -- scale
    def px_per_mm(self) -> float:
        return self.logicalDpiX() / 25.4 * self._zoom

    def set_zoom(self, zoom: float) -> None:
        self._zoom = max(0.25, min(zoom, 8.0))
        self.resize(self.sizeHint())
        self.update()

    def paper_mm(self) -> tuple[float, float]:
        if not self._layout_rows:
            return 100.0, 40.0
        span = max(t1 - t0 for row in self._layout_rows for (_, _, t0, t1) in row[-1:])
        if self.standard_layout():
            span = self._layout_rows[-1][0][3] - self._layout_rows[-1][0][2]
        width = 2 * MARGIN_MM + 8 + span * MM_PER_S
        height = 2 * MARGIN_MM + len(self._layout_rows) * ROW_MM + 6
        return width, height

    def sizeHint(self) -> QSize:
        w, h = self.paper_mm()
        k = self.px_per_mm()
        return QSize(round(w * k), round(h * k))

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    # -- painting
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        k = self.px_per_mm()
        w_mm, h_mm = self.paper_mm()
        painter.fillRect(self.rect(), _PAPER)
        self._grid(painter, k, w_mm, h_mm)
        x0 = MARGIN_MM + 8  # after the calibration pulse
        for r, row in enumerate(self._layout_rows):
            baseline = MARGIN_MM + r * ROW_MM + ROW_MM / 2
            self._calibration(painter, k, MARGIN_MM + 1, baseline)
            for name, channel, t0, t1 in row:
                left = x0 + (t0 - row[0][2]) * MM_PER_S
                self._trace(painter, k, channel, t0, t1, left, baseline)
                painter.setPen(QColor(40, 40, 40))
                painter.drawText(QPointF((left + 1) * k, (baseline - ROW_MM / 2 + 4) * k), name)
                if left > x0:
                    painter.setPen(QPen(QColor(40, 40, 40), 1.2))
                    painter.drawLine(QPointF(left * k, (baseline - 3) * k),
                                     QPointF(left * k, (baseline + 3) * k))
        painter.setPen(QColor(40, 40, 40))
        label = self.group.label if self.group is not None else ""
        painter.drawText(QPointF(MARGIN_MM * k, (h_mm - 3) * k),
                         fill(self.tr("%1 mm/s   %2 mm/mV   %3 Hz   %4"), f"{MM_PER_S:g}",
                              f"{MM_PER_MV:g}",
                              f"{self.group.sampling_hz:g}" if self.group else "-", label))
        painter.end()

    def _grid(self, painter: QPainter, k: float, w_mm: float, h_mm: float) -> None:
        minor, major = QPen(_MINOR, 0), QPen(_MAJOR, 0)
        for n in range(int(w_mm) + 1):
            painter.setPen(major if n % 5 == 0 else minor)
            painter.drawLine(QPointF(n * k, 0), QPointF(n * k, h_mm * k))
        for n in range(int(h_mm) + 1):
            painter.setPen(major if n % 5 == 0 else minor)
            painter.drawLine(QPointF(0, n * k), QPointF(w_mm * k, n * k))

    def _calibration(self, painter: QPainter, k: float, x: float, baseline: float) -> None:
        """The 1 mV, 200 ms standardisation pulse (10 mm high, 5 mm wide)."""
        path = QPainterPath(QPointF(x * k, baseline * k))
        top = baseline - MM_PER_MV
        for px, py in ((x + 1, baseline), (x + 1, top), (x + 6, top), (x + 6, baseline),
                       (x + 7, baseline)):
            path.lineTo(px * k, py * k)
        painter.setPen(QPen(_TRACE, 1.2))
        painter.drawPath(path)

    def _trace(self, painter: QPainter, k: float, channel: Channel, t0: float, t1: float,
               left_mm: float, baseline_mm: float) -> None:
        assert self.group is not None
        t = self.group.time_s
        sel = (t >= t0) & (t <= t1)
        if not sel.any():
            return
        try:
            mv = channel.in_millivolts()[sel]
            pen = QPen(_TRACE, 1.1)
        except ValueError:
            # Not a voltage (or no sensitivity): scaled to the row and drawn dashed.
            raw = channel.values[sel]
            span = float(np.ptp(raw)) or 1.0
            mv = (raw - float(np.median(raw))) / span * 2.0
            pen = QPen(QColor(90, 90, 90), 1.0, Qt.PenStyle.DashLine)
        xs = (left_mm + (t[sel] - t0) * MM_PER_S) * k
        ys = (baseline_mm - np.clip(mv, -ROW_MM / MM_PER_MV, ROW_MM / MM_PER_MV) * MM_PER_MV) * k
        # At most ~2 points per device pixel: min/max per column keeps the spikes.
        columns = max(1, int((xs[-1] - xs[0]) * 2))
        if xs.size > columns * 2:
            edges = np.linspace(0, xs.size, columns + 1).astype(int)
            pts_x, pts_y = [], []
            for a, b in itertools.pairwise(edges):
                if b <= a:
                    continue
                seg = ys[a:b]
                lo, hi = int(seg.argmin()), int(seg.argmax())
                for i in sorted((lo, hi)):
                    pts_x.append(xs[a + i])
                    pts_y.append(seg[i])
            xs, ys = np.asarray(pts_x), np.asarray(pts_y)
        path = QPainterPath(QPointF(float(xs[0]), float(ys[0])))
        for x, y in zip(xs[1:], ys[1:], strict=True):
            path.lineTo(float(x), float(y))
        painter.setPen(pen)
        painter.drawPath(path)

    def trace_rect(self) -> QRectF:
        k = self.px_per_mm()
        w, h = self.paper_mm()
        return QRectF(0, 0, w * k, h * k)
