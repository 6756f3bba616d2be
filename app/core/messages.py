"""Chat messages as the local cache keeps them."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.phi import Phi


@dataclass(frozen=True, slots=True)
class CachedMessage:
    """A decrypted message held in the encrypted cache. ``body`` is patient data."""

    room_id: str
    event_id: str
    sender: str
    ts_ms: int
    body: Phi[str]
