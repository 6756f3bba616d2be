"""Typed errors of the end-to-end encryption machine (docs/e2ee.md).

Messages name what failed and never carry plaintext, keys or ciphertext: vodozemac's own
exception text is deliberately dropped (it can quote key material) and only its class name
is kept for the log.
"""

from __future__ import annotations

from app.core.errors import SafeConsultError


class E2EEError(SafeConsultError):
    """Base of every error the encryption machine raises on purpose."""

    user_message = "A secure message could not be processed."


class MalformedPayload(E2EEError):
    """The JSON, its fields or its base64 are not what docs/e2ee.md defines."""

    user_message = "A secure message was damaged in transit and was not shown."


class DecryptionFailed(E2EEError):
    """The ciphertext does not authenticate: tampered, truncated or not for this device."""

    user_message = "A secure message could not be decrypted; it may have been tampered with."


class ReplayedMessage(DecryptionFailed):
    """A message (or one of its message keys) was already used."""

    user_message = "A repeated secure message was rejected."


class WrongRoom(DecryptionFailed):
    """A room event's ciphertext belongs to another room."""

    user_message = "A secure message was found in the wrong conversation and was rejected."


class Misdirected(DecryptionFailed):
    """The plaintext names another sender or recipient than the envelope and keys say."""

    user_message = "A secure message was redirected and was rejected."


class UnknownSenderDevice(E2EEError):
    """A to-device message comes from a device missing from our device view.

    Raised before anything is decrypted, so no ratchet state is spent: the caller refreshes
    the sender's device list and retries.
    """

    user_message = "A message came from a device this workstation does not know yet."


class NoOlmSession(E2EEError):
    """No Olm session with the device yet: claim one of its keys first."""

    user_message = "A secure channel to a colleague's device is not set up yet."


class DeviceKeysInvalid(E2EEError):
    """A directory entry or a claimed one-time key is not signed by the device it names."""

    user_message = "A colleague's device keys failed their check and were ignored."


class RoomKeyNotShared(E2EEError):
    """``encrypt_room_event`` called before ``share_room_key`` (or after the session expired)."""

    user_message = "The conversation key is not ready yet."


class VerificationError(E2EEError):
    """A SAS verification was cancelled, out of order or its MAC did not match."""

    user_message = "Device verification failed. Do not trust this device; try again or call IT."


class SasMismatch(VerificationError):
    """The other side's MAC over its device keys (or its key commitment) did not verify."""


class StoreError(E2EEError):
    """A stored pickle did not open with the pickle key."""

    user_message = "The local encryption state could not be opened."


def vodozemac_detail(exc: BaseException) -> str:
    """A log-safe description of a vodozemac exception: its class only, never its text."""
    return exc.__class__.__name__
