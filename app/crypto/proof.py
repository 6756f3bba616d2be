"""Request proof of possession (docs/protocol.md, "Request proof").

Kept in crypto (not net) because the server's verifier and this signer must agree on the
exact bytes: this module is the client's single definition of them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable

from app.crypto.identity import DeviceIdentity

PROOF_VERSION = "v1"


def proof_message(
    method: str, path: str, ts_ms: int, nonce: str, body: bytes, token: str,
) -> bytes:
    token_hash = hashlib.sha256(token.encode()).hexdigest() if token else ""
    return "\n".join(
        [
            "SC-PROOF-v1", method.upper(), path, str(ts_ms), nonce,
            hashlib.sha256(body).hexdigest(), token_hash,
        ]
    ).encode()


class ProofSigner:
    """Implements ``app.net.transport.RequestSigner`` for one device."""

    def __init__(
        self, identity: DeviceIdentity, clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.identity = identity
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))

    def proof_headers(self, method: str, path: str, body: bytes, token: str) -> dict[str, str]:
        ts_ms = self._clock_ms()
        nonce = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        signature = self.identity.sign(proof_message(method, path, ts_ms, nonce, body, token))
        return {
            "X-SC-Device": self.identity.device_id,
            "X-SC-Proof": f"{PROOF_VERSION}.{ts_ms}.{nonce}.{signature}",
        }


def enrollment_message(
    device_id: str, username: str, ed25519: str, curve25519: str, ts_ms: int,
) -> bytes:
    """What a new device signs to enroll (docs/protocol.md, "Enrollment")."""
    return "\n".join(["SC-ENROLL-v1", device_id, username, ed25519, curve25519,
                      str(ts_ms)]).encode()


ORDER_ACK_TAGS = {"wipe": "SC-WIPE-ACK-v1", "logout": "SC-LOGOUT-ACK-v1"}


def order_ack_message(order: str, device_id: str, order_id: str, ts_ms: int) -> bytes:
    """What a device signs to confirm it carried out a wipe or logout order."""
    return "\n".join([ORDER_ACK_TAGS[order], device_id, order_id, str(ts_ms)]).encode()
