"""Download: verify the descriptor's chunks as they arrive into a ciphertext staging file,
check the digest, then decrypt into the encrypted file store (see the engine module)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from app.crypto.files import HEADER_SIZE, ChunkCipher, FileTampered, decrypt_chunks
from app.net import blob_api
from app.services.transfers import progress as phases
from app.services.transfers.descriptor import AttachmentDescriptor, parse_descriptor
from app.services.transfers.errors import TransferCancelled, TransferTampered
from app.services.transfers.fileio import PositionalFile
from app.services.transfers.runtime import Run, in_thread
from app.storage.transfers import DONE, DOWNLOADING, VERIFYING

if TYPE_CHECKING:
    from app.services.transfers.engine import TransferEngine

RECEIVE_ACTION = "file.download"


class PlainReader:
    """A ``read(n)`` view of a chunk iterator, for EncryptedFileStore.put."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        while not self._buf:
            nxt = next(self._chunks, None)
            if nxt is None:
                return b""
            self._buf = memoryview(nxt)
        if size < 0:
            size = len(self._buf)
        out = bytes(self._buf[:size])
        self._buf = self._buf[size:]
        return out


async def run_download(engine: TransferEngine, run: Run) -> str:
    record = run.record
    assert record.descriptor is not None and record.sender_ed25519 is not None
    desc = parse_descriptor(record.descriptor)
    desc.verify_key(record.sender_ed25519)  # the row is ours, but check what we act on
    cipher = ChunkCipher(desc.header, desc.key)
    path = engine._repo.staging_path(record.transfer_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    expected = HEADER_SIZE + cipher.sealed_length
    staging = PositionalFile(path, write=True)
    try:
        if record.state == DOWNLOADING:
            if staging.stat().st_size != expected:
                staging.truncate(0)
                staging.write_at(cipher.header_bytes, 0)
                staging.truncate(expected)
                done: frozenset[int] = frozenset()
            else:
                done = await in_thread(_verify_staged, staging, cipher, record.done)
            run.start_phase(phases.DOWNLOADING, cipher.sealed_length, done,
                            size_of=cipher.sealed_size)
            todo = [i for i in range(cipher.count) if i not in done]
            await engine._pump(run, todo,
                             lambda i: _fetch(engine, run, cipher, staging, desc, i))
            engine._repo.update(record.transfer_id, state=VERIFYING, done=run.done)
        run.start_phase(phases.VERIFYING, cipher.sealed_length, range(cipher.count),
                        size_of=cipher.sealed_size)
        digest = await in_thread(_digest_staged, staging, expected)
    finally:
        staging.close()
    if digest != desc.sha256:
        raise TransferTampered("ciphertext digest does not match the descriptor")
    file_id = _store(engine, path, desc)
    if engine._repo.get(record.transfer_id) is None:
        # Retention removed the transfer (its message) while it ran: keep nothing.
        engine._files.delete(file_id)
        path.unlink(missing_ok=True)
        raise TransferCancelled("the message of this file was removed by retention")
    with engine._repo.transaction():
        engine._repo.update(record.transfer_id, state=DONE, file_id=file_id, descriptor=None)
        if engine._audits(record.transfer_id):
            engine._record(RECEIVE_ACTION, desc.blob_id, room_id=desc.room_id, size=desc.size)
    path.unlink(missing_ok=True)
    return file_id


async def _fetch(engine: TransferEngine, run: Run, cipher: ChunkCipher, staging: PositionalFile,
                 desc: AttachmentDescriptor, index: int) -> int:
    transport = engine.transport
    data = await engine._call(run, lambda: blob_api.get_chunk(transport(), desc.blob_id, index))
    if len(data) != cipher.sealed_size(index):
        raise TransferTampered(f"chunk {index} has the wrong size")

    def check_and_write() -> None:
        try:
            cipher.open(index, data)
        except FileTampered as exc:
            raise TransferTampered(str(exc)) from None
        staging.write_at(data, HEADER_SIZE + cipher.sealed_offset(index))

    await in_thread(check_and_write)
    return len(data)


def _verify_staged(staging: PositionalFile, cipher: ChunkCipher, done: frozenset[int],
                   ) -> frozenset[int]:
    """The chunks marked done whose staged bytes still open (a crash can lose writes)."""
    good = set()
    for index in done:
        sealed = bytes(staging.read_at(cipher.sealed_size(index),
                                       HEADER_SIZE + cipher.sealed_offset(index)))
        with contextlib.suppress(FileTampered):
            cipher.open(index, sealed)
            good.add(index)
    return frozenset(good)


def _digest_staged(staging: PositionalFile, end: int) -> str:
    # No fsync first: the staging file need not survive a crash (resume re-checks it), and
    # what is hashed here is what is decrypted next, from the same page cache.
    hasher = hashlib.sha256()
    offset = HEADER_SIZE
    while offset < end:
        block = staging.read_at(min(1 << 20, end - offset), offset)
        if not block:
            break
        hasher.update(block)
        offset += len(block)
    return hasher.hexdigest()


def _store(engine: TransferEngine, staging: Path, desc: AttachmentDescriptor) -> str:
    """Decrypt the verified staging file into the encrypted file store. A chunk that
    fails here (it cannot, after the checks, unless the disk changed it) aborts the put:
    the store removes its partial file and key."""
    try:
        with open(staging, "rb") as src:
            return engine._files.put(PlainReader(decrypt_chunks(src, desc.key)), desc.size)
    except FileTampered as exc:
        raise TransferTampered(str(exc)) from None
