"""The attachment descriptor: what travels inside the E2EE room message for a file.

It names the blob on the server and carries everything needed to fetch, check and open it:
the per-file key, the encrypted file's header (suite, chunk size, length, file id, nonce
prefix -- all bound into every chunk's associated data), the SHA-256 of the ciphertext as
the server holds it, and the file's name and type (patient data: :class:`Phi`). The sending
device signs it with its Ed25519 identity key; the receiver checks that signature against
the key *it* knows for the sending device before it fetches a byte (docs/e2ee.md,
"Attachments").

Wire form (JSON, all fields required, no others)::

    {"type": "sc.file.v1", "room_id", "blob_id", "sender_user", "sender_device",
     "key": b64, "header": b64, "size": int, "sha256": hex, "name", "mime", "ts_ms": int,
     "signature": b64}

Signed bytes: ``SC-FILE-v1\\n`` followed by the canonical JSON (sorted keys, no spaces,
UTF-8) of every field but ``signature``.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.core.phi import Phi
from app.crypto.files import HEADER_SIZE, TAG_SIZE, FileCryptoError, FileHeader
from app.crypto.identity import b64, unb64, verify_ed25519
from app.crypto.messages import canonical_json
from app.net.blob_api import MAX_BLOB_BYTES, MAX_CHUNK_BYTES
from app.services.transfers.errors import DescriptorInvalid, ManifestSignatureInvalid

DESCRIPTOR_TYPE = "sc.file.v1"
SIGNATURE_CONTEXT = b"SC-FILE-v1\n"
MAX_DESCRIPTOR_CHARS = 16 * 1024
MAX_NAME = 255
MAX_MIME = 127
DEFAULT_MIME = "application/octet-stream"

_FIELDS = frozenset({
    "type", "room_id", "blob_id", "sender_user", "sender_device", "key", "header", "size",
    "sha256", "name", "mime", "ts_ms", "signature",
})
_ID = re.compile(r"^[A-Za-z0-9._~:-]{1,128}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MIME_PATTERN = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,63}/[A-Za-z0-9!#$&^_.+-]{1,63}$")
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
_KEY_SIZES = {1: 32, 2: 16}


class SenderDevice(Protocol):
    """The device a descriptor claims to come from, as the receiver knows it (e.g. the
    :class:`app.crypto.store.DeviceRecord` of the Megolm sender): never the server's word."""

    @property
    def user_id(self) -> str: ...
    @property
    def device_id(self) -> str: ...
    @property
    def ed25519(self) -> str: ...


@dataclass(frozen=True, slots=True)
class KnownDevice:
    """A plain :class:`SenderDevice`."""

    user_id: str
    device_id: str
    ed25519: str


