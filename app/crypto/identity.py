"""The device identity: a vodozemac Account whose Ed25519 key identifies this device.

The account (and so the private keys) is pickled encrypted under a 32-byte key that the
caller keeps in the OS keyring or, in kiosk mode, in memory only. Nothing here touches disk.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

import vodozemac

from app.core.errors import SafeConsultError


class IdentityError(SafeConsultError):
    user_message = "This device's identity could not be opened. Contact IT to re-enroll it."


def b64(data: bytes) -> str:
    """Unpadded standard base64, as vodozemac and docs/protocol.md use."""
    return base64.b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def new_device_id() -> str:
    """22 URL-safe characters (128 random bits), never starting with ``-``: IT types the
    id into command lines (``admin device wipe ID``), where a leading dash reads as an option."""
    while True:
        device_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not device_id.startswith("-"):
            return device_id


@dataclass
class DeviceIdentity:
    device_id: str
    account: vodozemac.Account

    @classmethod
    def generate(cls) -> DeviceIdentity:
        return cls(new_device_id(), vodozemac.Account())

    @property
    def ed25519(self) -> str:
        return self.account.ed25519_key.to_base64()

    @property
    def curve25519(self) -> str:
        return self.account.curve25519_key.to_base64()

    def sign(self, message: bytes) -> str:
        return self.account.sign(message).to_base64()

    def pickle(self, key: bytes) -> str:
        if len(key) != 32:
            raise ValueError("pickle key must be 32 bytes")
        return self.account.pickle(key)

    @classmethod
    def unpickle(cls, device_id: str, pickled: str, key: bytes) -> DeviceIdentity:
        try:
            return cls(device_id, vodozemac.Account.from_pickle(pickled, key))
        except (vodozemac.PickleException, ValueError) as exc:
            raise IdentityError(f"account pickle did not open ({exc.__class__.__name__})") from None


def verify_ed25519(public_key_b64: str, message: bytes, signature_b64: str) -> bool:
    """True when ``signature_b64`` is ``public_key_b64``'s signature over ``message``."""
    try:
        key = vodozemac.Ed25519PublicKey.from_base64(public_key_b64)
        key.verify_signature(message, vodozemac.Ed25519Signature.from_base64(signature_b64))
    except (vodozemac.KeyException, vodozemac.SignatureException, ValueError, TypeError):
        return False
    return True
