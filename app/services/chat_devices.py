"""Secure chat, devices and keys (docs/e2ee.md, "Membership and devices"): a mixin of
:class:`app.services.chat.ChatService`. Device lists come from self-signed directory entries
checked by the machine, refetched when their version moves; changes raise warnings; our
one-time keys are kept stocked; SAS verification steps go through the machine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from app.core.errors import ConnectionFailed
from app.crypto.devices import DeviceWarning, may_receive_keys
from app.crypto.machine import CryptoMachine
from app.crypto.messages import OutgoingToDevice
from app.crypto.store import DeviceRecord, TrustLevel
from app.net import relay_api

log = logging.getLogger("app.services.chat")
T = TypeVar("T")


class ChatDevices:
    """Device lists, trust, verification and one-time keys (mixed into ChatService)."""

    # Provided by ChatService (see its __init__).
    cache: Any
    state: Any
    machine: Any
    store: Any
    user_id: str
    one_time_keys: int
    _lock: asyncio.Lock
    _dirty_users: set[str]
    _last_version_check: float
    _keys_low: bool
    _upload_failed: bool
    devices_changed: Any  # Signal(str), ChatService's

    async def check_device_lists(self) -> None:
        """Refetch the device lists whose version moved (or that a push named)."""
        self._last_version_check = time.monotonic()
        users = set(self.state.all_member_ids()) | {self.user_id} | self._dirty_users
        versions = await relay_api.device_versions(self.transport, sorted(users))
        stale = [u for u, v in versions.items()
                 if u in self._dirty_users or self.store.device_list_version(u) != v]
        self._dirty_users.clear()
        if stale:
            async with self._lock:
                await self.refresh_device_lists(stale)

    async def refresh_device_lists(self, user_ids: Iterable[str]) -> list[DeviceWarning]:
        warnings: list[DeviceWarning] = []
        changed: list[str] = []
        for user_id in user_ids:
            directory = await relay_api.user_devices(self.transport, user_id)
            before = self.machine.devices(user_id)
            found = self.machine.update_device_list(user_id, directory.username,
                                                    directory.devices)
            # After the list itself: the version row must never make an unseen user "seen".
            self.store.set_device_list_version(user_id, directory.device_list_version)
            warnings.extend(found)
            if self.machine.devices(user_id) != before:
                changed.append(user_id)
        for warning in warnings:
            log.info("device list changed", extra={"event": "chat_device_warning",
                                                   "state": warning.change.value})
            self.device_warning.emit(warning)
        for user_id in changed:
            self.devices_changed.emit(user_id)
        return warnings

    async def _ensure_device_lists(self, user_ids: Iterable[str]) -> None:
        unknown = [u for u in dict.fromkeys(user_ids) if self.store.user_devices(u) is None]
        if unknown:
            await self.refresh_device_lists(unknown)

    def accept_device(self, user_id: str, device_id: str, ed25519: str) -> None:
        """The user accepted a flagged device after comparing its fingerprint."""
        self.machine.accept_device(user_id, device_id, ed25519)
        self.devices_changed.emit(user_id)

    def block_device(self, user_id: str, device_id: str) -> None:
        self.machine.block_device(user_id, device_id)
        self.devices_changed.emit(user_id)  # e.g. a call with that device ends at once

    def devices(self, user_id: str) -> list[DeviceRecord]:
        """``user_id``'s devices as this device's own view holds them (with trust), by id."""
        return sorted(self.machine.devices(user_id).values(), key=lambda r: r.device_id)

    def may_receive_keys(self, record: DeviceRecord) -> bool:
        """Whether the trust policy lets ``record`` receive room keys now."""
        return may_receive_keys(record, self.machine.trust_policy)

    def flagged_devices(self, room_id: str) -> list[DeviceRecord]:
        """Devices of the room's members (ourselves included) that appeared or changed after
        first contact and that the user has not verified, accepted or blocked yet: they get
        no room key, and the user should decide before writing here."""
        flagged = []
        for user_id in dict.fromkeys([*self.state.members(room_id), self.user_id]):
            flagged.extend(r for r in self.devices(user_id)
                           if r.trust is TrustLevel.UNVERIFIED)
        return flagged

    async def verification_step(
        self, step: Callable[[CryptoMachine], tuple[T, list[OutgoingToDevice]]],
    ) -> T:
        """Run one verification step on the machine (which one task uses at a time) and send
        what it answers. The to-device messages are queued in the same transaction as any
        trust the step changed, and go out at once (or with the next flush when offline)."""
        async with self._lock:
            with self.cache.write():
                result, outgoing = step(self.machine)
                self._queue_to_device(outgoing)
            try:
                await self._send_queued_to_device()
            except ConnectionFailed:
                self._set_online(False)
                self.wake()
        return result

    async def ensure_keys(self) -> None:
        """Keep the relay stocked with our one-time keys (and a fallback key)."""
        counts = await relay_api.key_counts(self.transport)
        if counts.one_time_key_count >= self.one_time_keys // 2 and counts.has_fallback_key:
            self._keys_low = False
            return
        async with self._lock:
            # After a failed upload the generated keys are still unpublished and come
            # again with the next body: add none then, so a body stays within the relay's
            # 100-key limit however often the network fails.
            wanted = 0 if self._upload_failed else max(
                0, self.one_time_keys - counts.one_time_key_count)
            body = self.machine.keys_for_upload(wanted)
            self._upload_failed = True
            await relay_api.upload_keys(self.transport, body)
            self._upload_failed = False
            self.machine.mark_keys_published()
        self._keys_low = False
        log.info("one-time keys published", extra={"event": "chat_keys_published",
                                                   "count": len(body["one_time_keys"])})
