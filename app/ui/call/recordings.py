"""Recordings of a consult's calls: the list of those shared in the room and a simple player
(docs/calls.md, "Recording").

The player decodes one participant's Matroska segment with PyAV straight from memory (the
recording was decrypted into memory by :meth:`RecordingService.load`): no plaintext file is
ever written. Video frames are shown at their own timestamps; the slider seeks through the
reader's keyframe index (decoding from the keyframe before the position, at most ~4 s of
video, however long the recording). Sound plays through the speaker (app.rtc.playback) in
sync with the picture: while playing, one clock (the position at Play or at a seek, plus the
time since) decides both which frame is shown and how far the sound is fed --
``AUDIO_LEAD_MS`` ahead, so that the speaker's small buffer holds about that much and each
sample is heard when the clock reaches it. The sound is decoded from the clock's position
as it is fed (SegmentReader.sound_from: a seek in the demuxer, then one 20 ms frame at a
time), never whole: what is decoded ahead of the clock stays under ``AUDIO_LEAD_MS`` plus
one frame, however long the recording. A seek drops what the speaker still buffers and
restarts both from the new position. A damaged or truncated segment shows a clear message
in the player instead of the picture or the sound it cannot decode.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
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

from app.core.errors import SafeConsultError
from app.rtc import playback
from app.rtc.recorder import SegmentReader
from app.ui.i18n import fill

VIDEO_SIZE = (480, 360)
AUDIO_LEAD_MS = 60  # sound fed this far ahead of the clock (the speaker's buffer)
SOUND = "recording"  # the player's one source in the speaker


def _tr(text: str) -> str:
    return QCoreApplication.translate("RecordingPlayer", text)


def _clock(ms: int) -> str:
    seconds = max(0, ms) // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


class _Sound:
    """A segment's sound from a position, decoded as it is taken: ``until(ms)`` gives the
    samples from where the last call stopped up to ``ms`` (sample ``ms * rate // 1000``).
    Held between calls: at most the rest of one decoded frame."""

    def __init__(self, reader: SegmentReader, from_ms: int) -> None:
        self._pieces = reader.sound_from(from_ms)
        self.rate = 0
        self._next = -1  # index of the next sample to hand out (known with the rate)
        self._from_ms = from_ms
        self._held: list[np.ndarray] = []
        self.held_samples = 0
        self.ended = False

    def _pull(self) -> bool:
        piece = next(self._pieces, None)
        if piece is None:
            self.ended = True
            return False
        rate, pcm = piece
        if not self.rate:
            self.rate, self._next = rate, self._from_ms * rate // 1000
        self._held.append(pcm)
        self.held_samples += len(pcm)
        return True

    def until(self, ms: int) -> np.ndarray:
        """Raises SegmentUnreadable where the sound is damaged."""
        if not self.rate and not self._pull():
            return np.zeros(0, np.int16)
        wanted = ms * self.rate // 1000 - self._next
        while self.held_samples < wanted and self._pull():
            pass
        if wanted <= 0 or not self._held:
            return np.zeros(0, np.int16)
        held = np.concatenate(self._held) if len(self._held) > 1 else self._held[0]
        out, rest = held[:wanted], held[wanted:]
        self._held = [rest] if len(rest) else []
        self.held_samples = len(rest)
        self._next += len(out)
        return out


class _Decoder:
    """Video frames of one in-memory segment as ``(ms, QImage)``, in order, and its sound
    from a position (:class:`_Sound`). Raises SegmentUnreadable (a SafeConsultError) for a
    segment PyAV cannot read."""

    def __init__(self, segment: bytes) -> None:
        self._reader = SegmentReader(segment)
        self.duration_ms = self._reader.duration_ms
        self.has_sound = self._reader.has_sound
        self._frames: Iterator[tuple[int, QImage]] | None = None

    def sound(self, from_ms: int) -> _Sound:
        return _Sound(self._reader, from_ms)

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
                 parent: QWidget | None = None, *, speaker: str = playback.DEFAULT) -> None:
        super().__init__(parent)
        self.setObjectName("recordingPlayer")
        self._segments = segments
        self._decoder: _Decoder | None = None
        self.position_ms = 0
        self.current_image: QImage | None = None
        self.speaker_key = speaker  # app.rtc.playback key; none found: played silently
        self.speaker: playback.AudioPlayer | None = None  # open while playing
        self._anchor = (0.0, 0)  # (monotonic s, position ms) the clock runs from
        self._fed_ms = 0  # sound handed to the speaker up to here
        self._sound: _Sound | None = None  # decoding from the clock's position while playing
        self.error: str | None = None  # what could not be played, as shown
        self._next: tuple[int, QImage] | None = None  # the frame after the shown one
        self._ended = False
        self._timer = QTimer(self)
        self._timer.setInterval(20)
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
        self.error_label = QLabel()
        self.error_label.setObjectName("recordingError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()

        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.time_label)
        layout = QVBoxLayout(self)
        layout.addWidget(self.who)
        layout.addWidget(self.video, 1)
        layout.addWidget(self.error_label)
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
        self._stop()
        self._show_error(None)
        self._decoder = None
        self.video.clear()
        self.current_image = None
        if party is not None:
            try:
                self._decoder = _Decoder(self._segments[party])
            except SafeConsultError:
                self._show_error(_tr("This participant's part of the recording cannot be "
                                     "played: it is damaged or incomplete."))
        self.slider.setRange(0, self.duration_ms)
        self.play_button.setEnabled(self._decoder is not None)  # nothing to play otherwise
        self.slider.setEnabled(self._decoder is not None)
        self.seek(0)

    def _show_error(self, text: str | None) -> None:
        self.error = text
        self.error_label.setText(text or "")
        self.error_label.setVisible(bool(text))

    def _video_failed(self) -> None:
        """The picture cannot be decoded on from here: stop, say so (no crash)."""
        self._ended = True
        self._stop()
        self._show_error(_tr("The picture cannot be played on from here: this part of the "
                             "recording is damaged or incomplete."))

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
        if self._decoder is None:
            return
        try:
            self._show(self._decoder.seek(ms))
        except SafeConsultError:
            self._video_failed()
            return
        self._next, self._ended = None, False
        if self.playing:  # the clock and the sound restart from the frame shown
            self._restart_clock(self.position_ms)

    def toggle(self) -> None:
        if self.playing:
            self._stop()
        elif self._decoder is not None:
            if self.position_ms >= self.duration_ms:
                self.seek(0)
            self.speaker = playback.open_speaker(self.speaker_key)
            self._restart_clock(self.position_ms)
            self._timer.start()
            self.play_button.setText(_tr("Pause"))

    def _restart_clock(self, ms: int) -> None:
        self._anchor = (time.monotonic(), ms)
        self._fed_ms = ms
        self._sound = None  # the decoding from the old position goes
        if self.speaker is not None:
            self.speaker.remove(SOUND)  # what it still buffers belongs to the old position
            if self._decoder is not None and self._decoder.has_sound:
                self._sound = self._decoder.sound(ms)
            self._feed(ms)

    def clock_ms(self) -> int:
        """Where playback is now: the position at Play / the last seek plus the time since."""
        started, ms = self._anchor
        return ms + int((time.monotonic() - started) * 1000)

    def _feed(self, now_ms: int) -> None:
        """Hand the speaker the sound up to ``AUDIO_LEAD_MS`` past the clock, decoded now
        (from the position the clock restarted at, on from where the last feed stopped)."""
        if self.speaker is None or self._sound is None:
            return
        until = now_ms + AUDIO_LEAD_MS
        if until <= self._fed_ms:
            return
        try:
            pcm = self._sound.until(until)
        except SafeConsultError:  # damaged sound: the picture plays on, silent
            self._sound = None
            self.speaker.remove(SOUND)
            self._show_error(_tr("The sound cannot be played on from here: this part of the "
                                 "recording is damaged or incomplete. The picture plays "
                                 "without it."))
            return
        if len(pcm):
            self.speaker.push_pcm(SOUND, pcm, self._sound.rate)
        self._fed_ms = until

    def sound_ahead_ms(self) -> float:
        """Sound decoded but not yet heard: what was fed past the clock plus what the
        decoder holds (the bound that keeps memory flat, whatever the recording's length)."""
        if self._sound is None or not self._sound.rate:
            return 0.0
        return (max(0, self._fed_ms - self.clock_ms())
                + self._sound.held_samples * 1000 / self._sound.rate)

    def _tick(self) -> None:
        if self._decoder is None:
            return
        now = self.clock_ms()
        self._feed(now)
        shown: tuple[int, QImage] | None = None
        while not self._ended:  # every frame due by now; the newest of them is shown
            if self._next is None:
                try:
                    self._next = self._decoder.next()
                except SafeConsultError:
                    self._video_failed()
                    return
                if self._next is None:
                    self._ended = True
                    break
            if self._next[0] > now:
                break
            shown, self._next = self._next, None
        if shown is not None:
            self._show(shown)
        if self._ended and now >= self.duration_ms:
            self._stop()

    def _stop(self) -> None:
        self._timer.stop()
        self._sound = None
        self.play_button.setText(_tr("Play"))
        if self.speaker is not None:
            self.speaker.close()
            self.speaker = None

    def hideEvent(self, event) -> None:  # closed or hidden: no sound goes on playing
        self._stop()
        super().hideEvent(event)


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