@dataclass(frozen=True, slots=True)
class AttachmentDescriptor:
    room_id: str
    blob_id: str
    sender_user: str
    sender_device: str
    key: bytes = field(repr=False)
    header: FileHeader = field(repr=False)
    sha256: str  # hex, of the chunks as the server stores them (header excluded)
    name: Phi[str]
    mime: Phi[str]
    ts_ms: int
    signature: str = field(repr=False)

    # -- sizes -----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Plaintext bytes."""
        return self.header.length

    @property
    def chunk_count(self) -> int:
        return self.header.chunk_count

    @property
    def blob_size(self) -> int:
        """Ciphertext bytes on the server: every chunk with its tag."""
        return self.header.encrypted_size() - HEADER_SIZE

    @property
    def blob_chunk_size(self) -> int:
        return self.header.chunk_size + TAG_SIZE

    # -- wire ------------------------------------------------------------------------------

    def unsigned_wire(self) -> dict[str, Any]:
        return {
            "type": DESCRIPTOR_TYPE, "room_id": self.room_id, "blob_id": self.blob_id,
            "sender_user": self.sender_user, "sender_device": self.sender_device,
            "key": b64(self.key), "header": b64(self.header.pack()), "size": self.size,
            "sha256": self.sha256, "name": self.name.reveal(), "mime": self.mime.reveal(),
            "ts_ms": self.ts_ms,
        }

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready; put it in the E2EE message content as is."""
        return {**self.unsigned_wire(), "signature": self.signature}

    def to_json(self) -> str:
        return canonical_json(self.to_wire()).decode()

    def signed_bytes(self) -> bytes:
        return SIGNATURE_CONTEXT + canonical_json(self.unsigned_wire())

    # -- signing ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls, *, room_id: str, blob_id: str, sender_user: str, sender_device: str, key: bytes,
        header: FileHeader, sha256: str, name: str, mime: str, ts_ms: int,
        sign: Callable[[bytes], str],
    ) -> AttachmentDescriptor:
        """A descriptor signed by ``sign`` (the sending device's Ed25519 key)."""
        unsigned = cls(room_id, blob_id, sender_user, sender_device, key, header, sha256,
                       Phi(name), Phi(mime), ts_ms, "")
        signed = cls(room_id, blob_id, sender_user, sender_device, key, header, sha256,
                     Phi(name), Phi(mime), ts_ms, sign(unsigned.signed_bytes()))
        # Parse our own output: what we send must be what a receiver accepts.
        return parse_descriptor(signed.to_wire())

    def verify(self, sender: SenderDevice) -> None:
        """Raise :class:`ManifestSignatureInvalid` unless ``sender`` is the device named in
        the descriptor and its Ed25519 key signed it."""
        if sender.user_id != self.sender_user or sender.device_id != self.sender_device:
            raise ManifestSignatureInvalid("descriptor names another sender device")
        self.verify_key(sender.ed25519)

    def verify_key(self, ed25519: str) -> None:
        if not verify_ed25519(ed25519, self.signed_bytes(), self.signature):
            raise ManifestSignatureInvalid("descriptor signature does not verify")


# -- parsing --------------------------------------------------------------------------------

def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DescriptorInvalid("duplicate field in descriptor")
        out[key] = value
    return out


def _no_constants(_name: str) -> Any:
    raise DescriptorInvalid("descriptor holds a non-finite number")


def _load(data: str | bytes) -> Any:
    if len(data) > MAX_DESCRIPTOR_CHARS:
        raise DescriptorInvalid("descriptor too long")
    try:
        return json.loads(data, object_pairs_hook=_reject_duplicates,
                          parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise DescriptorInvalid("descriptor is not JSON") from None


def _str(data: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise DescriptorInvalid(f"descriptor field {name!r} missing or not a string")
    if pattern is not None and not pattern.match(value):
        raise DescriptorInvalid(f"descriptor field {name!r} malformed")
    return value


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise DescriptorInvalid(f"descriptor field {name!r} missing or not a count")
    return value


def _bytes(data: Mapping[str, Any], name: str) -> bytes:
    text = _str(data, name)
    try:
        return unb64(text)
    except (binascii.Error, ValueError):
        raise DescriptorInvalid(f"descriptor field {name!r} is not base64") from None


def parse_descriptor(data: Mapping[str, Any] | str | bytes) -> AttachmentDescriptor:
    """A descriptor from its wire form, or :class:`DescriptorInvalid` (with a message that
    names the field, never its value). Does not check the signature: call ``verify``."""
    if isinstance(data, (str, bytes, bytearray)):
        data = _load(bytes(data) if isinstance(data, bytearray) else data)
    if not isinstance(data, Mapping):
        raise DescriptorInvalid("descriptor is not an object")
    if set(data) != _FIELDS:
        missing, extra = _FIELDS - set(data), set(data) - _FIELDS
        raise DescriptorInvalid(
            f"descriptor fields wrong (missing {len(missing)}, unknown {len(extra)})")
    if data["type"] != DESCRIPTOR_TYPE:
        raise DescriptorInvalid("not a file descriptor of a known version")
    try:
        header = FileHeader.unpack(_bytes(data, "header"))
    except FileCryptoError:
        raise DescriptorInvalid("descriptor header malformed") from None
    key = _bytes(data, "key")
    if len(key) != _KEY_SIZES.get(header.suite, -1):
        raise DescriptorInvalid("descriptor key has the wrong length for its suite")
    size = _int(data, "size")
    if size != header.length:
        raise DescriptorInvalid("descriptor size does not match its header")
    if header.chunk_size + TAG_SIZE > MAX_CHUNK_BYTES:
        raise DescriptorInvalid("descriptor chunk size too large")
    if header.encrypted_size() - HEADER_SIZE > MAX_BLOB_BYTES:
        raise DescriptorInvalid("descriptor file too large")
    name = _str(data, "name")
    if not 1 <= len(name) <= MAX_NAME or _BAD_NAME.search(name) or name in (".", ".."):
        raise DescriptorInvalid("descriptor file name malformed")
    try:
        name.encode()
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 form, so nothing to verify
        raise DescriptorInvalid("descriptor file name malformed") from None
    signature = _str(data, "signature")
    try:
        if len(unb64(signature)) != 64:
            raise DescriptorInvalid("descriptor signature malformed")
    except (binascii.Error, ValueError):
        raise DescriptorInvalid("descriptor signature malformed") from None
    return AttachmentDescriptor(
        room_id=_str(data, "room_id", _ID), blob_id=_str(data, "blob_id", _ID),
        sender_user=_str(data, "sender_user", _ID),
        sender_device=_str(data, "sender_device", _ID), key=key, header=header,
        sha256=_str(data, "sha256", _HEX64), name=Phi(name),
        mime=Phi(_str(data, "mime", MIME_PATTERN)), ts_ms=_int(data, "ts_ms"), signature=signature,
    )
