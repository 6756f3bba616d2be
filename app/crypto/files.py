"""Chunked AEAD for files, recordings and exports: AES-256-GCM, or SM4-GCM where policy asks.

Format (all integers big-endian)::

    header  = "SCF1" | suite:u8 | chunk_size:u32 | length:u64 | file_id:16 | nonce_prefix:8
    chunk_i = GCM(key, nonce = nonce_prefix | i:u32,
                  aad = header | i:u64 | count:u64, plaintext_i) -> ciphertext_i | tag:16

Every chunk is a full ``chunk_size`` of plaintext except the last; an empty file still has
one (empty) chunk so that it is authenticated too. The associated data binds each chunk to
its file (the whole header: id, suite, sizes), its position and the chunk count, so a chunk
cannot be reordered, swapped in from another file, dropped, or followed by extra chunks
without the tag check failing. The key is per file; the random nonce prefix keeps nonces
unique even if a caller reused a key by mistake.

Streaming: memory use is one chunk whatever the file size. A decrypted chunk is released
only after its own tag verified; a truncation is reported when it is reached, so a caller
that streams must discard what it received when :class:`FileTampered` is raised.
"""

from __future__ import annotations

import io
import math
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core.errors import SafeConsultError

MAGIC = b"SCF1"
_HEADER = struct.Struct(">4sBIQ16s8s")
HEADER_SIZE = _HEADER.size
TAG_SIZE = 16
DEFAULT_CHUNK = 256 * 1024
MAX_CHUNK = 16 * 1024 * 1024  # refuse absurd sizes from a crafted header before allocating
MAX_CHUNKS = 2**32  # the chunk index fills the nonce's last 4 bytes

SUITES = {"aes-256-gcm": 1, "sm4-gcm": 2}
_KEY_SIZES = {1: 32, 2: 16}  # SM4 is a 128-bit cipher


class FileCryptoError(SafeConsultError):
    user_message = "The file could not be encrypted or decrypted."


class FileTampered(FileCryptoError):
    user_message = (
        "This file is damaged or has been tampered with, so it was not opened. "
        "Download it again; tell IT if it happens again."
    )


class UnsupportedSuite(FileCryptoError):
    user_message = (
        "The encryption suite required by this machine's policy is not available in this "
        "installation. Contact IT."
    )


@dataclass(frozen=True)
class FileHeader:
    suite: int
    chunk_size: int
    length: int
    file_id: bytes
    nonce_prefix: bytes

    def pack(self) -> bytes:
        return _HEADER.pack(
            MAGIC, self.suite, self.chunk_size, self.length, self.file_id, self.nonce_prefix,
        )

    @property
    def chunk_count(self) -> int:
        return max(1, math.ceil(self.length / self.chunk_size))

    def encrypted_size(self) -> int:
        return HEADER_SIZE + self.length + self.chunk_count * TAG_SIZE

    @classmethod
    def unpack(cls, data: bytes) -> FileHeader:
        if len(data) != HEADER_SIZE:
            raise FileTampered("file shorter than its header")
        magic, suite, chunk_size, length, file_id, prefix = _HEADER.unpack(data)
        if magic != MAGIC:
            raise FileTampered("not a SafeConsult encrypted file")
        if suite not in _KEY_SIZES:
            raise FileTampered(f"unknown suite id {suite}")
        if not 1 <= chunk_size <= MAX_CHUNK:
            raise FileTampered("chunk size out of range")
        header = cls(suite, chunk_size, length, file_id, prefix)
        if header.chunk_count > MAX_CHUNKS:
            raise FileTampered("too many chunks")
        return header


def suite_id(name: str) -> int:
    try:
        suite = SUITES[name]
    except KeyError:
        raise UnsupportedSuite(f"unknown crypto suite {name!r}") from None
    _check_available(suite)
    return suite


def _check_available(suite: int) -> None:
    if suite == 2:
        try:
            _Sm4Gcm(bytes(16)).encrypt(bytes(12), b"", b"")
        except UnsupportedAlgorithm:
            raise UnsupportedSuite("SM4-GCM is not offered by this cryptography/OpenSSL") from None


def new_file_key(suite: str = "aes-256-gcm") -> bytes:
    return secrets.token_bytes(_KEY_SIZES[suite_id(suite)])


