"""One viewer pane: a header naming the series, the canvas (or ECG paper), and the
watermark overlay on top of both.

The overlay is a sibling laid over the canvas (not a child of it), so that the PHI walk finds
it on its own: it shows the patient ID, and hides on lock like every PHI widget.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.phi import Phi
from app.imaging.waveform import MultiplexGroup
from app.services.imaging import ImagingService, SeriesHandle, ViewerIdentity, WatermarkFields
from app.ui.i18n import fill
from app.ui.imaging.browser import person_name
from app.ui.imaging.canvas import ImageCanvas
from app.ui.imaging.ecg import EcgView
from app.ui.phi import PhiLabel, mark_phi


class WatermarkOverlay(QWidget):
    """The on-screen watermark: who is viewing, on which device, when, and whose images
    (patient ID). A band along the bottom plus the same text tiled faintly across the view,
    so a photo or a cropped screenshot still shows where it came from."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        mark_phi(self)
        self.setObjectName("watermark")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.fields: WatermarkFields | None = None
        self._tile: QImage | None = None
        self._tile_key: tuple | None = None

    def set_fields(self, fields: WatermarkFields | None) -> None:
        self.fields = fields
        self.update()

    def lines(self) -> list[str]:
        if self.fields is None:
            return []
        f = self.fields
        pid = f.patient_id.reveal()
        lines = [fill(self.tr("Viewed by %1 on %2"), f.user, f.device), f.time_text()]
        if pid:
            lines.append(fill(self.tr("Patient ID %1"), pid))
        return lines

    def paintEvent(self, event: QPaintEvent) -> None:
        lines = self.lines()
        if not lines:
            return
        painter = QPainter(self)
        painter.drawImage(0, 0, self._tile_image("  ·  ".join(lines)))
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        self._band(painter, lines)
        painter.end()

    def _tile_image(self, text: str) -> QImage:
        """The tiled layer, drawn once per size and text (a minute tick or a resize) and
        then blitted: repainting it on every slice change would cost far more than a frame."""
        ratio = self.devicePixelRatioF()
        key = (self.width(), self.height(), ratio, text)
        if self._tile_key == key and self._tile is not None:
            return self._tile
        image = QImage(max(1, round(self.width() * ratio)), max(1, round(self.height() * ratio)),
                       QImage.Format.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(ratio)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        font = QFont(self.font())
        font.setPointSizeF(max(9.0, font.pointSizeF()))
        font.setBold(True)
        painter.setFont(font)
        metrics = QFontMetricsF(font)
        step_x = metrics.horizontalAdvance(text) + 140
        step_y = metrics.height() * 8
        painter.translate(self.width() / 2, self.height() / 2)
        painter.rotate(-30)
        reach = (self.width() + self.height()) / 2 + step_x
        shadow, light = QColor(0, 0, 0, 70), QColor(255, 255, 255, 56)
        row = 0
        y = -reach
        while y < reach:
            x = -reach - (row % 2) * step_x / 2
            while x < reach:
                painter.setPen(shadow)
                painter.drawText(QPointF(x + 1, y + 1), text)
                painter.setPen(light)
                painter.drawText(QPointF(x, y), text)
                x += step_x
            y += step_y
            row += 1
        painter.end()
        self._tile, self._tile_key = image, key
        return image

    def _band(self, painter: QPainter, lines: list[str]) -> None:
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        metrics = QFontMetricsF(font)
        pad = 6.0
        width = max(metrics.horizontalAdvance(line) for line in lines) + 2 * pad
        height = metrics.height() * len(lines) + 2 * pad
        rect = QRectF(self.width() - width - 8, self.height() - height - 8, width, height)
        painter.fillRect(rect, QColor(0, 0, 0, 150))
        painter.setPen(QColor(255, 255, 255, 235))
        for n, line in enumerate(lines):
            painter.drawText(QPointF(rect.left() + pad,
                                     rect.top() + pad + metrics.ascent() + n * metrics.height()),
                             line)

    def band_rect(self) -> QRectF:
        lines = self.lines()
        font = QFont(self.font())
        font.setBold(True)
        metrics = QFontMetricsF(font)
        if not lines:
            return QRectF()
        width = max(metrics.horizontalAdvance(line) for line in lines) + 12
        height = metrics.height() * len(lines) + 12
        return QRectF(self.width() - width - 8, self.height() - height - 8, width, height)


class ViewerPane(QFrame):
    """Canvas or ECG paper for one series, with its header and its watermark."""

    activated = Signal(object)  # this pane, when the reader clicks into it

    def __init__(self, service: ImagingService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("viewerPane")
        self.setFrameShape(QFrame.Shape.Box)
        self.setLineWidth(2)
        self._service = service
        self.identity = ViewerIdentity("", "")
        self.handle: SeriesHandle | None = None
        self.waveform: list[MultiplexGroup] = []

        self.patient = PhiLabel()
        self.patient.setObjectName("panePatient")
        self.series_label = PhiLabel()
        self.series_label.setObjectName("paneSeries")
        self.series_label.setProperty("role", "subtle")
        header = QHBoxLayout()
        header.setContentsMargins(6, 2, 6, 2)
        header.setSpacing(12)
        header.addWidget(self.patient)
        header.addWidget(self.series_label, 1)

        self.canvas = ImageCanvas()
        self.ecg = EcgView()
        self.ecg_groups = QComboBox()
        self.ecg_groups.setObjectName("ecgGroups")
        self.ecg_groups.currentIndexChanged.connect(self._pick_group)
        ecg_page = QWidget()
        mark_phi(ecg_page)  # the traces are patient data
        ecg_column = QVBoxLayout(ecg_page)
        ecg_column.setContentsMargins(0, 0, 0, 0)
        ecg_column.addWidget(self.ecg_groups)
        self.ecg_scroll = QScrollArea()
        self.ecg_scroll.setWidget(self.ecg)
        self.ecg_scroll.setWidgetResizable(False)
        ecg_column.addWidget(self.ecg_scroll, 1)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.canvas)
        self.pages.addWidget(ecg_page)
        self.watermark = WatermarkOverlay()

        stage = QWidget()
        grid = QGridLayout(stage)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.pages, 0, 0)
        grid.addWidget(self.watermark, 0, 0)
        self.watermark.raise_()

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addLayout(header)
        column.addWidget(stage, 1)

        self._clock = QTimer(self)
        self._clock.timeout.connect(self.refresh_watermark)
        self._clock.start(30_000)
        self.canvas.installEventFilter(self)
        self.ecg_scroll.viewport().installEventFilter(self)
        self.set_active(False)

    def set_identity(self, identity: ViewerIdentity) -> None:
        self.identity = identity
        self.refresh_watermark()

    def refresh_watermark(self) -> None:
        self.watermark.set_fields(self._service.watermark(self.identity, self.handle)
                                  if self.handle is not None else None)

    def show_series(self, handle: SeriesHandle | None, index: int = 0, *,
                    keep_view: bool = False, waveform: list[MultiplexGroup] | None = None
                    ) -> None:
        self.handle = handle
        if handle is not None and handle.is_waveform:
            self.canvas.set_series(None)
            self.waveform = waveform or []
            self.ecg_groups.blockSignals(True)
            self.ecg_groups.clear()
            for group in self.waveform:
                self.ecg_groups.addItem(group.label)
            self.ecg_groups.blockSignals(False)
            self.ecg_groups.setVisible(len(self.waveform) > 1)
            self.ecg.set_group(self.waveform[0] if self.waveform else None)
            self.pages.setCurrentIndex(1)
        else:
            self.waveform = []
            self.ecg.set_group(None)
            self.pages.setCurrentIndex(0)
            self.canvas.set_series(handle, index, keep_view=keep_view)
        self._describe()
        self.refresh_watermark()

    def _pick_group(self, n: int) -> None:
        if 0 <= n < len(self.waveform):
            self.ecg.set_group(self.waveform[n])

    def _describe(self) -> None:
        if self.handle is None:
            self.patient.setValue(None)
            self.series_label.setValue(None)
            return
        info = self.handle.info
        self.patient.setValue(person_name(info.study.patient.name))
        number = "" if info.series_number is None else f"#{info.series_number} "
        self.series_label.setValue(Phi(
            f"{info.modality} {number}{info.description.reveal()}".strip()))

    def set_active(self, active: bool) -> None:
        self.setProperty("active", active)
        palette_colour = "#2d7ff9" if active else "transparent"
        self.setStyleSheet(f"#viewerPane {{ border: 2px solid {palette_colour}; }}")

    def eventFilter(self, watched, event):  # type: ignore[no-untyped-def]
        if event.type() in (QEvent.Type.MouseButtonPress, QEvent.Type.FocusIn):
            self.activated.emit(self)
        return False
