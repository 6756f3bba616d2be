"""Auto-lock in the GUI: input anywhere in the app feeds the auto-lock machine
(app.core.autolock); one timer wakes it at its next deadline; its transitions become the
warning countdown (``AppState.lock_seconds_left``) and the lock itself.

* :class:`ActivityFilter` is installed on the QApplication, so it sees the mouse, keyboard,
  wheel, touch and tablet input of every window of the app (dialogs and viewers included).
  Only spontaneous events count -- input from the window system, not events the program sends
  itself -- so a repaint, a timer or a synthetic event never keeps a session open.
* :class:`LockController` owns one :class:`~app.core.autolock.AutoLock` per signed-in session.
  Input only records the time (cheap, it runs on every mouse move); the timer is not re-armed
  on input: when it fires, the machine catches up with the clock and the timer is set to the
  new deadline. During the warning it fires once a second for the countdown.
* On ``LOCKED`` it calls ``lock`` (the window's :meth:`MainWindow.lock_now`) at once, in the
  same call stack as the machine's decision: PHI is hidden before control returns to Qt.

The clock counts time in system suspend where the OS allows it (``CLOCK_BOOTTIME`` on Linux,
``CLOCK_MONOTONIC`` on macOS, ``time.monotonic`` on Windows, which includes sleep there). A
suspended laptop that wakes past the deadline locks at the first tick or input -- and at once
where the suspend signal is wired (app/ui/os_lock.py).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer

from app.core.autolock import AutoLock, LockConfig, LockState, Transition
from app.services.app_state import AppState, SignedInUser
from app.ui.observe import observe

_T = QEvent.Type
INPUT_EVENTS = frozenset({
    _T.MouseButtonPress, _T.MouseButtonRelease, _T.MouseButtonDblClick, _T.MouseMove,
    _T.KeyPress, _T.KeyRelease, _T.Wheel, _T.TouchBegin, _T.TouchUpdate, _T.TouchEnd,
    _T.TabletPress, _T.TabletMove, _T.TabletRelease, _T.NativeGesture,
})
# The same input event is offered to the filter once per object it propagates through; the
# machine needs to hear of it only now and then.
INPUT_RESOLUTION_S = 0.1


def default_clock() -> Callable[[], float]:
    """Seconds that keep counting while the machine is suspended, where the OS has such a
    clock (Linux: CLOCK_BOOTTIME; macOS: CLOCK_MONOTONIC, which Apple documents as counting
    sleep -- unlike time.monotonic there, which is mach_absolute_time); else
    time.monotonic (on Windows it counts sleep)."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None and sys.platform == "darwin":
        boottime = getattr(time, "CLOCK_MONOTONIC", None)
    if boottime is not None:
        try:
            time.clock_gettime(boottime)
        except OSError:
            return time.monotonic
        return lambda: time.clock_gettime(boottime)
    return time.monotonic


class ActivityFilter(QObject):
    """App-wide input watcher: calls ``on_input()`` for user input in any window."""

    def __init__(self, on_input: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._on_input = on_input

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in INPUT_EVENTS and event.spontaneous():
            self._on_input()
        return False  # observe only, never swallow


class LockController(QObject):
    """Runs the auto-lock machine for the signed-in session shown by ``state``.

    ``config`` is asked at each sign-in (policy and the user's settings may differ between
    sessions); ``lock`` is called when the machine decides to lock; ``clock`` is injected for
    tests. The controller follows ``state``: a session starts the machine, ``state.locked``
    set elsewhere (the service's offline guard, the unlock) keeps the machine in step.
    """

    def __init__(
        self, app: QObject, state: AppState, config: Callable[[], LockConfig],
        lock: Callable[[], None], *, clock: Callable[[], float] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._app = app
        self._state = state
        self._config = config
        self._lock = lock
        self._clock = clock or default_clock()
        self.machine: AutoLock | None = None
        self._last_forwarded = -math.inf
        self.last_transition: Transition | None = None
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        # Precise: a coarse timer may fire 5 % late (15 s on a 5-minute lock).
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self.tick)
        self.filter = ActivityFilter(self.user_input, self)
        app.installEventFilter(self.filter)
        observe(state.events.user, self._user_changed, self)
        observe(state.events.locked, self._locked_changed, self)
        self._user_changed(state.user)

    # -- session ---------------------------------------------------------------------------

    def _user_changed(self, user: SignedInUser | None) -> None:
        if user is None:
            self._stop()
        elif self.machine is None:
            self._start()

    def _start(self) -> None:
        self.machine = AutoLock(self._config(), self._clock)
        self.machine.subscribe(self._transition)
        if self._state.locked:
            self.machine.lock_now()
        self._arm()

    def _stop(self) -> None:
        machine, self.machine = self.machine, None
        self.timer.stop()
        if machine is not None:
            machine.end_session()
        self._state.lock_seconds_left = None

    def _locked_changed(self, locked: bool) -> None:
        machine = self.machine
        if machine is None:
            return
        if locked and machine.state is not LockState.LOCKED:
            machine.lock_now()  # locked elsewhere (e.g. too long without the server)
        elif not locked and machine.state is LockState.LOCKED:
            machine.unlock_succeeded()
            self._arm()

    # -- events ----------------------------------------------------------------------------

    def user_input(self) -> None:
        machine = self.machine
        if machine is None:
            return
        now = self._clock()
        if now - self._last_forwarded < INPUT_RESOLUTION_S and machine.state is LockState.ACTIVE:
            return
        self._last_forwarded = now
        machine.user_input()

    def tick(self) -> None:
        if self.machine is not None:
            self.machine.tick()
            self._arm()

    def os_session_locked(self) -> None:
        """The OS locked the screen or the session: lock at once."""
        if self.machine is not None:
            self.machine.os_session_locked()

    def suspended(self) -> None:
        """The system is about to sleep: lock at once (before the lid closes)."""
        if self.machine is not None:
            self.machine.suspended()

    def lock_now(self) -> None:
        if self.machine is not None:
            self.machine.lock_now()

    # -- internals -------------------------------------------------------------------------

    def _transition(self, transition: Transition) -> None:
        self.last_transition = transition
        if transition.new is LockState.LOCKED:
            self.timer.stop()
            self._state.lock_seconds_left = None
            self._lock()  # hides PHI now, in this call stack
        elif transition.new is LockState.ACTIVE:
            self._state.lock_seconds_left = None
        self._arm()

    def _arm(self) -> None:
        machine = self.machine
        if machine is None or machine.state in (LockState.LOCKED, LockState.SESSION_ENDED):
            self.timer.stop()
            return
        deadline = machine.next_deadline()
        if deadline is None:
            self.timer.stop()
            return
        now = self._clock()
        wait = deadline - now
        if machine.state is LockState.WARNING:
            left = machine.seconds_until_lock() or 0.0
            self._state.lock_seconds_left = math.ceil(left)
            # Next whole second of the countdown, or the lock itself.
            wait = min(wait, left - math.floor(left - 1e-9) if left > 1 else wait)
        self.timer.start(max(0, math.ceil(wait * 1000)))
