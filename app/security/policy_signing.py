"""Signed machine policy: IT's Ed25519 signature over the settings, checked before use.

The signed file is a JSON envelope::

    {"expires": "2027-11-22T00:00:00Z", "policy": {...settings...},
     "signature": "<base64 Ed25519>", "signed_by": "<key id>"}

The signature covers the canonical encoding (:func:`canonical_json`: sorted keys, no spaces,
UTF-8) of ``{"expires", "policy", "signed_by"}``. The file itself must be exactly what the
signing tool wrote (the canonical encoding of the whole envelope, optionally followed by one
newline): a reformatted file is refused too, so that *any* byte changed after signing is
caught, not only the bytes that change a value.

:func:`make_policy_verifier` gives the ``verify`` callable of :func:`app.config.load_policy`.
Every refusal is a :class:`~app.core.errors.PolicyError` whose text says what is wrong and
what IT should do; ``load_policy`` then runs on the safe defaults and reports that text.

The keys the client trusts live in a machine-wide file next to the policy
(:func:`trusted_keys_path`), ``{"keys": {"<key id>": "<base64 raw public key>", ...}}``;
several keys at once let IT rotate (sign with the new key once every machine trusts both).

This module also holds the Ed25519 key-file helpers the IT tools share (``app.tools``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.config import PolicyVerifier, system_policy_path
from app.core.errors import PolicyError

ENVELOPE_KEYS = frozenset({"policy", "signed_by", "expires", "signature"})
SIGN_TOOL = "python -m app.tools.policy sign"


# -- canonical encoding -------------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 (non-ASCII as is), no NaN/Infinity."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
    ).encode("utf-8")


def signed_part(policy: Mapping[str, Any], signed_by: str, expires: str) -> bytes:
    """The exact bytes the signature covers."""
    return canonical_json({"expires": expires, "policy": dict(policy), "signed_by": signed_by})


def format_expires(when: datetime) -> str:
    """ISO-8601 UTC with a ``Z``, to the second."""
    if when.tzinfo is None:
        raise ValueError("expiry must be timezone-aware")
    return when.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- keys ---------------------------------------------------------------------------------


def public_key_b64(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The base64 of the 32 raw public-key bytes (the form trusted-keys.json holds)."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def key_fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """``sha256:`` + the first 32 hex digits of SHA-256 over the raw public key."""
    raw = base64.b64decode(public_key_b64(key))
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:32]


def decode_public_key(text: str) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes, or from a PEM block. ValueError if not."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode("ascii"))
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PKCS#8 PEM file (as ``keygen`` writes it)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read private key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a file: base64 of the raw key (``.pub``) or PEM."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read public key {path}: {exc}") from None
    try:
        return decode_public_key(text)
    except ValueError as exc:
        raise ValueError(f"{path} is not an Ed25519 public key: {exc}") from None


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Create ``path`` readable by its owner only (0600); never overwrite an existing key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_key_pem(key))


# -- trusted keys -------------------------------------------------------------------------


def trusted_keys_path() -> Path:
    """The machine-wide trusted IT keys, next to the policy (see docs/admin-guide.md)."""
    return system_policy_path().with_name("trusted-keys.json")


def parse_trusted_keys(raw: bytes, where: str = "trusted keys") -> dict[str, str]:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise PolicyError(f"{where} is not valid JSON ({exc.__class__.__name__})") from None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, dict):
        raise PolicyError(f'{where} must be a JSON object {{"keys": {{"<key id>": "<base64>"}}}}')
    if not keys:
        raise PolicyError(f"{where} lists no keys: no signed policy can be accepted")
    for key_id, value in keys.items():
        if not key_id or not isinstance(value, str):
            raise PolicyError(f"{where}: key {key_id!r} must map to a base64 public key")
        try:
            decode_public_key(value)
        except ValueError as exc:
            raise PolicyError(
                f"{where}: key {key_id!r} is not an Ed25519 public key ({exc})"
            ) from None
    return dict(keys)


def load_trusted_keys(path: Path | None = None) -> dict[str, str]:
    """``{key id: base64 public key}`` from ``path`` (default :func:`trusted_keys_path`).

    Raises PolicyError naming the file and the problem: missing, unreadable, not JSON,
    wrong shape, empty, or a key that is not an Ed25519 public key.
    """
    path = path or trusted_keys_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(
            f"no trusted IT keys at {path}: a signed policy cannot be checked "
            "(deploy trusted-keys.json next to the policy)"
        ) from None
    except OSError as exc:
        raise PolicyError(f"cannot read trusted IT keys {path}: {exc.strerror}") from None
    return parse_trusted_keys(raw, str(path))


def trusted_keys_json(keys: Mapping[str, str]) -> bytes:
    """The file content for ``keys`` (pretty, stable order)."""
    return (json.dumps({"keys": dict(sorted(keys.items()))}, indent=2) + "\n").encode("utf-8")


# -- signing and verifying ----------------------------------------------------------------


def sign_policy(
    policy: Mapping[str, Any], private_key: Ed25519PrivateKey, key_id: str, expires: datetime,
) -> bytes:
    """The signed policy file's bytes (canonical envelope plus a newline)."""
    if not key_id:
        raise ValueError("key id must not be empty")
    expires_s = format_expires(expires)
    signature = private_key.sign(signed_part(policy, key_id, expires_s))
    envelope = {
        "expires": expires_s,
        "policy": dict(policy),
        "signature": base64.b64encode(signature).decode("ascii"),
        "signed_by": key_id,
    }
    return canonical_json(envelope) + b"\n"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _parse_expires(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise PolicyError(f"policy expiry {text!r} is not an ISO-8601 date and time") from None
    if when.tzinfo is None:
        raise PolicyError(f"policy expiry {text!r} has no time zone (write it in UTC, ...Z)")
    return when


def make_policy_verifier(
    trusted_keys: Mapping[str, str], *, now: Callable[[], datetime] | None = None,
) -> PolicyVerifier:
    """A ``verify`` for :func:`app.config.load_policy` that accepts only signed policies.

    Refused, each with its own message: a file that is not a signed envelope (unsigned), an
    unknown signer, a signature that does not match (any byte changed), a file reformatted
    after signing, an expired policy. The signer returned is the key id.
    ``now`` returns the current time (tests); it defaults to the system clock in UTC.
    Raises PolicyError at once if a trusted key is not an Ed25519 public key.
    """
    clock = now or (lambda: datetime.now(UTC))
    keys: dict[str, Ed25519PublicKey] = {}
    for key_id, value in trusted_keys.items():
        try:
            keys[key_id] = decode_public_key(value)
        except ValueError as exc:
            raise PolicyError(
                f"trusted key {key_id!r} is not an Ed25519 public key ({exc})"
            ) from None

    def verify(raw: bytes) -> tuple[Mapping[str, Any], str]:
        try:
            data = json.loads(raw, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise PolicyError(
                f"policy is not valid JSON ({exc.__class__.__name__}); "
                "the file is damaged or was edited after signing"
            ) from None
        if not isinstance(data, dict) or "signature" not in data:
            raise PolicyError(
                f"policy is not signed: this machine accepts only a policy signed by IT "
                f"(`{SIGN_TOOL}`)"
            )
        extra = sorted(set(data) - ENVELOPE_KEYS)
        missing = sorted(ENVELOPE_KEYS - set(data))
        if extra or missing:
            detail = "; ".join(
                part for part in (
                    f"unexpected field(s) {', '.join(extra)}" if extra else "",
                    f"missing field(s) {', '.join(missing)}" if missing else "",
                ) if part
            )
            raise PolicyError(f"signed policy envelope is malformed: {detail}")
        policy, signed_by = data["policy"], data["signed_by"]
        expires, signature = data["expires"], data["signature"]
        if not (isinstance(policy, dict) and isinstance(signed_by, str)
                and isinstance(expires, str) and isinstance(signature, str)):
            raise PolicyError(
                "signed policy envelope is malformed: policy must be an object; "
                "signed_by, expires and signature must be strings"
            )
        key = keys.get(signed_by)
        if key is None:
            trusted = ", ".join(sorted(keys)) or "none"
            raise PolicyError(
                f"policy is signed by unknown key {signed_by!r} (this machine trusts: "
                f"{trusted}); add the key to trusted-keys.json or re-sign with a trusted key"
            )
        try:
            sig = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            sig = b""
        if base64.b64encode(sig).decode("ascii") != signature:
            sig = b""  # only the one canonical spelling: unused low bits may not vary
        try:
            if len(sig) != 64:
                raise InvalidSignature
            key.verify(sig, signed_part(policy, signed_by, expires))
        except InvalidSignature:
            raise PolicyError(
                f"policy signature does not verify with key {signed_by!r}: the policy was "
                "changed after signing (or signed with another key)"
            ) from None
        if raw not in (canonical_json(data), canonical_json(data) + b"\n"):
            raise PolicyError(
                "signed policy file was reformatted or edited after signing: deploy the "
                "file exactly as the signing tool wrote it"
            )
        when = _parse_expires(expires)
        current = clock()
        if current >= when:
            raise PolicyError(
                f"policy expired at {format_expires(when)} (now {format_expires(current)}): "
                "IT must sign a fresh one"
            )
        return policy, signed_by

    return verify


def system_policy_verifier(
    path: Path | None = None, *, now: Callable[[], datetime] | None = None,
) -> PolicyVerifier:
    """The verifier for this machine: trusted keys from ``path`` (default the system file).

    If the trusted keys cannot be loaded, the returned verifier refuses every policy with
    that reason -- so :func:`app.config.load_policy` falls back to defaults and reports why.
    """
    try:
        keys = load_trusted_keys(path)
        return make_policy_verifier(keys, now=now)
    except PolicyError as exc:
        reason = str(exc)

        def refuse(raw: bytes) -> tuple[Mapping[str, Any], str]:
            raise PolicyError(reason)

        return refuse
