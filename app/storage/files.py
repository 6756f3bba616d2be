"""Encrypted files at rest (downloads, DICOM, recordings) beside the cache.

Each file has its own key, kept in the cache's secrets table -- never beside the file -- so
that losing the cache key (wipe, kiosk crash, rebuild) makes every file unreadable at once.
Deleting one file deletes its key first: the ciphertext left behind by a crash is noise.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from app.crypto.files import decrypt_chunks, encrypt_stream, new_file_key
from app.storage.cache import FILES_DIR, Cache
from app.storage.errors import CacheDiskFull
from app.storage.secrets import SecretRepository

_PREFIX = "file:"
SUFFIX = ".scf"


class FileNotCached(KeyError):
    """No key for that file id in this cache (deleted, or from another cache)."""


class EncryptedFileStore:
    def __init__(self, cache: Cache, *, suite: str = "aes-256-gcm") -> None:
        self._secrets = SecretRepository(cache)
        self._dir = cache.directory / FILES_DIR
        self._suite = suite

    def _path(self, file_id: str) -> Path:
        if len(file_id) != 32 or not all(c in "0123456789abcdef" for c in file_id):
            raise ValueError("file id must be 32 lowercase hex characters")
        return self._dir / f"{file_id}{SUFFIX}"

    def put(self, src: BinaryIO, length: int) -> str:
        """Encrypt ``length`` bytes from ``src`` into the store; returns the new file id."""
        raw_id = secrets.token_bytes(16)
        file_id = raw_id.hex()
        key = new_file_key(self._suite)
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self._path(file_id)
        part = final.with_suffix(".part")
        # The key goes in first: a crash leaves at worst a key without a file, never a file
        # whose key was not stored (which would be lost data).
        self._secrets.put(_PREFIX + file_id, key)
        try:
            with open(part, "wb") as out:
                encrypt_stream(src, out, key, length=length, suite=self._suite, file_id=raw_id)
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, final)
        except BaseException as exc:
            part.unlink(missing_ok=True)
            self._secrets.delete(_PREFIX + file_id)
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise CacheDiskFull("encrypted file store: no space left") from None
            raise
        return file_id

    def open(self, file_id: str) -> Iterator[bytes]:
        """The plaintext, chunk by chunk (raises FileTampered if the file was changed)."""
        key = self._secrets.get(_PREFIX + file_id)
        if key is None:
            raise FileNotCached(file_id)
        path = self._path(file_id)
        with open(path, "rb") as src:
            yield from decrypt_chunks(src, key)

    def read(self, file_id: str) -> bytes:
        return b"".join(self.open(file_id))

    def sealed_path(self, file_id: str) -> Path:
        """Where the file's ciphertext lives (e.g. to upload it sealed as it is)."""
        return self._path(file_id)

    def key(self, file_id: str) -> bytes | None:
        """The file's key (for sharing it inside an end-to-end encrypted channel only)."""
        return self._secrets.get(_PREFIX + file_id)

    def delete(self, file_id: str) -> None:
        self._secrets.delete(_PREFIX + file_id)  # crypto-erase first
        self._path(file_id).unlink(missing_ok=True)

    def ids(self) -> list[str]:
        return [name[len(_PREFIX):] for name in self._secrets.names(_PREFIX)]

    def remove_orphans(self) -> int:
        """Delete files whose key is gone (after a crash mid-delete) and stale ``.part`` files."""
        if not self._dir.exists():
            return 0
        known = set(self.ids())
        removed = 0
        for path in self._dir.iterdir():
            if path.suffix == SUFFIX and path.stem in known:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        return removed
