"""In-process devices and a scriptable relay for the E2EE tests.

Everything that crosses the "network" is passed through ``json.dumps``/``json.loads``, so
the machines exchange nothing but plain JSON, as they will over the real relay.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from app.crypto.devices import TrustPolicy
from app.crypto.identity import DeviceIdentity
from app.crypto.machine import CryptoMachine
from app.crypto.megolm import RotationPolicy
from app.crypto.messages import OutgoingToDevice, enrollment_message
from app.crypto.store import MemoryCryptoStore


def wire(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


@dataclass
class Clock:
    now: int = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


@dataclass
class Peer:
    user_id: str
    username: str
    machine: CryptoMachine
    identity: DeviceIdentity
    store: MemoryCryptoStore
    pickle_key: bytes
    inbox: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def device_id(self) -> str:
        return self.identity.device_id

    def directory_entry(self, ts_ms: int = 1) -> dict[str, Any]:
        message = enrollment_message(
            self.device_id, self.username, self.identity.ed25519, self.identity.curve25519,
            ts_ms,
        )
        return {
            "device_id": self.device_id,
            "display_name": "ward pc",
            "ed25519": self.identity.ed25519,
            "curve25519": self.identity.curve25519,
            "enroll_ts_ms": ts_ms,
            "enroll_signature": self.identity.sign(message),
        }


def make_peer(
    user_id: str,
    username: str | None = None,
    *,
    policy: TrustPolicy = TrustPolicy.TOFU,
    rotation: RotationPolicy | None = None,
    clock: Clock | None = None,
) -> Peer:
    identity = DeviceIdentity.generate()
    store = MemoryCryptoStore()
    key = os.urandom(32)
    machine = CryptoMachine(
        identity, user_id, username or user_id, store, key,
        trust_policy=policy, rotation=rotation, clock_ms=clock or Clock(),
    )
    return Peer(user_id, username or user_id, machine, identity, store, key)


class Relay:
    """The server, honest unless a test makes it lie: directory, key pool, to-device queue."""

    def __init__(self) -> None:
        self.peers: dict[str, Peer] = {}
        self.directory: dict[str, list[dict[str, Any]]] = {}
        self.usernames: dict[str, str] = {}
        self.otks: dict[str, list[dict[str, Any]]] = {}
        self.fallback: dict[str, dict[str, Any]] = {}
        self.sent: list[tuple[str, OutgoingToDevice]] = []

    def enroll(self, peer: Peer, one_time_keys: int = 5) -> Peer:
        self.peers[peer.device_id] = peer
        self.usernames[peer.user_id] = peer.username
        self.directory.setdefault(peer.user_id, []).append(peer.directory_entry())
        upload = wire(peer.machine.keys_for_upload(one_time_keys))
        peer.machine.mark_keys_published()
        self.otks[peer.device_id] = list(upload["one_time_keys"])
        if upload["fallback_key"]:
            self.fallback[peer.device_id] = upload["fallback_key"]
        return peer

    def sync_devices(self, peer: Peer, *user_ids: str) -> list[Any]:
        warnings = []
        for user_id in user_ids:
            entries = wire(self.directory.get(user_id, []))
            warnings += peer.machine.update_device_list(
                user_id, self.usernames.get(user_id, user_id), entries,
            )
        return warnings

    def claim(self, device_ids: list[str]) -> dict[str, Any]:
        keys = {}
        for device_id in device_ids:
            if self.otks.get(device_id):
                keys[device_id] = {**self.otks[device_id].pop(), "fallback": False}
            elif device_id in self.fallback:
                keys[device_id] = {**self.fallback[device_id], "fallback": True}
        return wire({"keys": keys, "missing": [d for d in device_ids if d not in keys]})

    def connect(self, sender: Peer, *user_ids: str) -> list[str]:
        """Claim keys for the allowed devices ``sender`` has no Olm session with."""
        missing = sender.machine.missing_sessions(user_ids)
        if not missing:
            return []
        return sender.machine.receive_key_claim(self.claim([d for _, d in missing]))

    def send(self, sender: Peer, messages: list[OutgoingToDevice]) -> None:
        for message in messages:
            self.sent.append((sender.device_id, message))
            target = self.peers.get(message.recipient_device)
            if target is not None:
                target.inbox.append(
                    (sender.user_id, sender.device_id, message.type, wire(message.content))
                )

    def deliver(self, peer: Peer) -> list[Any]:
        results = []
        while peer.inbox:
            results.append(peer.machine.receive_to_device(*peer.inbox.pop(0)))
        return results

    def share(self, sender: Peer, room_id: str, members: list[str]) -> Any:
        """Share the room key like a service would: claim missing sessions, share, send."""
        self.sync_devices(sender, *members)
        self.connect(sender, *members)
        share = sender.machine.share_room_key(room_id, members)
        self.send(sender, share.messages + share.ahead)
        return share

    def say(
        self, sender: Peer, room_id: str, members: list[str], text: str,
    ) -> dict[str, Any]:
        """Share keys, deliver them to everyone, and return the encrypted event content."""
        self.share(sender, room_id, members)
        for peer in self.peers.values():
            self.deliver(peer)
        return wire(sender.machine.encrypt_room_event(
            room_id, members, "sc.message", {"body": text},
        ))


def body(result: Any) -> str:
    return result.content.reveal()["body"]
