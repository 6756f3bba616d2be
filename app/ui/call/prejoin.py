"""Before a call: the pre-join preview (camera, microphone, start muted / camera off) and the
incoming-call prompt (accept / decline).

The preview runs the camera that would be sent (here the synthetic test pattern: this build has
no camera capture) through the same :class:`~app.ui.call.tiles.FrameFeed` as the call, so the
GUI thread only paints. Device lists show what exists on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.rtc import capture, playback
from app.ui.asyncbridge import TaskRunner
from app.ui.call.texts import network_text
from app.ui.call.tiles import LOCAL, FrameFeed, VideoSurface
from app.ui.i18n import fill


def camera_choices(extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """(key, label) of every camera this machine can send (OpenCV devices), then the test
    pattern; ``extra`` (key, label) sources come first (e.g. a demo's video file)."""
    translate = QCoreApplication.translate
    found = [d for d in capture.cameras() if d.key != capture.SYNTHETIC]
    choices = list(extra or [])
    for device in found:
        number = device.key.split(":", 1)[1]
        choices.append((device.key, fill(translate("CallView", "Camera %1"),
                                         str(int(number) + 1))))
    choices.append((capture.SYNTHETIC, translate("CallView", "Test pattern") if choices
                    else translate("CallView", "Test pattern (no camera capture on this "
                                               "machine)")))
    return choices


def microphone_choices() -> list[tuple[str, str]]:
    """(key, label) of every microphone PortAudio finds (its own name), then the tone."""
    translate = QCoreApplication.translate
    choices = [(d.key, d.label or d.key) for d in capture.microphones()
               if d.key != capture.TONE]
    choices.append((capture.TONE, translate("CallView", "Test tone") if choices
                    else translate("CallView", "Test tone (no microphone capture on this "
                                               "machine)")))
    return choices


def speaker_choices() -> list[tuple[str, str]]:
    """(key, label) of every output device PortAudio finds (its own name), after the system
    default; only "No speaker found" (key ``none``) when there is none."""
    translate = QCoreApplication.translate
    found = [(d.key, d.label or d.key) for d in playback.speakers()]
    if not found:
        return [(playback.NONE, translate("CallView", "No speaker found"))]
    return [(playback.DEFAULT, translate("CallView", "System default")), *found]


class PreJoinDialog(QDialog):
    """Preview and choices before joining; ``accepted`` means join."""

    def __init__(self, runner: TaskRunner, *, title: str = "",
                 network_test: Callable[[], Awaitable[Any]] | None = None,
                 extra_cameras: list[tuple[str, str]] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        translate = QCoreApplication.translate
        self.setObjectName("callPreJoin")
        self._network_test = network_test  # () -> NetworkReport (CallsService.network_test)
        self.network_report: Any = None
        self.setWindowTitle(translate("CallView", "Join video consult"))
        self.runner = runner
        self.feed = FrameFeed(runner, self)
        self.preview = VideoSurface(self)
        self.feed.frame_ready.connect(self._frame)
        self.camera = QComboBox(self)
        self.microphone = QComboBox(self)
        self.speaker = QComboBox(self)
        for combo, choices in ((self.camera, camera_choices(extra_cameras)),
                               (self.microphone, microphone_choices()),
                               (self.speaker, speaker_choices())):
            for key, label in choices:
                combo.addItem(label, key)
        self.test_sound_button = QPushButton(translate("CallView", "Test sound"), self)
        self.test_sound_button.setObjectName("callTestSound")
        self.test_sound_button.clicked.connect(self.play_test_sound)
        self.sound_status = QLabel(self)
        self.sound_status.setObjectName("callSoundStatus")
        self.sound_status.setProperty("role", "subtle")
        self.sound_status.hide()  # shown while it has something to say
        self.test_player: playback.AudioPlayer | None = None
        if self.speaker_key() == playback.NONE:
            self.speaker.setEnabled(False)
            self.test_sound_button.setEnabled(False)
        self.start_muted = QCheckBox(translate("CallView", "Join muted"), self)
        self.start_camera_off = QCheckBox(translate("CallView", "Join with camera off"), self)
        self.network = QLabel(self)
        self.network.setWordWrap(True)
        self.network.setText(translate(
            "CallView", "Calls are end-to-end encrypted and go direct where the network "
            "allows, else through the hospital's TURN relay."))
        buttons = QDialogButtonBox(self)
        self.join_button = buttons.addButton(translate("CallView", "Join"),
                                             QDialogButtonBox.ButtonRole.AcceptRole)
        self.join_button.setObjectName("callJoin")
        self.cancel_button = buttons.addButton(translate("CallView", "Cancel"),
                                               QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        _roomy(self.join_button)
        _roomy(self.cancel_button)
        form = QFormLayout()
        form.addRow(translate("CallView", "Camera"), self.camera)
        form.addRow(translate("CallView", "Microphone"), self.microphone)
        speaker_row = QHBoxLayout()
        speaker_row.addWidget(self.speaker, 1)
        speaker_row.addWidget(self.test_sound_button)
        form.addRow(translate("CallView", "Speaker"), speaker_row)
        form.addRow(self.sound_status)
        layout = QVBoxLayout(self)
        if title:
            heading = QLabel(fill(translate("CallView", "Video consult: %1"), title), self)
            heading.setProperty("role", "heading")
            layout.addWidget(heading)
        layout.addWidget(self.preview, 1)
        layout.addLayout(form)
        layout.addWidget(self.start_muted)
        layout.addWidget(self.start_camera_off)
        layout.addWidget(self.network)
        # The network test (docs/calls.md, "Pre-join network test"): run when shown.
        self.network_status = QLabel(self)
        self.network_status.setObjectName("callNetwork")
        self.network_status.setWordWrap(True)
        self.retest_button = QPushButton(translate("CallView", "Test again"), self)
        self.retest_button.setObjectName("callNetworkRetest")
        self.retest_button.clicked.connect(self.test_network)
        row = QHBoxLayout()
        row.addWidget(self.network_status, 1)
        row.addWidget(self.retest_button)
        self._network_task: asyncio.Future | None = None
        if network_test is not None:
            layout.addLayout(row)
        else:
            self.network_status.hide()
            self.retest_button.hide()
        layout.addWidget(buttons)
        self._track: Any = None
        self._pump: asyncio.Future | None = None
        self.finished.connect(lambda _code: self.stop_preview())
        self.finished.connect(lambda _code: self._stop_test_sound())
        self.camera.currentIndexChanged.connect(self._camera_changed)

    def devices(self) -> tuple[str, str]:
        """(camera key, microphone key) chosen (app.rtc.capture keys)."""
        return (self.camera.currentData() or capture.SYNTHETIC,
                self.microphone.currentData() or capture.TONE)

    def speaker_key(self) -> str:
        """The speaker chosen (an app.rtc.playback key; ``none`` when there is none)."""
        return self.speaker.currentData() or playback.NONE

    def play_test_sound(self) -> None:
        """A short tone through the chosen speaker (PortAudio plays it in its own thread)."""
        translate = QCoreApplication.translate
        self._stop_test_sound()
        player = playback.open_speaker(self.speaker_key())
        if player is None:
            self._sound_line(translate("CallView", "The speaker could not be opened."))
            return
        self.test_player = player
        player.push_pcm("test", playback.tone(0.6, rate=player.rate), player.rate)
        self._sound_line(translate("CallView", "Playing a test sound…"))
        QTimer.singleShot(900, self, self._stop_test_sound)

    def _stop_test_sound(self) -> None:
        if self.test_player is not None:
            self.test_player.close()
            self.test_player = None
            self._sound_line("")

    def _sound_line(self, text: str) -> None:
        self.sound_status.setText(text)
        self.sound_status.setVisible(bool(text))

    def _camera_changed(self, _index: int) -> None:
        if self._track is not None:  # previewing: show the newly chosen camera
            self.stop_preview()
            self.start_preview()

    def start_preview(self) -> None:
        if self._track is not None:
            return
        self._track = capture.open_camera(self.camera.currentData() or capture.SYNTHETIC)
        self._pump = self.runner.run_task(self._run(self._track), owner=self,
                                          on_error=lambda _m: None)

    async def _run(self, track: Any) -> None:
        skip = False
        while True:
            try:
                frame = await track.recv()
            except Exception:  # the track ended (aiortc's MediaStreamError): so does this
                return
            skip = not skip
            if skip and not self.start_camera_off.isChecked():
                self.feed(LOCAL, frame)  # 15 fps is enough for a preview

    def _frame(self, _key: object, image: QImage) -> None:
        self.preview.set_image(None if self.start_camera_off.isChecked() else image)

    def stop_preview(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None
        if self._track is not None:
            with contextlib.suppress(Exception):
                self._track.stop()
            self._track = None

    def test_network(self) -> None:
        if self._network_test is None or (self._network_task is not None
                                          and not self._network_task.done()):
            return
        self.network_report = None
        self.network_status.setText(network_text(None))
        self.network_status.setProperty("role", "subtle")
        self.network_status.style().polish(self.network_status)
        self.retest_button.setEnabled(False)
        self._network_task = self.runner.run_task(
            self._network_test(), owner=self, on_result=self._network_done,
            on_error=self._network_failed)

    def _network_done(self, report: Any) -> None:
        self.network_report = report
        self.network_status.setText(network_text(report))
        self.network_status.setProperty(
            "role", "error" if report.verdict in ("blocked", "direct_only") else "")
        self.network_status.style().polish(self.network_status)
        self.retest_button.setEnabled(True)

    def _network_failed(self, message: str) -> None:
        self.network_status.setText(message)
        self.retest_button.setEnabled(True)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.start_preview()
        if self.network_report is None and self._network_task is None:
            self.test_network()


class IncomingCallDialog(QDialog):
    """"<caller> is calling": Accept or Decline. Not modal: the call may ring out meanwhile."""

    def __init__(self, caller: str, parent: QWidget | None = None, *,
                 invited: bool = False) -> None:
        super().__init__(parent)
        translate = QCoreApplication.translate
        self.setObjectName("incomingCall")
        self.setWindowTitle(translate("CallView", "Incoming video consult"))
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint)
        text = (translate("CallView", "%1 invites you to join a video consult in progress. "
                          "You will wait until they let you in.") if invited
                else translate("CallView", "%1 is calling you to a video consult."))
        self.message = QLabel(fill(text, caller), self)
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(self)
        self.accept_button = buttons.addButton(translate("CallView", "Accept"),
                                               QDialogButtonBox.ButtonRole.AcceptRole)
        self.accept_button.setObjectName("acceptCall")
        self.decline_button = buttons.addButton(translate("CallView", "Decline"),
                                                QDialogButtonBox.ButtonRole.RejectRole)
        self.decline_button.setObjectName("declineCall")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        _roomy(self.accept_button)
        _roomy(self.decline_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(buttons)


def _roomy(button) -> None:
    """Room for the default button's bold text (it is measured before the style bolds it)."""
    button.setMinimumWidth(button.sizeHint().width() + 28)
