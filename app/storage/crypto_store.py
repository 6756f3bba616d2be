"""The encryption machine's :class:`~app.crypto.store.CryptoStore` over the SQLCipher cache.

vodozemac pickles arrive already encrypted under the machine's pickle key (held in the
key store); the rest (device views, recipient sets, seen indices) is protected by the
cache's own encryption. Every save is its own write transaction unless the caller holds
one (``Cache.write`` nests), so a service can make a batch of machine steps atomic.

Device views, Olm session lists and Megolm sessions are read several times per message sent
or received (the recipient set is checked at every step): they are kept in memory, as read
or written. This store is the only writer of those tables on its cache; a transaction that
does not commit (:attr:`Cache.aborted` moves) empties the memory, since it may hold what was
rolled back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from app.crypto.store import (
    DeviceRecord,
    InboundGroupRecord,
    OlmSessionRecord,
    OutboundGroupRecord,
    Recipient,
    TrustLevel,
)
from app.storage.cache import Cache, db_errors


def _recipients_json(recipients: frozenset[Recipient]) -> str:
    return json.dumps(sorted([list(r) for r in recipients]), separators=(",", ":"))


def _recipients(text: str) -> frozenset[Recipient]:
    return frozenset(Recipient(*item) for item in json.loads(text))


_CURRENT, _UPCOMING = "crypto_outbound_groups", "crypto_outbound_upcoming"

_DEVICES = ("SELECT user_id, username, device_id, ed25519, curve25519, enroll_ts_ms, signature,"
            " trust FROM crypto_devices ")
_INSERT_DEVICE = ("INSERT INTO crypto_devices (user_id, username, device_id, ed25519, curve25519,"
                  " enroll_ts_ms, signature, trust) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


def _device(row: tuple) -> DeviceRecord:
    return DeviceRecord(row[0], row[1], row[2], row[3], row[4], int(row[5]), row[6],
                        TrustLevel(row[7]))


class SqlCryptoStore:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        self._aborted = cache.aborted
        self._devices: dict[str, dict[str, DeviceRecord] | None] = {}
        self._by_curve: dict[str, DeviceRecord | None] = {}
        self._olm: dict[str, list[OlmSessionRecord]] = {}
        self._outbound: dict[tuple[str, str], OutboundGroupRecord | None] = {}
        self._inbound: dict[tuple[str, str, str], InboundGroupRecord | None] = {}

    def _kept(self) -> None:
        """Forget the memory if a transaction was rolled back since it was filled."""
        if self._cache.aborted != self._aborted:
            for kept in (self._devices, self._by_curve, self._olm, self._outbound,
                         self._inbound):
                kept.clear()
            self._aborted = self._cache.aborted

    def _one(self, sql: str, args: tuple = ()) -> tuple | None:
        with db_errors():
            return self._cache.conn.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list[tuple]:
        with db_errors():
            return self._cache.conn.execute(sql, args).fetchall()

    # -- account ---------------------------------------------------------------------------

    def load_account(self) -> str | None:
        row = self._one("SELECT pickle FROM crypto_account WHERE id = 1")
        return row[0] if row else None

    def save_account(self, pickle: str) -> None:
        with self._cache.write() as conn:
            conn.execute(
                "INSERT INTO crypto_account (id, pickle) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET pickle = excluded.pickle", (pickle,))

    # -- Olm -------------------------------------------------------------------------------

    def olm_sessions(self, peer_curve25519: str) -> list[OlmSessionRecord]:
        self._kept()
        if peer_curve25519 not in self._olm:
            self._olm[peer_curve25519] = self._read_olm(peer_curve25519)
        return list(self._olm[peer_curve25519])  # the caller's to change

    def _read_olm(self, peer_curve25519: str) -> list[OlmSessionRecord]:
        rows = self._all(
            "SELECT peer_curve25519, session_id, pickle, created_ms, last_used_ms "
            "FROM crypto_olm_sessions WHERE peer_curve25519 = ? ORDER BY last_used_ms DESC",
            (peer_curve25519,))
        return [OlmSessionRecord(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in rows]

    def save_olm_session(self, record: OlmSessionRecord) -> None:
        with self._cache.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO crypto_olm_sessions (peer_curve25519, session_id, "
                "pickle, created_ms, last_used_ms) VALUES (?, ?, ?, ?, ?)",
                (record.peer_curve25519, record.session_id, record.pickle, record.created_ms,
                 record.last_used_ms))
        self._olm.pop(record.peer_curve25519, None)  # read back (in order) next time

    def drop_olm_session(self, peer_curve25519: str, session_id: str) -> None:
        with self._cache.write() as conn:
            conn.execute(
                "DELETE FROM crypto_olm_sessions WHERE peer_curve25519 = ? AND session_id = ?",
                (peer_curve25519, session_id))
        self._olm.pop(peer_curve25519, None)

    # -- Megolm outbound ---------------------------------------------------------------------
    # Two slots per room: the session in use, and the upcoming one whose key went out ahead
    # of the rotation (app/crypto/machine.py). The same record, kept in two tables; a
    # table name below is always one of these two constants.

    def outbound_group(self, room_id: str) -> OutboundGroupRecord | None:
        return self._outbound_in(_CURRENT, room_id)

    def save_outbound_group(self, record: OutboundGroupRecord) -> None:
        self._save_outbound_in(_CURRENT, record)

    def drop_outbound_group(self, room_id: str) -> None:
        self._drop_outbound_in(_CURRENT, room_id)

    def upcoming_outbound_group(self, room_id: str) -> OutboundGroupRecord | None:
        return self._outbound_in(_UPCOMING, room_id)

    def save_upcoming_outbound_group(self, record: OutboundGroupRecord) -> None:
        self._save_outbound_in(_UPCOMING, record)

    def drop_upcoming_outbound_group(self, room_id: str) -> None:
        self._drop_outbound_in(_UPCOMING, room_id)

    def drop_outbound_groups(self) -> int:
        """Forget every room's outbound sessions, current and upcoming (each room rotates
        at its next message); returns how many rooms had one in use. Durable: it must be on
        disk before anything is sent."""
        with self._cache.write() as conn:
            count = conn.execute(f"DELETE FROM {_CURRENT}").rowcount  # noqa: S608
            conn.execute(f"DELETE FROM {_UPCOMING}")  # noqa: S608
        self._outbound.clear()
        return count

    def _outbound_in(self, table: str, room_id: str) -> OutboundGroupRecord | None:
        self._kept()
        key = (table, room_id)
        if key in self._outbound:
            return self._outbound[key]
        row = self._one(
            "SELECT room_id, session_id, pickle, created_ms, message_count, recipients, "  # noqa: S608
            f"shared_with FROM {table} WHERE room_id = ?", (room_id,))
        record = None if row is None else OutboundGroupRecord(
            row[0], row[1], row[2], int(row[3]), int(row[4]), _recipients(row[5]),
            _recipients(row[6]))
        self._outbound[key] = record
        return record

    def _save_outbound_in(self, table: str, record: OutboundGroupRecord) -> None:
        with self._cache.write() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO {table} (room_id, session_id, pickle, "  # noqa: S608
                "created_ms, message_count, recipients, shared_with) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.room_id, record.session_id, record.pickle, record.created_ms,
                 record.message_count, _recipients_json(record.recipients),
                 _recipients_json(record.shared_with)))
        self._kept()
        self._outbound[(table, record.room_id)] = record

    def _drop_outbound_in(self, table: str, room_id: str) -> None:
        with self._cache.write() as conn:
            conn.execute(f"DELETE FROM {table} WHERE room_id = ?", (room_id,))  # noqa: S608
        self._kept()
        self._outbound[(table, room_id)] = None

    # -- Megolm inbound ----------------------------------------------------------------------

    _INBOUND = ("SELECT room_id, sender_key, session_id, pickle, first_known_index, "
                "sender_user, sender_device, sender_ed25519, forwarded "
                "FROM crypto_inbound_groups ")

    def inbound_group(
        self, room_id: str, sender_key: str, session_id: str,
    ) -> InboundGroupRecord | None:
        self._kept()
        key = (room_id, sender_key, session_id)
        if key not in self._inbound:
            self._inbound[key] = self._read_inbound(room_id, sender_key, session_id)
        return self._inbound[key]

    def _read_inbound(
        self, room_id: str, sender_key: str, session_id: str,
    ) -> InboundGroupRecord | None:
        row = self._one(self._INBOUND + "WHERE room_id = ? AND sender_key = ? AND session_id = ?",
                        (room_id, sender_key, session_id))
        if row is None:
            return None
        return InboundGroupRecord(row[0], row[1], row[2], row[3], int(row[4]), row[5], row[6],
                                  row[7], bool(row[8]))

    def inbound_group_rooms(self, sender_key: str, session_id: str) -> list[str]:
        rows = self._all("SELECT room_id FROM crypto_inbound_groups "
                         "WHERE sender_key = ? AND session_id = ?", (sender_key, session_id))
        return [r[0] for r in rows]

    def save_inbound_group(self, record: InboundGroupRecord) -> None:
        with self._cache.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO crypto_inbound_groups (room_id, sender_key, session_id, "
                "pickle, first_known_index, sender_user, sender_device, sender_ed25519, "
                "forwarded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.room_id, record.sender_key, record.session_id, record.pickle,
                 record.first_known_index, record.sender_user, record.sender_device,
                 record.sender_ed25519, int(record.forwarded)))
        self._kept()
        self._inbound[(record.room_id, record.sender_key, record.session_id)] = record

    # -- replay memory ---------------------------------------------------------------------

    def seen_event(self, session_id: str, index: int) -> str | None:
        row = self._one("SELECT event_id FROM crypto_seen WHERE session_id = ? AND "
                        "message_index = ?", (session_id, index))
        return row[0] if row else None

    def mark_seen(self, session_id: str, index: int, event_id: str) -> str:
        with self._cache.write() as conn:
            added = conn.execute("INSERT OR IGNORE INTO crypto_seen (session_id, message_index, "
                                 "event_id) VALUES (?, ?, ?)",
                                 (session_id, index, event_id)).rowcount
        if added:
            return event_id
        seen = self.seen_event(session_id, index)
        assert seen is not None  # the row that made the insert a no-op
        return seen

    # -- device views ----------------------------------------------------------------------

    def user_devices(self, user_id: str) -> dict[str, DeviceRecord] | None:
        self._kept()
        if user_id in self._devices:
            kept = self._devices[user_id]
        else:
            kept = self._devices[user_id] = self._read_devices(user_id)
        return None if kept is None else dict(kept)  # the caller's to change

    def _read_devices(self, user_id: str) -> dict[str, DeviceRecord] | None:
        if self._one("SELECT 1 FROM crypto_users WHERE user_id = ?", (user_id,)) is None:
            return None
        rows = self._all(_DEVICES + "WHERE user_id = ?",
                         (user_id,))
        return {r[2]: _device(r) for r in rows}

    def save_user_devices(self, user_id: str, devices: Mapping[str, DeviceRecord]) -> None:
        with self._cache.write() as conn:
            conn.execute("INSERT OR IGNORE INTO crypto_users (user_id) VALUES (?)", (user_id,))
            conn.execute("DELETE FROM crypto_devices WHERE user_id = ?", (user_id,))
            conn.executemany(
                _INSERT_DEVICE,
                [(d.user_id, d.username, d.device_id, d.ed25519, d.curve25519, d.enroll_ts_ms,
                  d.signature, d.trust.value) for d in devices.values()])
        self._devices.pop(user_id, None)  # read back from disk next time
        self._by_curve.clear()

    def device_by_curve(self, curve25519: str) -> DeviceRecord | None:
        self._kept()
        if curve25519 not in self._by_curve:
            row = self._one(_DEVICES + "WHERE curve25519 = ? LIMIT 1", (curve25519,))
            self._by_curve[curve25519] = _device(row) if row else None
        return self._by_curve[curve25519]

    # -- beyond the protocol: what the chat service remembers about device lists -----------

    def device_list_version(self, user_id: str) -> int | None:
        row = self._one("SELECT device_list_version FROM crypto_users WHERE user_id = ?",
                        (user_id,))
        return int(row[0]) if row else None

    def set_device_list_version(self, user_id: str, version: int) -> None:
        with self._cache.write() as conn:
            conn.execute(
                "INSERT INTO crypto_users (user_id, device_list_version) VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET device_list_version = excluded."
                "device_list_version", (user_id, version))
        self._devices.pop(user_id, None)  # a user row makes an unknown list an empty one

    def known_users(self) -> list[str]:
        return [r[0] for r in self._all("SELECT user_id FROM crypto_users ORDER BY user_id")]

    def username(self, user_id: str) -> str | None:
        row = self._one("SELECT username FROM crypto_devices WHERE user_id = ? LIMIT 1",
                        (user_id,))
        return row[0] if row else None
