"""The call window: a tile per participant (2-4, a mesh of links), controls, share preview.

Frames: the calls service hands decoded frames to a :class:`~app.ui.call.tiles.FrameFeed`,
which converts them in a worker thread; this window only paints the images it is given.
A timer (2 Hz) reads each link's state and media statistics to update the state lines, the
connection quality (remote frame rate), and the active speaker (loudest remote audio).

Locking hides the window and its PHI-tagged video (app/ui/main_window.py hides every PHI
widget and every other window); the call itself goes on, audio included (docs/calls.md).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QImage
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.rtc.signing import Party
from app.ui.asyncbridge import TaskRunner
from app.ui.call.consent import ConsentDialog, indicator_text
from app.ui.call.texts import drop_text, peer_line, quality
from app.ui.call.tiles import LOCAL, FrameFeed, VideoTile
from app.ui.call.waiting import InviteButton, WaitingRoomPanel
from app.ui.i18n import fill
from app.ui.observe import observe

SPEAKING_LEVEL = 0.01  # RMS above which a participant counts as speaking
LEVEL_FRESH_S = 1.0


class CallWindow(QWidget):
    """One call, our side. ``calls`` is the CallsService, ``call`` its ``app.rtc`` Call."""

    left = Signal(str)  # call id, once hung up

    def __init__(self, *, calls: Any, call: Any, runner: TaskRunner, feed: FrameFeed,
                 name_of: Callable[[str], str], state: Any = None,
                 share_window: QWidget | None = None,
                 share_factory: Callable[..., Any] | None = None,
                 recording: Any = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        translate = QCoreApplication.translate
        self.setObjectName("callWindow")
        self.setWindowTitle(translate("CallView", "Video consult"))
        self.calls = calls
        self.call = call
        self.call_id: str = call.call_id
        self.runner = runner
        self.feed = feed
        self.name_of = name_of
        self.app_state = state
        self.share_window = share_window
        self._share_factory = share_factory
        self.share: Any = None
        self.tiles: dict[Any, VideoTile] = {}
        self._frames_seen: dict[Party, tuple[float, int]] = {}
        self.dropped: set[Party] = set()  # removed by this device: no tile any more
        self.ended = False

        self.heading = QLabel(self)
        self.heading.setObjectName("callHeading")
        self.heading.setProperty("role", "heading")
        self.code = QLabel(self)
        self.code.setObjectName("callCode")
        self.code.setWordWrap(True)
        self.recording = QLabel(self)  # the recording indicator (docs/calls.md, "Recording")
        self.recording.setObjectName("callRecording")
        self.recording.hide()
        self.grid = QGridLayout()
        self.grid.setSpacing(8)
        grid_holder = QWidget(self)
        grid_holder.setLayout(self.grid)

        self.mute_button = QPushButton(translate("CallView", "Mute"), self)
        self.mute_button.setObjectName("callMute")
        self.mute_button.setCheckable(True)
        self.mute_button.toggled.connect(self.set_muted)
        # Sound out (docs/calls.md, "Sound output"): silence the others on this device only.
        self.sound_button = QPushButton(translate("CallView", "Sound off"), self)
        self.sound_button.setObjectName("callSound")
        self.sound_button.setCheckable(True)
        self.sound_button.toggled.connect(lambda off: self.set_sound(not off))
        self.sound_button.setVisible(call.call_id in getattr(calls, "players", {}))
        self.camera_button = QPushButton(translate("CallView", "Camera off"), self)
        self.camera_button.setObjectName("callCamera")
        self.camera_button.setCheckable(True)
        self.camera_button.toggled.connect(lambda off: self.set_camera(not off))
        self.share_button = QPushButton(translate("CallView", "Share screen"), self)
        self.share_button.setObjectName("callShare")
        self.share_button.setCheckable(True)
        self.share_button.toggled.connect(self.set_sharing)
        self.recording_service = recording
        self.record_button = QPushButton(translate("CallView", "Record"), self)
        self.record_button.setObjectName("callRecord")
        self.record_button.clicked.connect(self.toggle_recording)
        self.record_button.setVisible(recording is not None)
        self.consent: ConsentDialog | None = None
        # The host's waiting room and invitations (docs/calls.md, "Waiting room").
        self.is_host = getattr(call, "host", None) == calls.local
        self.waiting = WaitingRoomPanel(name_of, self)
        self.waiting.admit.connect(self.admit)
        self.waiting.deny.connect(self.deny)
        self.invite_button = InviteButton(self._invite_candidates, self)
        self.invite_button.invite.connect(self.invite)
        self.invite_button.setVisible(self.is_host)
        self.leave_button = QPushButton(translate("CallView", "Leave"), self)
        self.leave_button.setObjectName("callLeave")
        self.leave_button.setProperty("role", "danger")
        self.leave_button.clicked.connect(self.leave)
        controls = QHBoxLayout()
        controls.addStretch(1)
        for button in (self.mute_button, self.sound_button, self.camera_button,
                       self.share_button,
                       self.record_button, self.invite_button, self.leave_button):
            controls.addWidget(button)
        controls.addStretch(1)
        self.message = QLabel(self)
        self.message.setObjectName("callMessage")
        self.message.setProperty("role", "error")
        self.message.setWordWrap(True)
        self.message.hide()

        main = QWidget(self)
        column = QVBoxLayout(main)
        column.addWidget(self.heading)
        column.addWidget(self.code)
        column.addWidget(self.recording)
        column.addWidget(self.message)
        column.addWidget(self.waiting)
        column.addWidget(grid_holder, 1)
        column.addLayout(controls)
        self.split = QSplitter(self)
        self.split.addWidget(main)
        self.share_panel = QWidget(self)
        self.share_panel.setObjectName("callSharePanel")
        QVBoxLayout(self.share_panel).setContentsMargins(0, 0, 0, 0)
        self.split.addWidget(self.share_panel)
        self.share_panel.hide()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.addWidget(self.split)

        self._add_tile(LOCAL, translate("CallView", "You"))
        self.feed.frame_ready.connect(self._frame)
        self._preview = call.camera_preview()
        self._pump = runner.run_task(self._pump_preview(self._preview), owner=self,
                                     on_error=lambda _m: None)
        observe(calls.waiting_changed, self._waiting_changed, self)  # only ours when host
        if hasattr(calls, "host_changed"):
            observe(calls.host_changed, self._host_changed, self)
        if hasattr(calls, "dropped"):
            observe(calls.dropped, self._dropped, self)
        if recording is not None:
            observe(recording.changed, self._recording_changed, self)
            observe(recording.consent_requested, self._consent_requested, self)
        self.timer = QTimer(self)
        self.timer.setInterval(500)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.resize(1000, 680)
        self.refresh()

    # -- tiles -----------------------------------------------------------------------------

    def _add_tile(self, key: Any, name: str) -> VideoTile:
        tile = VideoTile(name, self)
        self.tiles[key] = tile
        count = len(self.tiles)
        columns = 1 if count == 1 else 2
        index = count - 1
        self.grid.addWidget(tile, index // columns, index % columns)
        return tile

    def tile_for(self, peer: Party) -> VideoTile:
        tile = self.tiles.get(peer)
        if tile is None:
            tile = self._add_tile(peer, self.name_of(peer.user_id))
        return tile

    def _frame(self, key: object, image: QImage) -> None:
        if self.ended:
            return
        if key == LOCAL:
            self.tiles[LOCAL].video.set_image(image if self.call.camera_on else None)
        elif isinstance(key, Party) and key in self.call.links and key not in self.dropped:
            self.tile_for(key).video.set_image(image)

    async def _pump_preview(self, track: Any) -> None:
        skip = False
        while True:
            try:
                frame = await track.recv()
            except Exception:  # the track ended (aiortc's MediaStreamError): so does this
                return
            skip = not skip
            if skip:  # our own picture at 15 fps
                self.feed(LOCAL, frame)

    # -- state -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """State lines, quality, active speaker, the code; on the timer and on events."""
        translate = QCoreApplication.translate
        now = time.monotonic()
        links = dict(self.call.links)
        loudest, loudest_level = None, SPEAKING_LEVEL
        codes = []
        for peer, link in links.items():
            if peer in self.dropped:
                continue
            tile = self.tile_for(peer)
            stats = link.stats
            seen_at, seen = self._frames_seen.get(peer, (now, stats.video_frames))
            elapsed = now - seen_at
            fps = (stats.video_frames - seen) / elapsed if elapsed > 0.2 else 30.0
            if elapsed >= 1.0 or peer not in self._frames_seen:
                self._frames_seen[peer] = (now, stats.video_frames)
            state = link.state.value
            tile.set_state(peer_line(state, verified=self._verified(peer),
                                     route=link.route(), level=quality(fps), code=link.code))
            if link.code and state == "connected":
                codes.append(link.code)
            fresh = stats.audio_level_at is not None and now - stats.audio_level_at < LEVEL_FRESH_S
            if state == "connected" and fresh and stats.audio_level > loudest_level:
                loudest, loudest_level = peer, stats.audio_level
        for key, tile in self.tiles.items():
            tile.set_speaking(key == loudest)
        self.active_speaker = loudest
        others = sum(1 for link in links.values()  # those who left keep a tile, uncounted
                     if link.state.value not in ("closed", "refused"))
        self.heading.setText(fill(translate("CallView", "Video consult · %1 participants"),
                                  str(others + 1)))
        if len(codes) == 1:
            self.code.setText(fill(translate(
                "CallView", "Verification code %1 — read it aloud; the others must see the "
                "same."), codes[0]))
        elif codes:
            self.code.setText(translate("CallView", "Each participant's verification code is "
                                        "under their picture: compare it aloud."))
        else:
            self.code.setText("")
        self.tiles[LOCAL].set_state(self._local_line())

    def _verified(self, peer: Party) -> bool:
        try:
            return bool(self.calls.verified(peer))
        except Exception:  # signed out under us (the cache closed): say nothing more
            return False

    def _local_line(self) -> str:
        translate = QCoreApplication.translate
        parts = [translate("CallView", "Muted") if self.call.muted
                 else translate("CallView", "Microphone on"),
                 translate("CallView", "Camera on") if self.call.camera_on
                 else translate("CallView", "Camera off")]
        if self.call.sharing:
            parts.append(translate("CallView", "Sharing your screen"))
        return " · ".join(parts)

    def show_message(self, text: str) -> None:
        self.message.setProperty("role", "error")
        self.message.style().polish(self.message)
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def on_event(self, event: Any) -> None:
        """A CallsService event for this call (connected, refused, rebuilding, ended...)."""
        if event.call_id != self.call_id or self.ended:
            return
        if event.what == "ended":
            tile = self.tiles.get(event.peer)
            if tile is not None:
                tile.video.clear()
        self.refresh()
        gone = all(link.state.value in ("closed", "refused") for link in self.call.links.values())
        if self.call_id not in self.calls.calls or (event.what in ("ended", "refused", "lost")
                                                    and gone):
            self._finish()  # nobody left: the service hangs up the call

    # -- controls --------------------------------------------------------------------------

    def set_muted(self, muted: bool) -> None:
        self.call.set_muted(muted)
        if self.mute_button.isChecked() != muted:
            self.mute_button.setChecked(muted)
        self.mute_button.setText(QCoreApplication.translate("CallView", "Unmute") if muted
                                 else QCoreApplication.translate("CallView", "Mute"))
        self.refresh()

    def set_sound(self, on: bool) -> None:
        """The others' audio on this device's speaker on or off (they are still received)."""
        self.calls.set_remote_muted(self.call.call_id, not on)
        if self.sound_button.isChecked() == on:
            self.sound_button.setChecked(not on)
        self.sound_button.setText(QCoreApplication.translate("CallView", "Sound off") if on
                                  else QCoreApplication.translate("CallView", "Sound on"))

    def set_camera(self, on: bool) -> None:
        self.call.set_camera(on)
        if self.camera_button.isChecked() == on:
            self.camera_button.setChecked(not on)
        self.camera_button.setText(QCoreApplication.translate("CallView", "Camera off") if on
                                   else QCoreApplication.translate("CallView", "Camera on"))
        if not on:
            self.tiles[LOCAL].video.clear()
        self.refresh()

    def set_sharing(self, sharing: bool) -> None:
        translate = QCoreApplication.translate
        if sharing and self.share is None:
            if self.share_window is None or self._share_factory is None:
                self.share_button.setChecked(False)
                return
            try:
                share = self._share_factory(self.share_window, state=self.app_state)
                share.start()
                share.share_in(self.calls, self.call_id)
            except Exception as exc:
                from app.ui.asyncbridge import user_message

                self.share_button.setChecked(False)
                self.show_message(user_message(exc))
                return
            self.share = share
            if share.preview is not None:
                self.share_panel.layout().addWidget(share.preview)
                self.share_panel.show()
            self.share_button.setText(translate("CallView", "Stop sharing"))
        elif not sharing and self.share is not None:
            self._stop_share()
        self.refresh()

    def _stop_share(self) -> None:
        share, self.share = self.share, None
        if share is None:
            return
        with contextlib.suppress(Exception):
            share.stop()
        if share.preview is not None:
            share.preview.setParent(None)
            share.preview.deleteLater()
        self.share_panel.hide()
        self.share_button.setText(QCoreApplication.translate("CallView", "Share screen"))
        if self.share_button.isChecked():
            self.share_button.setChecked(False)

    # -- waiting room (host) ---------------------------------------------------------------

    def _host_changed(self, call_id: str) -> None:
        """The host left and another device hosts the call now (docs/calls.md, "Host
        hand-over"): if it is ours, the waiting room and Invite… are ours."""
        if call_id != self.call_id:
            return
        self.is_host = self.call.host == self.calls.local
        self.invite_button.setVisible(self.is_host)
        if self.is_host:
            self.show_notice(QCoreApplication.translate(
                "CallView", "The host left. You host this call now: you admit who joins."))

    def _dropped(self, drop: Any) -> None:
        """This device removed a participant whose device it no longer trusts or who left the
        consult (docs/calls.md): its tile goes, and the user is told why. Our own removal
        from the consult: the call ends."""
        if drop.call_id != self.call_id or self.ended:
            return
        self.show_notice(drop_text(drop.reason))
        if drop.peer == self.calls.local:
            self._finish()  # the service hangs up; the controller tells the user why
            return
        self.dropped.add(drop.peer)
        tile = self.tiles.pop(drop.peer, None)
        if tile is not None:
            tile.video.clear()
            self.grid.removeWidget(tile)
            tile.hide()
            tile.deleteLater()
            self._relayout()
        self.refresh()

    def _relayout(self) -> None:
        columns = 1 if len(self.tiles) == 1 else 2
        for tile in self.tiles.values():
            self.grid.removeWidget(tile)
        for index, tile in enumerate(self.tiles.values()):
            self.grid.addWidget(tile, index // columns, index % columns)

    def _waiting_changed(self, call_id: str) -> None:
        if call_id == self.call_id and not self.ended:
            self.waiting.set_waiting([w.party for w in self.calls.waiting_for(self.call_id)])

    def admit(self, party: Party) -> None:
        self.runner.run_task(self.calls.admit(self.call_id, party), owner=self,
                             on_error=self.show_message)

    def deny(self, party: Party) -> None:
        self.runner.run_task(self.calls.deny(self.call_id, party), owner=self,
                             on_error=self.show_message)

    def _invite_candidates(self) -> list[tuple[str, str]]:
        room_id = self.calls.rooms.get(self.call_id)
        if room_id is None:
            return []
        inside = {p.user_id for p, link in self.call.links.items()
                  if link.state.value not in ("closed", "refused")}
        inside.add(self.calls.local.user_id)
        return [(u, self.name_of(u)) for u in self.calls.chat.members(room_id)
                if u not in inside]

    def invite(self, user_id: str) -> None:
        translate = QCoreApplication.translate
        name = self.name_of(user_id)
        self.runner.run_task(
            self.calls.invite(self.call_id, user_id), owner=self,
            on_result=lambda _n: self.show_notice(fill(translate(
                "CallView", "%1 was invited. Admit them when they are waiting."), name)),
            on_error=self.show_message)

    def show_notice(self, text: str) -> None:
        self.message.setProperty("role", "subtle")
        self.message.style().polish(self.message)
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # -- recording -------------------------------------------------------------------------

    def recording_state(self) -> str:
        status = (self.recording_service.status.get(self.call_id)
                  if self.recording_service is not None else None)
        return status.state.value if status is not None else ""

    def toggle_recording(self) -> None:
        service = self.recording_service
        if service is None:
            return
        if self.recording_state() == "recording":
            self.runner.run_task(service.stop(self.call_id), owner=self,
                                 on_error=self.show_message)
        elif self.recording_state() != "asking":
            self.show_message("")
            self.runner.run_task(service.record(self.call_id), owner=self,
                                 on_error=self.show_message)

    def _recording_changed(self, status: Any) -> None:
        if status.call_id != self.call_id:
            return
        state = status.state.value
        text = indicator_text(state)
        self.recording.setText(text)
        self.recording.setVisible(bool(text))
        self.recording.setProperty("role", "error" if state == "recording" else "subtle")
        self.recording.style().polish(self.recording)
        translate = QCoreApplication.translate
        host = status.host == self.calls.local
        self.record_button.setText(translate("CallView", "Stop recording")
                                   if state == "recording" and host
                                   else translate("CallView", "Record"))
        # Only the host stops what it records; the others see the indicator.
        self.record_button.setEnabled(host or state not in ("asking", "recording"))
        if state != "asking" and self.consent is not None:
            self.consent.done(QDialog.DialogCode.Rejected)  # decided without this answer

    def _consent_requested(self, request: Any) -> None:
        if request.call_id != self.call_id or self.ended:
            return
        dialog = ConsentDialog(self.name_of(request.host.user_id), request, self)
        self.consent = dialog
        answered = [False]

        def answer(agreed: bool) -> None:
            if not answered[0]:
                answered[0] = True
                self.recording_service.answer(request, agreed)

        dialog.accepted.connect(lambda: answer(True))
        dialog.rejected.connect(lambda: answer(False))
        dialog.finished.connect(lambda _c: setattr(self, "consent", None))
        dialog.open()

    def leave(self) -> None:
        """Hang up (the others' links end; a two-party call ends)."""
        if self.ended:
            return
        self._stop_share()
        self.runner.run_task(self.calls.hangup(self.call_id), owner=self.runner,
                             on_error=lambda _m: None)
        self._finish()

    def _finish(self) -> None:
        if self.ended:
            return
        self.ended = True
        self._stop_share()
        self.timer.stop()
        if self._pump is not None:
            self._pump.cancel()
        with contextlib.suppress(Exception):
            self._preview.stop()
        for tile in self.tiles.values():
            tile.video.clear()
        self.left.emit(self.call_id)
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.ended:
            self.leave()
        super().closeEvent(event)
