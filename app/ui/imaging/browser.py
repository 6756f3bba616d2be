"""Study/series browser: one card per study (patient name, MRN, study date, description) with
its series below (thumbnail, modality, series description, image count).

Every patient value is a :class:`PhiLabel`, and thumbnails sit in PHI-tagged labels: auto-lock
and screen-share redaction hide them through the one PHI tag.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core.phi import Phi
from app.services.imaging import SeriesHandle
from app.ui.i18n import fill
from app.ui.imaging.qimage import ArrayImage
from app.ui.phi import PhiLabel, mark_phi

THUMB = 72


def person_name(value: Phi[str]) -> Phi[str]:
    """DICOM PN ("FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX") as people write it: "FAMILY, GIVEN
    MIDDLE"; other groups (ideographic, phonetic after "=") are kept after the first."""
    text = value.reveal()
    first, _, rest = text.partition("=")
    parts = [p.strip() for p in first.split("^")]
    family, given = parts[0], " ".join(p for p in parts[1:3] if p)
    shown = f"{family}, {given}" if family and given else (family or given)
    if rest.strip("="):
        shown = f"{shown} ({rest.replace('^', ' ').replace('=', ' ').strip()})".strip()
    return Phi(shown or text)


def _date(value: str) -> str:
    """DICOM DA (YYYYMMDD) as YYYY-MM-DD; anything else as given."""
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


class SeriesCard(QFrame):
    clicked = Signal(object)  # SeriesHandle
    doubleClicked = Signal(object)

    def __init__(self, handle: SeriesHandle, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("seriesCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.handle = handle
        info = handle.info
        self.thumbnail = QLabel()
        mark_phi(self.thumbnail)
        self.thumbnail.setFixedSize(THUMB, THUMB)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumbnail.setStyleSheet("background: black; color: #bbb;")
        self.thumbnail.setText("…" if not handle.is_waveform else self.tr("ECG"))
        self.modality = QLabel(info.modality or "?")
        self.modality.setObjectName("seriesModality")
        font = self.modality.font()
        font.setBold(True)
        self.modality.setFont(font)
        self.description = PhiLabel(info.description)
        self.description.setObjectName("seriesDescription")
        self.description.setWordWrap(True)
        count = len(handle) if not handle.is_waveform else 1
        self.count = QLabel(fill(self.tr("%1 image(s)"), str(count)) if not handle.is_waveform
                            else self.tr("Waveform"))
        self.count.setProperty("role", "subtle")
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 6, 6, 6)
        grid.addWidget(self.thumbnail, 0, 0, 3, 1)
        grid.addWidget(self.modality, 0, 1)
        grid.addWidget(self.description, 1, 1)
        grid.addWidget(self.count, 2, 1)
        grid.setColumnStretch(1, 1)
        self._image: ArrayImage | None = None
        self.set_selected(False)

    def set_thumbnail(self, pixels: np.ndarray | None) -> None:
        if pixels is None and self.handle.is_waveform:
            return  # keeps "ECG"
        if pixels is None:
            self.thumbnail.setText(self.tr("No preview"))
            return
        self._image = ArrayImage(pixels)
        pixmap = QPixmap.fromImage(self._image.image).scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation)
        self.thumbnail.setPixmap(pixmap)

    def set_selected(self, selected: bool) -> None:
        self.setProperty("selected", selected)
        self.setStyleSheet("#seriesCard { border: 2px solid %s; border-radius: 4px; }"
                           % ("#2d7ff9" if selected else "transparent"))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.handle)
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.doubleClicked.emit(self.handle)
        super().mouseDoubleClickEvent(event)


class StudyHeader(QFrame):
    def __init__(self, handle: SeriesHandle, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("studyHeader")
        study = handle.info.study
        self.patient_name = PhiLabel(person_name(study.patient.name))
        self.patient_name.setObjectName("patientName")
        font = self.patient_name.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.patient_name.setFont(font)
        self.mrn_caption = QLabel(self.tr("MRN"))
        self.mrn = PhiLabel(study.patient.patient_id)
        self.mrn.setObjectName("patientMrn")
        self.date_caption = QLabel(self.tr("Study date"))
        self.study_date = PhiLabel(Phi(_date(study.study_date.reveal())))
        self.study_date.setObjectName("studyDate")
        self.description = PhiLabel(study.description)
        self.description.setObjectName("studyDescription")
        self.description.setWordWrap(True)
        for caption in (self.mrn_caption, self.date_caption):
            caption.setProperty("role", "subtle")
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 8, 6, 4)
        grid.addWidget(self.patient_name, 0, 0, 1, 2)
        grid.addWidget(self.mrn_caption, 1, 0)
        grid.addWidget(self.mrn, 1, 1)
        grid.addWidget(self.date_caption, 2, 0)
        grid.addWidget(self.study_date, 2, 1)
        grid.addWidget(self.description, 3, 0, 1, 2)
        grid.setColumnStretch(1, 1)


class SeriesBrowser(QScrollArea):
    seriesChosen = Signal(object)  # SeriesHandle (click)
    seriesOpenBeside = Signal(object)  # SeriesHandle (double click: the other pane)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("seriesBrowser")
        self.setWidgetResizable(True)
        self.setMinimumWidth(230)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._body = QWidget()
        self._column = QVBoxLayout(self._body)
        self._column.setContentsMargins(4, 4, 4, 4)
        self._column.setSpacing(4)
        self._column.addStretch(1)
        self.setWidget(self._body)
        self.cards: list[SeriesCard] = []
        self.headers: list[StudyHeader] = []

    def clear(self) -> None:
        for widget in [*self.cards, *self.headers]:
            self._column.removeWidget(widget)
            widget.deleteLater()
        self.cards, self.headers = [], []

    def set_series(self, handles: list[SeriesHandle]) -> None:
        self.clear()
        last_study: str | None = None
        position = 0
        for handle in handles:
            study_key = handle.info.study.study_uid or str(id(handle))
            if study_key != last_study:
                header = StudyHeader(handle)
                self.headers.append(header)
                self._column.insertWidget(position, header)
                position += 1
                last_study = study_key
            card = SeriesCard(handle)
            card.clicked.connect(self._chosen)
            card.doubleClicked.connect(self.seriesOpenBeside)
            self.cards.append(card)
            self._column.insertWidget(position, card)
            position += 1

    def card_for(self, handle: SeriesHandle) -> SeriesCard | None:
        return next((c for c in self.cards if c.handle is handle), None)

    def select(self, handle: SeriesHandle | None) -> None:
        for card in self.cards:
            card.set_selected(card.handle is handle)

    def _chosen(self, handle: SeriesHandle) -> None:
        self.select(handle)
        self.seriesChosen.emit(handle)
