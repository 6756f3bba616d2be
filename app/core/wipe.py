"""Wipe: the order of its steps, its durable marker, its report, and the offline decision.

Pure: the I/O is in :mod:`app.security.wiper`. The order is what makes a wipe safe to
interrupt: keys go before files (crypto-erase first), so from the moment the key store
entries are gone nothing left on disk can be read, however long the deletion takes or
wherever a crash stops it. The marker is written before anything is destroyed and removed
last; a marker found at start means "finish this wipe before anything else". Every step is
idempotent, so finishing means running them all again.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

MARKER_VERSION = 1


class WipeStep(enum.IntEnum):
    MARKER_WRITTEN = 1
    KEYS_DESTROYED = 2
    FILES_DELETED = 3
    MARKER_REMOVED = 4


STEPS = tuple(WipeStep)


class WipeMarkerError(ValueError):
    """The marker file is unreadable. The wipe still runs: a damaged marker means wipe."""


@dataclass(frozen=True)
class WipeMarker:
    """What a resumed wipe needs. Identifiers only: no secrets, no patient data."""

    reason: str  # "remote", "offline", "kiosk", "user"
    requested_ms: int
    # (user_id, device_id) pairs whose key store entries must be destroyed.
    key_owners: tuple[tuple[str, str], ...] = ()

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "v": MARKER_VERSION,
                "reason": self.reason,
                "requested_ms": self.requested_ms,
                "key_owners": [list(pair) for pair in self.key_owners],
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> WipeMarker:
        try:
            data = json.loads(raw)
            owners = tuple((str(u), str(d)) for u, d in data["key_owners"])
            return cls(str(data["reason"]), int(data["requested_ms"]), owners)
        except (ValueError, KeyError, TypeError) as exc:
            raise WipeMarkerError(f"wipe marker unreadable ({exc.__class__.__name__})") from None


@dataclass
class WipeReport:
    """What happened, for the server acknowledgement and the audit (counts, no names)."""

    reason: str
    resumed: bool
    steps: list[WipeStep] = field(default_factory=list)
    key_stores_destroyed: int = 0
    files_deleted: int = 0
    bytes_deleted: int = 0
    keys_gone_s: float = 0.0  # from start until the last key store entry was destroyed
    total_s: float = 0.0
    problems: list[str] = field(default_factory=list)  # paths that could not be removed

    @property
    def complete(self) -> bool:
        return self.steps == list(STEPS) and not self.problems


class OfflineAction(enum.Enum):
    OK = "ok"
    LOCK = "lock"  # lock the cache until the server is reached again
    WIPE = "wipe"


def offline_action(
    last_contact_s: float, now_s: float, *, grace_s: float, wipe_after_s: float,
    clock_skew_s: float = 300.0,
) -> OfflineAction:
    """What to do after being out of touch with the server since ``last_contact_s``.

    Wall-clock seconds, persisted across restarts. A clock that moved backwards by more than
    ``clock_skew_s`` cannot be trusted to measure the offline time (it may have been set
    back to dodge the wipe), so the answer is LOCK until the server vouches for the time.
    """
    if not 0 < grace_s <= wipe_after_s:
        raise ValueError("need 0 < grace_s <= wipe_after_s")
    offline = now_s - last_contact_s
    if offline < -clock_skew_s:
        return OfflineAction.LOCK
    if offline >= wipe_after_s:
        return OfflineAction.WIPE
    if offline >= grace_s:
        return OfflineAction.LOCK
    return OfflineAction.OK
