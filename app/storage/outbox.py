"""The offline outbox of secure chat, inside the encrypted cache.

A message is queued with its client-chosen event id and its text (patient data: stored only
here, in the SQLCipher cache). Once encrypted, the row keeps the exact ciphertext instead of
the text, and every (re)send posts those same bytes under the same event id: the relay
stores a retry once, and the Megolm message index is spent once. Room-key messages go in a
second queue under a fixed transaction id, for the same reason, and are always sent before
the events they unlock. A key sent *ahead* (the room's next session, shared before its
rotation) may wait until after the event it was queued with; once that session is in use,
``release_ahead`` makes it an ordinary key again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from app.core.phi import Phi
from app.storage.cache import Cache, db_errors


@dataclass(frozen=True, slots=True)
class OutboxItem:
    seq: int
    room_id: str
    event_id: str
    body: Phi[str] | None  # None once encrypted
    content: dict[str, Any] | None = field(repr=False)  # the ciphertext envelope, once made
    created_ms: int
    attempts: int
    structured: bool = False  # body is the JSON of a structured content (reply, edit, recall)


@dataclass(frozen=True, slots=True)
class ToDeviceBatch:
    seq: int
    txn_id: str
    type: str
    messages: list[tuple[str, str, dict[str, Any]]] = field(repr=False)


def _now() -> int:
    return int(time.time() * 1000)


class Outbox:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        # Accepted by the relay, row not deleted yet: deleted by the next write transaction
        # (``settle``), which saves a commit per message. A crash before that re-posts the
        # same ciphertext under the same event id, which the relay answers as a duplicate.
        self._accepted: set[int] = set()
        # Whether a batch sent ahead may be queued: asked after every event sent, so the
        # question costs no query in the usual case (none). True until first asked.
        self._maybe_ahead = True

    # -- room events -----------------------------------------------------------------------

    def queue(self, room_id: str, event_id: str, body: Phi[str], *,
              structured: bool = False, content: dict[str, Any] | None = None) -> int:
        """Queue a message; returns its sequence number. ``structured``: ``body`` is the JSON
        of the plaintext content (app/services/chat_content.py), not a message's text.
        ``content``: its ciphertext, when it was encrypted at once (in this transaction, as
        for :meth:`set_encrypted`): then the text is not kept."""
        text = body.reveal() if content is None else None
        encrypted = None if content is None else json.dumps(content, separators=(",", ":"))
        with self._cache.write() as conn:
            cur = conn.execute("INSERT INTO chat_outbox (room_id, event_id, body, content, "
                               "created_ms, structured) VALUES (?, ?, ?, ?, ?, ?)",
                               (room_id, event_id, text, encrypted, _now(), int(structured)))
            return int(cur.lastrowid)

    def pending(self) -> list[OutboxItem]:
        """Everything not yet accepted by the relay, oldest first (sending keeps order)."""
        with db_errors():
            rows = self._cache.conn.execute(
                "SELECT seq, room_id, event_id, body, content, created_ms, attempts, "
                "structured FROM chat_outbox ORDER BY seq").fetchall()
        return [OutboxItem(r[0], r[1], r[2], Phi(r[3]) if r[3] is not None else None,
                           json.loads(r[4]) if r[4] is not None else None, r[5], r[6],
                           bool(r[7]))
                for r in rows if r[0] not in self._accepted]

    def set_encrypted(self, seq: int, content: dict[str, Any]) -> None:
        """Replace the text by its ciphertext (call inside the transaction that advanced the
        Megolm session, so the two cannot part)."""
        with self._cache.write() as conn:
            conn.execute("UPDATE chat_outbox SET content = ?, body = NULL WHERE seq = ?",
                         (json.dumps(content, separators=(",", ":")), seq))

    def attempted(self, seq: int) -> None:
        """Count a failed attempt (diagnostics; success costs no extra write)."""
        with self._cache.write() as conn:
            conn.execute("UPDATE chat_outbox SET attempts = attempts + 1 WHERE seq = ?", (seq,))

    def done(self, seq: int) -> None:
        """Remove a row now (a message that will never be sent)."""
        with self._cache.write() as conn:
            conn.execute("DELETE FROM chat_outbox WHERE seq = ?", (seq,))
        self._accepted.discard(seq)

    def accepted(self, seq: int) -> None:
        """The relay stored it: gone from ``pending`` now, from disk at the next ``settle``."""
        self._accepted.add(seq)

    def settle(self) -> None:
        """Delete accepted rows; call inside a write transaction that happens anyway."""
        if not self._accepted:
            return
        with self._cache.write() as conn:
            conn.executemany("DELETE FROM chat_outbox WHERE seq = ?",
                             [(seq,) for seq in self._accepted])
        self._accepted.clear()

    def count(self) -> int:
        with db_errors():
            rows = self._cache.conn.execute("SELECT seq FROM chat_outbox").fetchall()
        return sum(1 for (seq,) in rows if seq not in self._accepted)

    # -- to-device -------------------------------------------------------------------------

    def queue_to_device(self, txn_id: str, type_: str,
                        messages: list[tuple[str, str, dict[str, Any]]], *,
                        ahead: bool = False) -> None:
        with self._cache.write() as conn:
            conn.execute(
                "INSERT INTO chat_outbox_to_device (txn_id, type, messages, created_ms, ahead) "
                "VALUES (?, ?, ?, ?, ?)",
                (txn_id, type_, json.dumps([list(m) for m in messages], separators=(",", ":")),
                 _now(), int(ahead)))
        self._maybe_ahead = self._maybe_ahead or ahead

    def to_device(self, *, ahead: bool | None = None) -> list[ToDeviceBatch]:
        """Queued batches, oldest first: all of them, or only those sent ahead (True) or
        only those that are not (False)."""
        if ahead is True and not self._maybe_ahead:
            return []
        where = "" if ahead is None else f" WHERE ahead = {int(ahead)}"
        with db_errors():
            rows = self._cache.conn.execute(
                "SELECT seq, txn_id, type, messages FROM chat_outbox_to_device"  # noqa: S608
                f"{where} ORDER BY seq").fetchall()
        if ahead is True and not rows:
            self._maybe_ahead = False
        return [ToDeviceBatch(r[0], r[1], r[2], [(u, d, c) for u, d, c in json.loads(r[3])])
                for r in rows]

    def release_ahead(self) -> None:
        """Keys sent ahead are needed before the next event now (their session is in use)."""
        with self._cache.write() as conn:
            conn.execute("UPDATE chat_outbox_to_device SET ahead = 0 WHERE ahead = 1")

    def to_device_done(self, seq: int) -> None:
        with self._cache.write() as conn:
            conn.execute("DELETE FROM chat_outbox_to_device WHERE seq = ?", (seq,))
