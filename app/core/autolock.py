"""The auto-lock state machine: pure, with the clock injected.

States::

    ACTIVE --idle >= timeout - warning--> WARNING --idle >= timeout--> LOCKED
       ^                                     |                           |
       +---------------- input --------------+                           |
       +---------------- unlock_succeeded -------------------------------+
    LOCKED --max_unlock_failures x unlock_failed--> SESSION_ENDED (terminal)

OS session lock, suspend and "lock now" go to LOCKED at once, from ACTIVE or WARNING.

Nothing here runs on its own: the UI calls :meth:`AutoLock.tick` from one timer set to
:meth:`AutoLock.next_deadline` (no polling), and forwards input events. Every call first
catches up with the clock, so input arriving after the machine slept past the deadline
locks rather than resets. Listeners get each :class:`Transition`; the UI hides every PHI
widget on ``LOCKED`` and logs out on ``SESSION_ENDED``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


class LockState(enum.Enum):
    ACTIVE = "active"
    WARNING = "warning"
    LOCKED = "locked"
    SESSION_ENDED = "session_ended"


class LockReason(enum.Enum):
    IDLE = "idle"
    INPUT = "input"
    OS_LOCK = "os_lock"
    SUSPEND = "suspend"
    MANUAL = "manual"
    UNLOCKED = "unlocked"
    UNLOCK_FAILURES = "unlock_failures"
    LOGOUT = "logout"


@dataclass(frozen=True, slots=True)
class LockConfig:
    timeout_s: float  # idle time before LOCKED (the stricter of policy and settings)
    warning_s: float  # WARNING starts this long before the lock
    max_unlock_failures: int

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or not 0 <= self.warning_s < self.timeout_s:
            raise ValueError("need timeout_s > 0 and 0 <= warning_s < timeout_s")
        if self.max_unlock_failures < 1:
            raise ValueError("max_unlock_failures must be at least 1")


@dataclass(frozen=True, slots=True)
class Transition:
    old: LockState
    new: LockState
    reason: LockReason
    at: float


Listener = Callable[[Transition], None]


class AutoLock:
    def __init__(
        self, config: LockConfig, clock: Callable[[], float],
        listeners: list[Listener] | None = None,
    ) -> None:
        """``clock`` is monotonic seconds (time.monotonic in the app, a fake in tests)."""
        self.config = config
        self._clock = clock
        self._listeners: list[Listener] = list(listeners or [])
        self._state = LockState.ACTIVE
        self._last_input = clock()
        self._failures = 0

    # -- observing -----------------------------------------------------------------------

    @property
    def state(self) -> LockState:
        return self._state

    @property
    def unlock_failures(self) -> int:
        return self._failures

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def next_deadline(self) -> float | None:
        """Clock time of the next change that needs a tick; None when only input can act."""
        if self._state is LockState.ACTIVE:
            return self._last_input + self.config.timeout_s - self.config.warning_s
        if self._state is LockState.WARNING:
            return self._last_input + self.config.timeout_s
        return None

    def seconds_until_lock(self) -> float | None:
        """For the warning's countdown."""
        if self._state in (LockState.ACTIVE, LockState.WARNING):
            return max(0.0, self._last_input + self.config.timeout_s - self._clock())
        return None

    # -- events --------------------------------------------------------------------------

    def tick(self) -> LockState:
        now = self._clock()
        if self._state in (LockState.ACTIVE, LockState.WARNING):
            idle = now - self._last_input
            if idle >= self.config.timeout_s:
                self._move(LockState.LOCKED, LockReason.IDLE, now)
            elif (
                self._state is LockState.ACTIVE
                and idle >= self.config.timeout_s - self.config.warning_s
            ):
                self._move(LockState.WARNING, LockReason.IDLE, now)
        return self._state

    def user_input(self) -> None:
        """Keyboard or mouse activity in the app. Ignored once locked."""
        self.tick()
        if self._state in (LockState.ACTIVE, LockState.WARNING):
            self._last_input = self._clock()
            if self._state is LockState.WARNING:
                self._move(LockState.ACTIVE, LockReason.INPUT, self._last_input)

    def os_session_locked(self) -> None:
        self._lock_at_once(LockReason.OS_LOCK)

    def suspended(self) -> None:
        self._lock_at_once(LockReason.SUSPEND)

    def lock_now(self) -> None:
        self._lock_at_once(LockReason.MANUAL)

    def unlock_succeeded(self) -> None:
        """The user re-authenticated (verified elsewhere) on the lock screen.

        Only a lock that was already in force is lifted: if the idle lock falls due in this
        very call, the user has not seen that lock screen, so the result is stale.
        """
        was = self._state
        self.tick()
        if was is LockState.LOCKED:
            self._failures = 0
            self._last_input = self._clock()
            self._move(LockState.ACTIVE, LockReason.UNLOCKED, self._last_input)

    def unlock_failed(self) -> None:
        was = self._state
        self.tick()
        if was is not LockState.LOCKED:
            return
        self._failures += 1
        if self._failures >= self.config.max_unlock_failures:
            self._move(LockState.SESSION_ENDED, LockReason.UNLOCK_FAILURES, self._clock())

    def end_session(self) -> None:
        """Logout, from any state."""
        if self._state is not LockState.SESSION_ENDED:
            self._move(LockState.SESSION_ENDED, LockReason.LOGOUT, self._clock())

    # -- internals -----------------------------------------------------------------------

    def _lock_at_once(self, reason: LockReason) -> None:
        self.tick()  # an idle lock that was due is recorded as such
        if self._state in (LockState.ACTIVE, LockState.WARNING):
            self._move(LockState.LOCKED, reason, self._clock())

    def _move(self, new: LockState, reason: LockReason, at: float) -> None:
        transition = Transition(self._state, new, reason, at)
        self._state = new
        for listener in list(self._listeners):
            listener(transition)
