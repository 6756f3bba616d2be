"""Calls for one signed-in session: start a call from a consult room (pre-join preview first),
ring on an incoming one (accept / decline), open the call window.

An incoming call while the session is locked waits for the unlock (no prompt over the lock
screen, no joining without the password); if it rings out meanwhile it is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QWidget

from app.ui.asyncbridge import TaskRunner
from app.ui.call.prejoin import IncomingCallDialog, PreJoinDialog
from app.ui.call.texts import drop_text
from app.ui.call.tiles import FrameFeed
from app.ui.call.view import CallWindow
from app.ui.call.waiting import JoinWaitDialog
from app.ui.observe import observe


def default_share(window: QWidget, *, state: Any = None) -> Any:
    from app.ui.screenshare.share import ScreenShare

    return ScreenShare(window, state=state, fps=5)


class CallController(QObject):
    window_opened = Signal(object)  # CallWindow
    prompt_shown = Signal(object)  # IncomingCallDialog
    wait_shown = Signal(object)  # JoinWaitDialog

    def __init__(self, calls: Any, *, runner: TaskRunner, feed: FrameFeed,
                 name_of: Callable[[str], str], state: Any = None,
                 share_window: QWidget | None = None,
                 share_factory: Callable[..., Any] = default_share,
                 recording: Any = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.calls = calls
        self.runner = runner
        self.feed = feed
        self.name_of = name_of
        self.app_state = state
        self.share_window = share_window
        self.share_factory = share_factory
        self.recording = recording  # RecordingService (None: no Record button)
        self.windows: dict[str, CallWindow] = {}
        self.prompts: dict[str, IncomingCallDialog] = {}
        self._waiting: list[Any] = []  # incoming calls that rang while locked
        self.last_error = ""
        self.prejoin: PreJoinDialog | None = None  # the latest pre-join dialog
        # Joining a running call: call id -> the dialog and the pre-join choices.
        self.waits: dict[str, tuple[JoinWaitDialog, bool, bool]] = {}
        self.extra_cameras: list[tuple[str, str]] = []  # (key, label): e.g. a demo video file
        observe(calls.incoming, self._on_incoming, self)
        observe(calls.join_changed, self._join_changed, self)
        observe(calls.event, self._on_event, self)
        if hasattr(calls, "dropped"):
            observe(calls.dropped, self._dropped, self)
        if state is not None:
            observe(state.events.locked, self._locked_changed, self)

    def _locked(self) -> bool:
        return self.app_state is not None and bool(self.app_state.locked)

    # -- placing ---------------------------------------------------------------------------

    def prepare_call(self, room_id: str, title: str = "",
                     parent: QWidget | None = None) -> PreJoinDialog:
        """The pre-join preview; joining places the call to every trusted device in the room."""
        return self._open_prejoin(title, parent, lambda muted, camera: self.place_call(
            room_id, muted=muted, camera=camera))

    def _open_prejoin(self, title: str, parent: QWidget | None,
                      then: Callable[[bool, bool], object]) -> PreJoinDialog:
        """The pre-join preview; on *Join* the chosen devices, then ``then(muted, camera)``."""
        dialog = PreJoinDialog(self.runner, title=title, parent=parent,
                               network_test=self._network_test(),
                               extra_cameras=self.extra_cameras)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._use_devices(dialog))
        dialog.accepted.connect(lambda: then(dialog.start_muted.isChecked(),
                                             not dialog.start_camera_off.isChecked()))
        dialog.open()
        self.prejoin = dialog
        return dialog

    def _use_devices(self, dialog: PreJoinDialog) -> None:
        use = getattr(self.calls, "use_devices", None)
        if callable(use):
            use(*dialog.devices(), speaker=dialog.speaker_key())

    def _network_test(self) -> Any:
        test = getattr(self.calls, "network_test", None)
        return test if callable(test) else None

    def running_call(self, room_id: str) -> Any:
        """The call another device announced in ``room_id`` that we are not in, or None."""
        active = self.calls.active.get(room_id)
        if active is None or active.call_id in self.calls.calls or (
                active.host == self.calls.local):
            return None
        return active

    def prepare_join(self, room_id: str, title: str = "",
                     parent: QWidget | None = None) -> PreJoinDialog:
        """The pre-join preview for the call running in the room; *Join* asks its host."""
        return self._open_prejoin(title, parent, lambda muted, camera: self.join(
            room_id, muted=muted, camera=camera))

    def join(self, room_id: str, *, muted: bool = False, camera: bool = True) -> None:
        self.runner.run_task(self.calls.join(room_id), owner=self,
                             on_result=lambda request: self._show_wait(request, muted, camera),
                             on_error=self._error)

    def _show_wait(self, request: Any, muted: bool, camera: bool) -> JoinWaitDialog:
        dialog = self.waits[request.call_id][0] if request.call_id in self.waits else None
        if dialog is None:
            dialog = JoinWaitDialog(self.name_of(request.host.user_id))
            call_id = request.call_id
            dialog.cancel_requested.connect(lambda: self.runner.run_task(
                self.calls.cancel_join(call_id), owner=self, on_error=self._error))
            dialog.finished.connect(lambda _c: self.waits.pop(call_id, None))
            self.waits[call_id] = (dialog, muted, camera)
            dialog.show()
            self.wait_shown.emit(dialog)
        dialog.set_state(request.state)
        return dialog

    def _join_changed(self, request: Any) -> None:
        entry = self.waits.get(request.call_id)
        if entry is None:
            return
        dialog, muted, camera = entry
        dialog.host_name = self.name_of(request.host.user_id)  # the host may have changed
        dialog.set_state(request.state)
        if request.state == "admitted" and request.call is not None:
            self.waits.pop(request.call_id, None)
            dialog.accept()
            self._opened(request.call, muted, camera)

    def place_call(self, room_id: str, *, muted: bool = False, camera: bool = True) -> None:
        self.runner.run_task(self.calls.place_call(room_id), owner=self,
                             on_result=lambda call: self._opened(call, muted, camera),
                             on_error=self._error)

    # -- ringing ---------------------------------------------------------------------------

    def _on_incoming(self, incoming: Any) -> None:
        if self._locked():
            self._waiting.append(incoming)
            return
        self._prompt(incoming)

    def _locked_changed(self, locked: bool) -> None:
        if locked:
            return
        waiting, self._waiting = self._waiting, []
        for incoming in waiting:
            if incoming.call_id in self.calls.pending:
                self._prompt(incoming)

    def _prompt(self, incoming: Any) -> IncomingCallDialog:
        invited = bool(getattr(incoming, "invited", False))
        dialog = IncomingCallDialog(self.name_of(incoming.caller.user_id), invited=invited)
        self.prompts[incoming.call_id] = dialog
        call_id = incoming.call_id
        if invited:  # accepting knocks: the host then lets us in
            dialog.accepted.connect(lambda: self.accept_invite(call_id))
            dialog.rejected.connect(lambda: self.calls.pending.pop(call_id, None))
        else:
            dialog.accepted.connect(lambda: self.accept(call_id))
            dialog.rejected.connect(lambda: self.decline(call_id))
        dialog.finished.connect(lambda _c: self.prompts.pop(call_id, None))
        dialog.show()
        self.prompt_shown.emit(dialog)
        return dialog

    def accept(self, call_id: str, *, muted: bool = False, camera: bool = True) -> None:
        self.runner.run_task(self.calls.accept(call_id), owner=self,
                             on_result=lambda call: self._opened(call, muted, camera),
                             on_error=self._error)

    def accept_invite(self, call_id: str) -> None:
        self.runner.run_task(self.calls.accept_invite(call_id), owner=self,
                             on_result=lambda request: self._show_wait(request, False, True),
                             on_error=self._error)

    def decline(self, call_id: str) -> None:
        self.runner.run_task(self.calls.reject(call_id), owner=self, on_error=self._error)

    # -- the window ------------------------------------------------------------------------

    def _opened(self, call: Any, muted: bool, camera: bool) -> CallWindow:
        owner = self.parent()
        # A window of its own, but owned by the session's view: it goes with the sign-in.
        window = CallWindow(calls=self.calls, call=call, runner=self.runner, feed=self.feed,
                            name_of=self.name_of, state=self.app_state,
                            share_window=self.share_window, share_factory=self.share_factory,
                            recording=self.recording,
                            parent=owner if isinstance(owner, QWidget) else None)
        self.windows[call.call_id] = window
        window.left.connect(lambda call_id: self.windows.pop(call_id, None))
        if muted:
            window.set_muted(True)
        if not camera:
            window.set_camera(False)
        if not self._locked():
            window.show()
        self.window_opened.emit(window)
        return window

    def _on_event(self, event: Any) -> None:
        window = self.windows.get(event.call_id)
        if window is not None:
            window.on_event(event)

    def _dropped(self, drop: Any) -> None:
        """We are no longer a member of the call's consult: the call ended (its window
        closes), and the user is told why where errors are shown."""
        if drop.peer == self.calls.local:
            self._error(drop_text(drop.reason))

    def _error(self, message: str) -> None:
        self.last_error = message
        self.runner.errorReported.emit(message)
