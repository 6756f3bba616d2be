"""Where an upload reads its plaintext from: a file the user picked, bytes in memory, or a
file in the encrypted file store -- never a plaintext file written for the upload.

Every source answers ``read_at(size, offset)`` from the engine's worker threads (several at
once) with at most ``size`` bytes, so the engine encrypts chunk by chunk whatever the source.
What the transfer's row keeps to find the source again (``source``, a :class:`Phi` in the
encrypted cache) and what resume means:

* a path (absolute): a file the user picked; resumable after a restart while its size and
  modification time (``source_stamp``) are unchanged;
* ``store:<file id>``: a file in the :class:`EncryptedFileStore` (ciphertext at rest under a
  key in the cache), decrypted chunk by chunk in memory, re-encrypted under the transfer's
  own key: resumable after a restart like a path (the stamp is the sealed file's);
* ``memory:``: bytes the caller holds (a de-identified copy, a snapshot). The engine keeps
  them while the transfer is unfinished in this process, so a dropped connection resumes;
  after a restart they are gone and the transfer ends as failed (``source_gone``) -- the
  caller supplies them again (a new upload). A caller that must survive a restart puts the
  bytes in the encrypted file store and uploads ``store:`` instead.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from app.crypto.files import HEADER_SIZE, ChunkCipher, FileHeader, FileTampered
from app.services.transfers.errors import SourceChanged, SourceGone, SourceUnreadable
from app.services.transfers.fileio import PositionalFile

if TYPE_CHECKING:
    from app.storage.files import EncryptedFileStore
    from app.storage.transfers import TransferRecord

MEMORY = "memory:"
STORE = "store:"


def stamp(st: os.stat_result) -> str:
    """What tells a source file changed between runs: its size and modification time."""
    return f"{st.st_size}:{st.st_mtime_ns}"


class UploadSource(Protocol):
    size: int

    def read_at(self, size: int, offset: int) -> bytes | memoryview:
        """Up to ``size`` plaintext bytes at ``offset`` (short only at the end); callable
        from several threads at once. A memoryview is valid until this thread's next call."""
        ...

    def close(self) -> None: ...


class PathSource:
    """A file the user picked (plaintext the user already keeps on disk)."""

    def __init__(self, path: str, expected_stamp: str | None) -> None:
        try:
            self._file = PositionalFile(path)
        except OSError:
            raise SourceUnreadable("source file cannot be read") from None
        st = self._file.stat()
        if expected_stamp is not None and stamp(st) != expected_stamp:
            self._file.close()
            raise SourceChanged("source file changed since the transfer began")
        self.size = st.st_size

    def read_at(self, size: int, offset: int) -> memoryview:
        return self._file.read_at(size, offset)

    def close(self) -> None:
        self._file.close()


class MemorySource:
    """Bytes held in memory; nothing is written anywhere."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self.size = len(data)

    def read_at(self, size: int, offset: int) -> memoryview:
        return self._view[offset:offset + size]

    def close(self) -> None:
        self._view.release()


class StoredSource:
    """A file of the encrypted file store, decrypted chunk by chunk in memory."""

    def __init__(self, files: EncryptedFileStore, file_id: str,
                 expected_stamp: str | None) -> None:
        key = files.key(file_id)  # on the caller's (the cache's) thread
        if key is None:
            raise SourceGone("the stored file is gone")
        try:
            self._file = PositionalFile(files.sealed_path(file_id))
        except (OSError, ValueError):
            raise SourceGone("the stored file is gone") from None
        try:
            st = self._file.stat()
            if expected_stamp is not None and stamp(st) != expected_stamp:
                raise SourceChanged("stored file changed since the transfer began")
            try:
                header = FileHeader.unpack(bytes(self._file.read_at(HEADER_SIZE, 0)))
            except Exception:
                raise SourceUnreadable("stored file is damaged") from None
            self._cipher = ChunkCipher(header, key)
        except BaseException:
            self._file.close()
            raise
        self.stamp = stamp(st)
        self.size = header.length

    def read_at(self, size: int, offset: int) -> bytes | memoryview:
        cipher = self._cipher
        end = min(offset + size, self.size)
        if offset >= end:
            return b""
        step = cipher.header.chunk_size
        first, last = offset // step, (end - 1) // step
        sealed_len = sum(cipher.sealed_size(i) for i in range(first, last + 1))
        raw = self._file.read_at(sealed_len, HEADER_SIZE + cipher.sealed_offset(first))
        if len(raw) != sealed_len:
            raise SourceChanged("stored file shorter than its header says")
        out = bytearray()
        pos = 0
        for index in range(first, last + 1):
            n = cipher.sealed_size(index)
            out += cipher.open(index, raw[pos:pos + n])  # FileTampered: the engine fails it
            pos += n
        skip = offset - first * step
        return memoryview(out)[skip:skip + end - offset]

    def close(self) -> None:
        self._file.close()


def open_source(record: TransferRecord, files: EncryptedFileStore,
                memory: dict[str, bytes]) -> UploadSource:
    """The source of an upload's row (see the module's docstring)."""
    assert record.source is not None
    where = record.source.reveal()
    if where == MEMORY:
        data = memory.get(record.transfer_id)
        if data is None:
            raise SourceGone("the upload's data was in memory and is gone (restart)")
        return MemorySource(data)
    if where.startswith(STORE):
        return StoredSource(files, where[len(STORE):], record.source_stamp)
    return PathSource(where, record.source_stamp)


__all__ = ["MEMORY", "STORE", "FileTampered", "MemorySource", "PathSource", "StoredSource",
           "UploadSource", "open_source", "stamp"]
