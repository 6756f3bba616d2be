"""Offline grace: lock after ``Policy.offline_grace_s`` without the server, wipe after
``Policy.offline_wipe_s`` (a lost laptop kept off the network must not keep patient data
forever, and cannot be reached by a remote wipe).

The session tells the guard about every successful server contact (:meth:`note_contact`)
and asks it after every failed one (:meth:`check`). The decision is the pure
:func:`app.core.wipe.offline_action`; the guard adds the clocks and the memory:

* The last contact is kept in the encrypted cache (:meth:`attach`), so a restart does not
  reset the clock. It is written at most once per ``persist_every_s`` (default 60 s), and
  not on close: a restart loses at most that much, in the safe direction (the stored
  contact is older).
* Two clocks. The wall clock measures time across restarts but can be set back; the
  monotonic clock cannot be set back but starts again with each process. Offline time is
  judged by both and the stricter answer wins: a wall clock more than five minutes behind
  the last contact means LOCK (``offline_action``'s rule), and the monotonic time since the
  last contact seen in this process still reaches WIPE after ``offline_wipe_s`` -- so setting
  the clock back delays nothing. A wall clock set *forward* only brings the lock or wipe
  sooner, which is the safe direction.
* Each threshold calls its callable once per crossing: ``lock()`` when LOCK is first
  reached, ``wipe()`` when WIPE is. A contact resets the guard to OK; lifting the lock is the
  user's re-authentication, not the guard's business.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from app.config import Policy
from app.core.errors import SafeConsultError
from app.core.wipe import OfflineAction, offline_action

log = logging.getLogger(__name__)

LAST_CONTACT = "offline:last_contact_ms"
_SEVERITY = {OfflineAction.OK: 0, OfflineAction.LOCK: 1, OfflineAction.WIPE: 2}


class ContactStore(Protocol):
    """Where the last contact is kept (app.storage.secrets.SecretRepository has it)."""

    def get(self, name: str) -> bytes | None: ...
    def put(self, name: str, value: bytes) -> None: ...


class OfflineGuard:
    def __init__(
        self, *, grace_s: float, wipe_after_s: float, lock: Callable[[], object],
        wipe: Callable[[], object], clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic, persist_every_s: float = 60.0,
        clock_skew_s: float = 300.0,
    ) -> None:
        if not 0 < grace_s <= wipe_after_s:
            raise ValueError("need 0 < grace_s <= wipe_after_s")
        self.grace_s, self.wipe_after_s = grace_s, wipe_after_s
        self._lock, self._wipe = lock, wipe
        self._clock, self._monotonic = clock, monotonic
        self._persist_every = persist_every_s
        self._skew = clock_skew_s
        self._store: ContactStore | None = None
        self._persisted_at: float | None = None  # monotonic time of the last write
        self._written: bytes | None = None  # the value last written
        # Until a contact or a stored value says otherwise, the clock starts now.
        self.last_contact_s = clock()
        self._mono_anchor = monotonic()
        self._offline_at_anchor = 0.0
        self._contact_seen = False  # a contact observed in this process
        self.state = OfflineAction.OK

    @classmethod
    def from_policy(cls, policy: Policy, **kwargs) -> OfflineGuard:
        return cls(grace_s=policy.offline_grace_s, wipe_after_s=policy.offline_wipe_s,
                   **kwargs)

    # -- persistence -----------------------------------------------------------------------

    def attach(self, store: ContactStore) -> None:
        """Use ``store`` (the open cache) from now on. Without a contact seen in this process,
        the stored last contact is adopted -- the restart case; otherwise the fresher
        in-memory contact is written."""
        self._store = store
        if self._contact_seen:
            self._persist(force=True)
            return
        try:
            raw = store.get(LAST_CONTACT)
        except SafeConsultError as exc:
            log.warning("last contact unreadable", extra={
                "event": "offline_guard", "reason_code": exc.__class__.__name__})
            return
        if raw is None or not raw.isdigit():
            return
        self.last_contact_s = int(raw) / 1000
        self._mono_anchor = self._monotonic()
        # Time already offline before this process started, as far as the wall clock can
        # tell; never negative, so a clock set back adds nothing to the monotonic count.
        self._offline_at_anchor = max(0.0, self._clock() - self.last_contact_s)

    def detach(self) -> None:
        """The cache is closing: stop using it. No last write: closing is on the sign-out and
        wipe paths, where a durable write costs time, and the stored value is at most
        ``persist_every_s`` old -- older means locking sooner, the safe side."""
        self._store = None

    def _persist(self, *, force: bool = False) -> None:
        if self._store is None or not self._contact_seen:
            return
        now = self._monotonic()
        if not force and self._persisted_at is not None and (
                now - self._persisted_at < self._persist_every):
            return
        value = str(int(self.last_contact_s * 1000)).encode()
        if value == self._written:
            return  # nothing new: no write (each one is a durable transaction)
        try:
            self._store.put(LAST_CONTACT, value)
            self._persisted_at, self._written = now, value
        except SafeConsultError as exc:  # a full disk must not stop the session; retried
            log.warning("last contact not saved", extra={
                "event": "offline_guard", "reason_code": exc.__class__.__name__})

    # -- observation -------------------------------------------------------------------------

    def note_contact(self, now: float | None = None) -> None:
        """The server answered: the offline clock starts again."""
        self.last_contact_s = self._clock() if now is None else now
        self._mono_anchor = self._monotonic()
        self._offline_at_anchor = 0.0
        self._contact_seen = True
        self.state = OfflineAction.OK
        self._persist()

    def offline_s(self) -> float:
        """Offline time by the monotonic clock (the one that cannot be set back)."""
        return self._offline_at_anchor + (self._monotonic() - self._mono_anchor)

    def decide(self, now: float | None = None) -> OfflineAction:
        wall_now = self._clock() if now is None else now
        by_wall = offline_action(self.last_contact_s, wall_now, grace_s=self.grace_s,
                                 wipe_after_s=self.wipe_after_s, clock_skew_s=self._skew)
        by_mono = offline_action(0.0, self.offline_s(), grace_s=self.grace_s,
                                 wipe_after_s=self.wipe_after_s, clock_skew_s=self._skew)
        return max(by_wall, by_mono, key=_SEVERITY.__getitem__)

    def check(self, now: float | None = None) -> OfflineAction:
        """Decide, and call ``lock()`` / ``wipe()`` when a threshold is first crossed."""
        action = self.decide(now)
        if _SEVERITY[action] > _SEVERITY[self.state]:
            log.warning("offline limit reached", extra={
                "event": "offline_guard", "state": action.value,
                "duration_ms": int(self.offline_s() * 1000)})
            self.state = action
            (self._wipe if action is OfflineAction.WIPE else self._lock)()
        return action
