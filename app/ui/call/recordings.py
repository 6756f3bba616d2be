"""Recordings of a consult's calls: the list of those shared in the room and a simple player
(docs/calls.md, "Recording").

The player decodes one participant's Matroska segment with PyAV straight from memory (the
recording was decrypted into memory by :meth:`RecordingService.load`): no plaintext file is
ever written. Video frames are shown at their own timestamps; the slider seeks through the
reader's keyframe index (decoding from the keyframe before the position, at most ~4 s of
video, however long the recording). Sound is decoded (SegmentReader.audio) but not played:
this build has no audio output library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.rtc.recorder import SegmentReader
from app.ui.i18n import fill

VIDEO_SIZE = (480, 360)


def _tr(text: str) -> str:
    return QCoreApplication.translate("RecordingPlayer", text)


def _clock(ms: int) -> str:
    seconds = max(0, ms) // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


class _Decoder:
    """Video frames of one in-memory segment as ``(ms, QImage)``, in order."""

    def __init__(self, segment: bytes) -> None:
        self._reader = SegmentReader(segment)
        self.duration_ms = self._reader.duration_ms
        self._frames: Iterator[tuple[int, QImage]] | None = None

    def _iterate(self, from_ms: int = 0) -> Iterator[tuple[int, QImage]]:
        for ms, rgb in self._reader.frames(from_ms):
            height, width = rgb.shape[:2]
            image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
            yield ms, image.copy()  # own the pixels: the array goes away

    def restart(self, from_ms: int = 0) -> None:
        self._frames = self._iterate(from_ms)

    def next(self) -> tuple[int, QImage] | None:
        if self._frames is None:
            self.restart()
        assert self._frames is not None
        return next(self._frames, None)

    def seek(self, ms: int) -> tuple[int, QImage] | None:
        """The first frame at or after ``ms`` (the last one if ``ms`` is past the end),
        decoded from the keyframe before it (SegmentReader's index)."""
        self.restart(ms)
        return self.next()


class RecordingPlayer(QWidget):
    """Plays a loaded recording: ``segments`` maps a participant (``Party``) to its
    Matroska segment, ``names`` gives each one's shown name."""

    def __init__(self, segments: dict[Any, bytes], names: dict[Any, str] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recordingPlayer")
        self._segments = segments
        self._decoder: _Decoder | None = None
        self.position_ms = 0
        self.current_image: QImage | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(33)
        self._timer.timeout.connect(self._tick)

        self.who = QComboBox()
        for party in segments:
            self.who.addItem((names or {}).get(party, getattr(party, "user_id", str(party))),
                             party)
        self.who.currentIndexChanged.connect(self._choose)
        self.video = QLabel()
        self.video.setObjectName("recordingVideo")
        self.video.setMinimumSize(*VIDEO_SIZE)
        self.video.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.video.setStyleSheet("background: black;")
        self.play_button = QPushButton(_tr("Play"))
        self.play_button.clicked.connect(self.toggle)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("recordingPosition")
        self.slider.sliderMoved.connect(self.seek)
        self.time_label = QLabel()

        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.time_label)
        layout = QVBoxLayout(self)
        layout.addWidget(self.who)
        layout.addWidget(self.video, 1)
        layout.addLayout(controls)
        layout.addWidget(QLabel(_tr("Played from memory; nothing is written to disk.")))
        self._choose()

    @property
    def duration_ms(self) -> int:
        return self._decoder.duration_ms if self._decoder is not None else 0

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def _choose(self, *_: object) -> None:
        party = self.who.currentData()
        self._timer.stop()
        self._decoder = _Decoder(self._segments[party]) if party is not None else None
        self.slider.setRange(0, self.duration_ms)
        self.seek(0)

    def _show(self, item: tuple[int, QImage] | None) -> None:
        if item is None:
            return
        self.position_ms, image = item
        self.current_image = image  # the frame as decoded, before scaling to the label
        self.video.setPixmap(QPixmap.fromImage(image).scaled(
            self.video.size(), Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))
        self.slider.blockSignals(True)
        self.slider.setValue(self.position_ms)
        self.slider.blockSignals(False)
        self.time_label.setText(fill(_tr("%1 / %2"), _clock(self.position_ms),
                                     _clock(self.duration_ms)))

    def seek(self, ms: int) -> None:
        if self._decoder is not None:
            self._show(self._decoder.seek(ms))

    def toggle(self) -> None:
        if self.playing:
            self._timer.stop()
            self.play_button.setText(_tr("Play"))
        else:
            if self.position_ms >= self.duration_ms and self._decoder is not None:
                self._decoder.restart()
            self._timer.start()
            self.play_button.setText(_tr("Pause"))

    def _tick(self) -> None:
        item = self._decoder.next() if self._decoder is not None else None
        if item is None:
            self._timer.stop()
            self.play_button.setText(_tr("Play"))
            return
        self._show(item)


class RecordingsPanel(QWidget):
    """The recordings shared in a room (``RecordingService.available``): opening one
    fetches, verifies and loads it (through ``runner``) and shows a player."""

    def __init__(self, service: Any, runner: Any, room_id: str, *,
                 name_of: Callable[[str], str] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recordingsPanel")
        self.name_of = name_of or (lambda user_id: user_id)
        self.service, self.runner, self.room_id = service, runner, room_id
        self.player: RecordingPlayer | None = None
        self.list = QListWidget()
        self.open_button = QPushButton(_tr("Open recording"))
        self.open_button.clicked.connect(self.open_selected)
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(_tr("Recordings of this consult")))
        layout.addWidget(self.list)
        layout.addWidget(self.open_button)
        layout.addWidget(self.status)
        service.shared.connect(lambda _shared: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        for rid, shared in sorted(self.service.available.items(),
                                  key=lambda kv: kv[1].started_ms):
            if shared.room_id != self.room_id:
                continue
            item = QListWidgetItem(fill(_tr("Recording by %1 · %2"), self.name_of(shared.sender),
                                        _clock(shared.duration_ms)))
            item.setData(Qt.ItemDataRole.UserRole, rid)
            self.list.addItem(item)
        if self.list.count() and self.list.currentRow() < 0:
            self.list.setCurrentRow(0)

    def open_selected(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        rid = item.data(Qt.ItemDataRole.UserRole)
        self.status.setText(_tr("Downloading and verifying…"))

        async def fetch_and_load() -> tuple[dict[str, Any], dict[Any, bytes]]:
            await self.service.fetch(rid)
            return self.service.load(rid)

        self.runner.run_task(fetch_and_load(), owner=self, on_result=self._opened,
                             on_error=self.status.setText)

    def _opened(self, loaded: tuple[dict[str, Any], dict[Any, bytes]]) -> None:
        _metadata, segments = loaded
        self.status.setText(_tr("Verified: every participant's signed consent is inside."))
        if self.player is not None:
            self.player.deleteLater()
        names = {party: self.name_of(party.user_id) for party in segments}
        self.player = RecordingPlayer(segments, names, parent=self)
        self.layout().addWidget(self.player)


def add_recordings_button(view: Any, service: Any, runner: Any, *,
                          name_of: Callable[[str], str]) -> QPushButton:
    """"Recordings" in the chat view's room header: the current room's recordings in a
    small window (a panel per opening; closing it drops the decrypted media)."""
    button = QPushButton(_tr("Recordings"))
    button.setObjectName("roomRecordings")

    def show() -> None:
        room_id = view.current_room
        if room_id is None:
            return
        dialog = QDialog(view.window())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.setWindowTitle(_tr("Recordings of this consult"))
        layout = QVBoxLayout(dialog)
        layout.addWidget(RecordingsPanel(service, runner, room_id, name_of=name_of,
                                         parent=dialog))
        dialog.resize(560, 640)
        dialog.show()
        view.recordings_dialog = dialog  # tests and diagnostics

    button.clicked.connect(show)
    header = view.room_header
    header.insertWidget(header.indexOf(view.members_button), button)
    view.recordings_button = button
    return button
