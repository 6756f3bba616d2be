"""Server-side security primitives: passwords, TOTP, tokens, signatures, request proofs,
login throttling. Pure functions plus two small thread-safe objects; no database, no HTTP.

The byte strings signed by devices are defined here once for the server (the client's
matching definitions are in app/crypto; docs/protocol.md is the contract between them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def now_ms() -> int:
    return int(time.time() * 1000)


# --- identifiers, tokens, encodings -------------------------------------------------------

ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")  # 16 bytes, unpadded URL-safe base64
NONCE_RE = ID_RE
B64_RE = re.compile(r"^[A-Za-z0-9+/]+$")


def new_id() -> str:
    """128 random bits, unpadded URL-safe base64: unguessable, so ids leak nothing. Never
    starting with ``-``: IT types ids into the admin command line, where that reads as an
    option."""
    while True:
        value = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not value.startswith("-"):
            return value


def new_token() -> str:
    """An opaque bearer/refresh token: 256 random bits."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database stores instead of a token (and what proofs commit to)."""
    return hashlib.sha256(token.encode()).hexdigest()


def unb64(text: str) -> bytes | None:
    """Strict unpadded standard base64, or None when it is not that."""
    if not isinstance(text, str) or not B64_RE.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def is_key_b64(text: str) -> bool:
    """A raw 32-byte public key (Ed25519 or Curve25519) in unpadded standard base64."""
    raw = unb64(text)
    return raw is not None and len(raw) == 32 and "=" not in text


def verify_ed25519(public_key_b64: str, message: bytes, signature_b64: str) -> bool:
    key_raw, sig_raw = unb64(public_key_b64), unb64(signature_b64)
    if key_raw is None or sig_raw is None or len(key_raw) != 32 or len(sig_raw) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(key_raw).verify(sig_raw, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- signed messages (docs/protocol.md) ----------------------------------------------------

def enrollment_message(
    device_id: str, username: str, ed25519: str, curve25519: str, ts_ms: int,
) -> bytes:
    return "\n".join(
        ["SC-ENROLL-v1", device_id, username, ed25519, curve25519, str(ts_ms)]
    ).encode()


def order_ack_message(order: str, device_id: str, order_id: str, ts_ms: int) -> bytes:
    tag = {"wipe": "SC-WIPE-ACK-v1", "logout": "SC-LOGOUT-ACK-v1"}[order]
    return "\n".join([tag, device_id, order_id, str(ts_ms)]).encode()


def one_time_key_message(device_id: str, key_id: str, key: str) -> bytes:
    return "\n".join(["SC-OTK-v1", device_id, key_id, key]).encode()


# --- passwords ---------------------------------------------------------------------------

# OWASP's argon2id baseline (19 MiB, t=2, p=1). Hashing is memory-hard, so at most a few run
# at once: 50 parallel logins must not take 50 x 19 MiB or starve the event loop's threads.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_HASH_SLOTS = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))
_DUMMY_HASH: str | None = None
_DUMMY_LOCK = threading.Lock()


def hash_password(password: str) -> str:
    with _HASH_SLOTS:
        return _HASHER.hash(password)


def warm_up() -> None:
    """Compute the dummy hash now, so the first unknown-user login is not the slow one."""
    _dummy_hash()


def _dummy_hash() -> str:
    global _DUMMY_HASH
    with _DUMMY_LOCK:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(24))
        return _DUMMY_HASH


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant work whether or not the user exists: an unknown user is checked against a
    dummy hash with the same parameters, so timing does not reveal the account."""
    target = stored_hash if stored_hash is not None else _dummy_hash()
    with _HASH_SLOTS:
        try:
            ok = _HASHER.verify(target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
    return ok and stored_hash is not None


def password_problem(password: str) -> str | None:
    """NIST 800-63B: length, not composition rules."""
    if len(password) < 12:
        return "password must be at least 12 characters"
    if len(password) > 256:
        return "password must be at most 256 characters"
    return None


# --- TOTP (RFC 6238: SHA-1, 30 s, 6 digits) ------------------------------------------------

TOTP_PERIOD_S = 30
TOTP_ISSUER = "SafeConsult"
TOTP_CODE_RE = re.compile(r"^[0-9]{6}$")


def new_totp_secret() -> str:
    return pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended length


def otpauth_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def totp_step(now_s: float) -> int:
    return int(now_s // TOTP_PERIOD_S)


def match_totp_step(secret: str, code: str, now_s: float, last_step: int) -> int | None:
    """The step (within +-1 of now) whose code is ``code`` and that is newer than
    ``last_step``; None otherwise. Requiring a *newer* step makes every code single-use and
    also refuses older codes once a newer one was used (RFC 6238 section 5.2)."""
    if not TOTP_CODE_RE.fullmatch(code or ""):
        return None
    totp = pyotp.TOTP(secret)
    current = totp_step(now_s)
    found = None
    for step in (current - 1, current, current + 1):
        # Compare every candidate so the work does not depend on which one matches.
        if hmac.compare_digest(totp.at(step * TOTP_PERIOD_S), code) and step > last_step:
            found = step
    return found


# --- secrets the server must read back (TOTP seeds) ----------------------------------------

class SecretBox:
    """AES-256-GCM for small secrets kept in the database but needed in clear (TOTP seeds):
    a copy of the database alone does not yield them. ``context`` (e.g. the username) is
    bound as associated data, so a sealed value moved to another row does not open."""

    PREFIX = "v1."

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("secret box key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return self.PREFIX + base64.b64encode(sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        """Raises ValueError when the value is not one this box sealed for ``context``."""
        if not sealed.startswith(self.PREFIX):
            raise ValueError("not a sealed value")
        try:
            raw = base64.b64decode(sealed[len(self.PREFIX):], validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except Exception:
            raise ValueError("sealed value does not open") from None


@lru_cache(maxsize=8)
def secret_box(data_dir: Path) -> SecretBox:
    """The data directory's box; its key is created once (mode 0600) in ``DATA/keys/``.
    Created with link(2), so a server and an admin command starting together agree."""
    path = data_dir / "keys" / "secrets.key"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        tmp = path.with_name(f".secrets.key.{secrets.token_hex(8)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return SecretBox(path.read_bytes())


# --- request proof (docs/protocol.md, "Request proof") ------------------------------------

@dataclass(frozen=True)
class Proof:
    ts_ms: int
    nonce: str
    signature: str


class ProofError(Exception):
    """``code`` is the protocol error code: proof_invalid or proof_replayed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_proof(header: str | None) -> Proof:
    if not header or len(header) > 512:
        raise ProofError("proof_invalid", "missing or oversized request proof")
    parts = header.split(".")
    if len(parts) != 4 or parts[0] != "v1":
        raise ProofError("proof_invalid", "malformed request proof")
    _, ts, nonce, signature = parts
    if not ts.isdigit() or len(ts) > 16 or not NONCE_RE.fullmatch(nonce):
        raise ProofError("proof_invalid", "malformed request proof")
    return Proof(int(ts), nonce, signature)


