"""Positional reads and writes on one open file from several worker threads.

POSIX has ``preadv``/``pwrite`` (no shared file position, so no lock); elsewhere (Windows)
a lock serialises seek + read/write. Reads go into a per-thread buffer that is reused, so a
chunk costs no fresh allocation (and no page faults) each time.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_HAS_PREAD = hasattr(os, "preadv") and hasattr(os, "pwrite")


class PositionalFile:
    def __init__(self, path: str | os.PathLike[str], *, write: bool = False) -> None:
        flags = os.O_RDWR | os.O_CREAT if write else os.O_RDONLY
        self.fd = os.open(Path(path), flags | getattr(os, "O_BINARY", 0), 0o600)
        self._lock = threading.Lock()
        self._local = threading.local()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> PositionalFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def _buffer(self, size: int) -> memoryview:
        buf = getattr(self._local, "buf", None)
        if buf is None or len(buf) < size:
            buf = self._local.buf = bytearray(size)
        return memoryview(buf)[:size]

    def read_at(self, size: int, offset: int) -> memoryview:
        """Up to ``size`` bytes at ``offset``, in this thread's reused buffer: valid until
        this thread's next ``read_at``. Short only at the end of the file."""
        view = self._buffer(size)
        done = 0
        while done < size:
            if _HAS_PREAD:
                n = os.preadv(self.fd, [view[done:]], offset + done)
            else:
                with self._lock:
                    os.lseek(self.fd, offset + done, os.SEEK_SET)
                    n = os.readv(self.fd, [view[done:]]) if hasattr(os, "readv") else (
                        _read_into(self.fd, view[done:]))
            if n <= 0:
                break
            done += n
        return view[:done]

    def write_at(self, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while view:
            if _HAS_PREAD:
                n = os.pwrite(self.fd, view, offset)
            else:
                with self._lock:
                    os.lseek(self.fd, offset, os.SEEK_SET)
                    n = os.write(self.fd, view)
            view = view[n:]
            offset += n

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)

    def fsync(self) -> None:
        os.fsync(self.fd)


def _read_into(fd: int, view: memoryview) -> int:
    data = os.read(fd, len(view))
    view[:len(data)] = data
    return len(data)
