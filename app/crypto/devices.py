"""The caller's own view of users' devices, and who may receive room keys.

The key directory is the server's word. An entry is believed only if the device signed it
(the enrollment self-signature binds device id, username and both keys). Devices present
when a user is first seen are trusted on first use; any device that appears or changes later
is flagged and receives no key until the user accepts or verifies it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from app.crypto.errors import DeviceKeysInvalid, MalformedPayload
from app.crypto.identity import verify_ed25519
from app.crypto.messages import enrollment_message, get_b64, get_int, get_key, get_str
from app.crypto.store import DeviceRecord, TrustLevel


class TrustPolicy(StrEnum):
    TOFU = "tofu"  # devices seen at first contact, accepted or verified ones get keys
    VERIFIED_ONLY = "verified_only"  # only SAS-verified devices get keys


_ALLOWED = {
    TrustPolicy.TOFU: frozenset({TrustLevel.TOFU, TrustLevel.ACCEPTED, TrustLevel.VERIFIED}),
    TrustPolicy.VERIFIED_ONLY: frozenset({TrustLevel.VERIFIED}),
}


def may_receive_keys(record: DeviceRecord, policy: TrustPolicy) -> bool:
    return record.trust in _ALLOWED[policy]


class DeviceChange(StrEnum):
    NEW = "new"  # a device the user did not have before: no keys until accepted
    CHANGED = "changed"  # same device id, other keys: no keys until accepted
    REMOVED = "removed"  # gone from the directory: the next room key rotation drops it
    INVALID = "invalid"  # the entry is not signed by its device: ignored


@dataclass(frozen=True, slots=True)
class DeviceWarning:
    user_id: str
    device_id: str
    change: DeviceChange
    ed25519: str  # the fingerprint to show the user ("" if unreadable)


def parse_directory_device(user_id: str, username: str, entry: Any) -> DeviceRecord:
    """A directory entry whose self-signature verifies, as an UNVERIFIED record."""
    if not isinstance(entry, dict):
        raise MalformedPayload("directory entry is not an object")
    device_id = get_str(entry, "device_id", max_len=64)
    ed25519, curve25519 = get_key(entry, "ed25519"), get_key(entry, "curve25519")
    ts_ms = get_int(entry, "enroll_ts_ms")
    signature = get_b64(entry, "enroll_signature", size=64)
    message = enrollment_message(device_id, username, ed25519, curve25519, ts_ms)
    if not verify_ed25519(ed25519, message, signature):
        raise DeviceKeysInvalid("directory entry is not signed by its device")
    return DeviceRecord(
        user_id=user_id,
        username=username,
        device_id=device_id,
        ed25519=ed25519,
        curve25519=curve25519,
        enroll_ts_ms=ts_ms,
        signature=signature,
        trust=TrustLevel.UNVERIFIED,
    )


def merge_device_list(
    user_id: str,
    username: str,
    known: dict[str, DeviceRecord] | None,
    entries: Iterable[Any],
    *,
    skip_device: str | None = None,
) -> tuple[dict[str, DeviceRecord], list[DeviceWarning]]:
    """The caller's new view of ``user_id``'s devices after a directory answer.

    ``known`` is None the first time the user is seen: its devices are then trusted on
    first use. ``skip_device`` is the local device, which never judges itself.
    """
    first_contact = known is None
    old = known or {}
    merged: dict[str, DeviceRecord] = {}
    warnings: list[DeviceWarning] = []
    for entry in entries:
        try:
            record = parse_directory_device(user_id, username, entry)
        except (DeviceKeysInvalid, MalformedPayload):
            device_id = entry.get("device_id") if isinstance(entry, dict) else None
            device_id = device_id if isinstance(device_id, str) else ""
            warnings.append(DeviceWarning(user_id, device_id[:64], DeviceChange.INVALID, ""))
            if device_id in old:  # keep the keys we had: a bad entry must not evict them
                merged[device_id] = old[device_id]
            continue
        if record.device_id == skip_device:
            continue
        previous = old.get(record.device_id)
        if previous is not None and (previous.ed25519, previous.curve25519) == (
            record.ed25519, record.curve25519,
        ):
            merged[record.device_id] = previous  # unchanged: keeps its trust
            continue
        if first_contact:
            merged[record.device_id] = replace(record, trust=TrustLevel.TOFU)
            continue
        change = DeviceChange.NEW if previous is None else DeviceChange.CHANGED
        merged[record.device_id] = record
        warnings.append(DeviceWarning(user_id, record.device_id, change, record.ed25519))
    for device_id, previous in old.items():
        if device_id not in merged:
            warnings.append(
                DeviceWarning(user_id, device_id, DeviceChange.REMOVED, previous.ed25519)
            )
    return merged, warnings