def proof_message(
    method: str, path: str, ts_ms: int, nonce: str, body: bytes, token: str,
) -> bytes:
    token_digest = token_hash(token) if token else ""
    return "\n".join(
        ["SC-PROOF-v1", method.upper(), path, str(ts_ms), nonce,
         hashlib.sha256(body).hexdigest(), token_digest]
    ).encode()


def check_proof_signature(
    proof: Proof, *, ed25519: str, method: str, path: str, body: bytes, token: str,
    window_ms: int, now: int,
) -> None:
    """Freshness and signature; the nonce's uniqueness is the caller's (database) check."""
    if abs(now - proof.ts_ms) > window_ms:
        raise ProofError("proof_invalid", "request proof is outside the time window")
    message = proof_message(method, path, proof.ts_ms, proof.nonce, body, token)
    if not verify_ed25519(ed25519, message, proof.signature):
        raise ProofError("proof_invalid", "request proof does not verify")


# --- login throttling -----------------------------------------------------------------------

BACKOFF_CAP_MS = 30_000


def backoff_ms(failures: int, base_ms: int) -> int:
    """Delay before the next attempt after ``failures`` consecutive failures: none after the
    first (a typo), then base, 2*base, 4*base ... capped."""
    if failures <= 1 or base_ms <= 0:
        return 0
    return min(BACKOFF_CAP_MS, base_ms << min(failures - 2, 20))


class SourceLimiter:
    """Failed attempts per source address in a sliding window, in memory: it protects the
    process's CPU (argon2) against one noisy address; per-account limits are in the DB."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, deque[float]] = {}

    def _trim(self, source: str, now_s: float, window_s: float) -> deque[float]:
        events = self._events.setdefault(source, deque())
        while events and events[0] <= now_s - window_s:
            events.popleft()
        return events

    def retry_after_s(self, source: str, limit: int, window_s: float) -> int:
        """Seconds to wait, or 0 when the address may try now."""
        now_s = time.monotonic()
        with self._lock:
            events = self._trim(source, now_s, window_s)
            if len(events) < limit:
                return 0
            return max(1, int(events[0] + window_s - now_s) + 1)

    def record_failure(self, source: str, window_s: float) -> None:
        now_s = time.monotonic()
        with self._lock:
            self._trim(source, now_s, window_s).append(now_s)
            if len(self._events) > 10_000:  # forget idle addresses
                for key in [k for k, v in self._events.items() if not v]:
                    del self._events[key]