class _Sm4Gcm:
    """SM4-GCM through the Cipher API, shaped like ``AESGCM`` (ciphertext | tag)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        enc = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(aad)
        return enc.update(data) + enc.finalize() + enc.tag

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        if len(data) < TAG_SIZE:
            raise InvalidTag
        dec = Cipher(
            algorithms.SM4(self._key), modes.GCM(nonce, data[-TAG_SIZE:]),
        ).decryptor()
        dec.authenticate_additional_data(aad)
        return dec.update(data[:-TAG_SIZE]) + dec.finalize()


def _aead(suite: int, key: bytes) -> AESGCM | _Sm4Gcm:
    if len(key) != _KEY_SIZES[suite]:
        raise FileCryptoError(f"key must be {_KEY_SIZES[suite]} bytes for this suite")
    _check_available(suite)
    return AESGCM(key) if suite == 1 else _Sm4Gcm(key)


def _nonce(header: FileHeader, index: int) -> bytes:
    return header.nonce_prefix + struct.pack(">I", index)


def _aad(header_bytes: bytes, index: int, count: int) -> bytes:
    return header_bytes + struct.pack(">QQ", index, count)


def _read_exact(src: BinaryIO, size: int) -> bytes:
    parts, remaining = [], size
    while remaining:
        part = src.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def encrypt_stream(
    src: BinaryIO, dst: BinaryIO, key: bytes, *, length: int, suite: str = "aes-256-gcm",
    chunk_size: int = DEFAULT_CHUNK, file_id: bytes | None = None,
) -> FileHeader:
    """Encrypt exactly ``length`` bytes from ``src`` into ``dst``, one chunk at a time."""
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise FileCryptoError("chunk size out of range")
    header = FileHeader(
        suite_id(suite), chunk_size, length, file_id or secrets.token_bytes(16),
        secrets.token_bytes(8),
    )
    if len(header.file_id) != 16:
        raise FileCryptoError("file id must be 16 bytes")
    if header.chunk_count > MAX_CHUNKS:
        raise FileCryptoError("file too large for this chunk size")
    aead = _aead(header.suite, key)
    header_bytes = header.pack()
    dst.write(header_bytes)
    count = header.chunk_count
    for index in range(count):
        size = min(chunk_size, length - index * chunk_size)
        plain = _read_exact(src, size)
        if len(plain) != size:
            raise FileCryptoError("source ended before the stated length")
        dst.write(aead.encrypt(_nonce(header, index), plain, _aad(header_bytes, index, count)))
    return header


def decrypt_chunks(src: BinaryIO, key: bytes) -> Iterator[bytes]:
    """Yield the plaintext chunk by chunk; raise :class:`FileTampered` on any change."""
    header_bytes = _read_exact(src, HEADER_SIZE)
    header = FileHeader.unpack(header_bytes)
    aead = _aead(header.suite, key)
    count = header.chunk_count
    for index in range(count):
        size = min(header.chunk_size, header.length - index * header.chunk_size)
        sealed = _read_exact(src, size + TAG_SIZE)
        if len(sealed) != size + TAG_SIZE:
            raise FileTampered(f"file truncated at chunk {index} of {count}")
        try:
            yield aead.decrypt(_nonce(header, index), sealed, _aad(header_bytes, index, count))
        except InvalidTag:
            raise FileTampered(f"chunk {index} of {count} failed authentication") from None
    if src.read(1):
        raise FileTampered("data after the last chunk")


def decrypt_stream(src: BinaryIO, dst: BinaryIO, key: bytes) -> int:
    """Decrypt into ``dst``; returns the plaintext length. On error ``dst`` holds a prefix."""
    total = 0
    for chunk in decrypt_chunks(src, key):
        dst.write(chunk)
        total += len(chunk)
    return total


def encrypt_bytes(data: bytes, key: bytes, **options: object) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key, length=len(data), **options)  # type: ignore[arg-type]
    return out.getvalue()


def decrypt_bytes(blob: bytes, key: bytes) -> bytes:
    return b"".join(decrypt_chunks(io.BytesIO(blob), key))


def read_header(src: BinaryIO) -> FileHeader:
    return FileHeader.unpack(_read_exact(src, HEADER_SIZE))


class ChunkCipher:
    """One chunk at a time, in any order: the same format as :func:`encrypt_stream`, for
    resumable transfers that upload, download and check chunks independently.

    ``seal(i, plain)`` gives exactly the bytes :func:`encrypt_stream` writes for chunk ``i``
    (GCM is deterministic for a fixed key, nonce and input), so a transfer can encrypt a
    chunk again after a restart instead of keeping ciphertext on disk. A caller doing so must
    check that the plaintext is the same as the first time (e.g. by comparing the tag), or it
    would reuse a nonce for different data.
    """

    def __init__(self, header: FileHeader, key: bytes) -> None:
        self.header = header
        self.header_bytes = header.pack()
        self.count = header.chunk_count
        self._aead = _aead(header.suite, key)

    @classmethod
    def new(cls, key: bytes, *, length: int, suite: str = "aes-256-gcm",
            chunk_size: int = DEFAULT_CHUNK, file_id: bytes | None = None) -> ChunkCipher:
        if not 1 <= chunk_size <= MAX_CHUNK:
            raise FileCryptoError("chunk size out of range")
        header = FileHeader(suite_id(suite), chunk_size, length,
                            file_id or secrets.token_bytes(16), secrets.token_bytes(8))
        if len(header.file_id) != 16:
            raise FileCryptoError("file id must be 16 bytes")
        if header.chunk_count > MAX_CHUNKS:
            raise FileCryptoError("file too large for this chunk size")
        return cls(header, key)

    def plain_size(self, index: int) -> int:
        size = self.header.chunk_size
        return min(size, self.header.length - index * size)

    def sealed_size(self, index: int) -> int:
        return self.plain_size(index) + TAG_SIZE

    def plain_offset(self, index: int) -> int:
        return index * self.header.chunk_size

    def sealed_offset(self, index: int) -> int:
        """Where chunk ``index`` starts in the encrypted stream, header excluded."""
        return index * (self.header.chunk_size + TAG_SIZE)

    @property
    def sealed_length(self) -> int:
        """All chunks, header excluded."""
        return self.header.encrypted_size() - HEADER_SIZE

    def _check(self, index: int) -> None:
        if not 0 <= index < self.count:
            raise FileCryptoError("chunk index out of range")

    def seal(self, index: int, plain: bytes) -> bytes:
        self._check(index)
        if len(plain) != self.plain_size(index):
            raise FileCryptoError("chunk has the wrong length")
        return self._aead.encrypt(_nonce(self.header, index), plain,
                                  _aad(self.header_bytes, index, self.count))

    def open(self, index: int, sealed: bytes) -> bytes:
        """The plaintext of chunk ``index``, or :class:`FileTampered`."""
        self._check(index)
        if len(sealed) != self.sealed_size(index):
            raise FileTampered(f"chunk {index} of {self.count} has the wrong length")
        try:
            return self._aead.decrypt(_nonce(self.header, index), sealed,
                                      _aad(self.header_bytes, index, self.count))
        except InvalidTag:
            raise FileTampered(f"chunk {index} of {self.count} failed authentication") from None
