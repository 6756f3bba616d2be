"""Chat messages as the local cache keeps them."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from operator import itemgetter

from app.core.phi import PLACEHOLDER, Phi


class CachedMessage(tuple[str, str, str, int, str]):
    """A decrypted message held in the encrypted cache. ``body`` is patient data.

    A tuple underneath so that a search can turn database rows into messages in C
    (:meth:`from_rows`): building a frozen dataclass and a ``Phi`` per row cost more than
    the encrypted full-text query itself. The body is handed out only as ``Phi``, and
    ``repr``/``str``/``format`` mask it like ``Phi`` does.
    """

    __slots__ = ()

    def __new__(cls, room_id: str, event_id: str, sender: str, ts_ms: int,
                body: Phi[str]) -> CachedMessage:
        return tuple.__new__(cls, (room_id, event_id, sender, ts_ms, body.reveal()))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str, int, str]]) -> list[CachedMessage]:
        """Messages from ``(room_id, event_id, sender, ts_ms, body)`` rows, in order."""
        return list(map(partial(tuple.__new__, cls), rows))

    room_id = property(itemgetter(0))
    event_id = property(itemgetter(1))
    sender = property(itemgetter(2))
    ts_ms = property(itemgetter(3))

    @property
    def body(self) -> Phi[str]:
        return Phi(self[4])

    def __repr__(self) -> str:
        return (f"CachedMessage(room_id={self[0]!r}, event_id={self[1]!r}, "
                f"sender={self[2]!r}, ts_ms={self[3]!r}, body=Phi({PLACEHOLDER}))")

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)
