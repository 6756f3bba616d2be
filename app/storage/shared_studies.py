"""Studies shared into consult rooms, inside the encrypted cache (migration 5).

One row per study: the room, event and sending device it came with, the signed manifest as
received (JSON; it holds the files' blob ids and keys, and descriptions that are patient
data), whether it was opened and how it checked out, and the ids of its files in the
encrypted file store. Nothing here is ever written elsewhere: a wipe or a kiosk session's end
takes it with the cache.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from app.storage.cache import Cache, db_errors


@dataclass(frozen=True, slots=True)
class SharedStudyRow:
    study_id: str
    room_id: str
    event_id: str
    sender: str
    sender_device: str
    manifest: dict[str, Any] = field(repr=False)  # the signed wire, as received
    status: str | None  # None: not opened yet
    file_ids: tuple[str, ...]
    received_ms: int


def _now() -> int:
    return int(time.time() * 1000)


class SharedStudyRepository:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    def add(self, study_id: str, room_id: str, event_id: str, sender: str,
            sender_device: str, manifest: dict[str, Any], *,
            received_ms: int | None = None) -> bool:
        """Keep a study (the first one under an id wins); True if it is new."""
        with self._cache.write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO shared_studies (study_id, room_id, event_id, sender, "
                "sender_device, manifest, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (study_id, room_id, event_id, sender, sender_device,
                 json.dumps(manifest, sort_keys=True, separators=(",", ":")),
                 _now() if received_ms is None else received_ms))
            return cur.rowcount == 1

    def set_opened(self, study_id: str, status: str, file_ids: list[str]) -> None:
        with self._cache.write() as conn:
            conn.execute("UPDATE shared_studies SET status = ?, file_ids = ? WHERE study_id = ?",
                         (status, json.dumps(list(file_ids)), study_id))

    def all(self) -> list[SharedStudyRow]:
        """Every kept study, oldest first."""
        with db_errors():
            rows = self._cache.conn.execute(
                "SELECT study_id, room_id, event_id, sender, sender_device, manifest, status, "
                "file_ids, received_ms FROM shared_studies ORDER BY received_ms, study_id"
            ).fetchall()
        return [SharedStudyRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6],
                               tuple(json.loads(r[7])) if r[7] else (), r[8]) for r in rows]

    def delete(self, study_id: str) -> None:
        with self._cache.write() as conn:
            conn.execute("DELETE FROM shared_studies WHERE study_id = ?", (study_id,))
