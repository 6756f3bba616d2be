"""Upload: prepare (digest and tags), create the blob, send the missing chunks, finalize,
sign the descriptor (see the package's engine module for the whole story)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from typing import TYPE_CHECKING

from app.core.errors import ServerError
from app.crypto.files import TAG_SIZE, ChunkCipher, FileHeader
from app.net import blob_api
from app.services.transfers import progress as phases
from app.services.transfers.descriptor import AttachmentDescriptor
from app.services.transfers.errors import SourceChanged, TransferError
from app.services.transfers.runtime import Run, in_thread
from app.services.transfers.sources import UploadSource, open_source
from app.storage.transfers import DONE, PREPARING, UPLOADING

if TYPE_CHECKING:
    from app.services.transfers.engine import TransferEngine

log = logging.getLogger(__name__)

SEND_ACTION = "file.send"


async def run_upload(engine: TransferEngine, run: Run) -> AttachmentDescriptor:
    record = run.record
    assert record.header is not None and record.file_key is not None
    cipher = ChunkCipher(FileHeader.unpack(record.header), record.file_key)
    src = open_source(record, engine.files, engine._memory)
    try:
        if record.state == PREPARING:
            tags, digest = await _prepare(run, cipher, src)
            info = await engine._call(run, lambda: blob_api.create_blob(
                engine.transport(), record.room_id, total_size=cipher.sealed_length,
                chunk_size=cipher.header.chunk_size + TAG_SIZE, chunk_count=cipher.count,
                sha256=digest))
            engine._repo.update(record.transfer_id, tags=tags, sha256=digest,
                              blob_id=info.blob_id, state=UPLOADING, done=set())
            record = run.record = engine._repo.get(record.transfer_id)  # type: ignore[assignment]
        await _send_all(engine, run, cipher, src)
    finally:
        src.close()
    assert record.blob_id is not None and record.sha256 is not None
    assert record.name is not None and record.mime is not None
    descriptor = AttachmentDescriptor.create(
        room_id=record.room_id, blob_id=record.blob_id, sender_user=engine.device.user_id,
        sender_device=engine.device.device_id, key=record.file_key, header=cipher.header,
        sha256=record.sha256, name=record.name.reveal(), mime=record.mime.reveal(),
        ts_ms=int(time.time() * 1000), sign=engine.device.sign)
    with engine._repo.transaction():  # the row and the audit entry in one commit
        engine._repo.update(record.transfer_id, state=DONE, descriptor=descriptor.to_json(),
                          done=set(range(cipher.count)), file_key=None, tags=None,
                          source=None)
        if engine._audits(record.transfer_id):
            engine._record(SEND_ACTION, record.blob_id, room_id=record.room_id,
                           size=record.size)
    return descriptor


async def _prepare(run: Run, cipher: ChunkCipher, src: UploadSource) -> tuple[bytes, str]:
    """First pass: the ciphertext's digest and each chunk's tag; nothing is kept."""
    hasher = hashlib.sha256()
    tags = bytearray()
    run.start_phase(phases.PREPARING, cipher.header.length)

    def seal(index: int) -> bytes:
        size = cipher.plain_size(index)
        plain = src.read_at(size, cipher.plain_offset(index))
        if len(plain) != size:
            raise SourceChanged("source file shorter than when the transfer began")
        sealed = cipher.seal(index, plain)
        hasher.update(sealed)
        return sealed[-TAG_SIZE:]

    for index in range(cipher.count):
        run.check()
        tags += await in_thread(seal, index)
        run.advance(cipher.plain_size(index))
    return bytes(tags), hasher.hexdigest()


async def _send_all(engine: TransferEngine, run: Run, cipher: ChunkCipher,
                    src: UploadSource) -> None:
    record = run.record
    blob_id, tags = record.blob_id, record.tags
    assert blob_id is not None and tags is not None
    transport = engine.transport

    def seal(index: int) -> bytes:
        size = cipher.plain_size(index)
        plain = src.read_at(size, cipher.plain_offset(index))
        sealed = cipher.seal(index, plain) if len(plain) == size else b""
        if sealed[-TAG_SIZE:] != tags[index * TAG_SIZE:(index + 1) * TAG_SIZE]:
            # Different plaintext under the same nonce must never leave this process.
            raise SourceChanged("source file changed during the transfer")
        return sealed

    async def send(index: int) -> int:
        sealed = await in_thread(seal, index)
        with contextlib.suppress(ServerError):  # blob_complete: finalized already
            await engine._call(run, lambda: blob_api.put_chunk(
                transport(), blob_id, index, sealed), passthrough=frozenset({"blob_complete"}))
        return len(sealed)

    resend_all = False
    for _attempt in range(3):
        status = await engine._call(run, lambda: blob_api.blob_status(transport(), blob_id))
        if status.state == "complete":
            return
        present = frozenset() if resend_all else (status.present_chunks or frozenset())
        run.start_phase(phases.UPLOADING, cipher.sealed_length, present,
                        size_of=cipher.sealed_size)
        await engine._pump(run, [i for i in range(cipher.count) if i not in present], send)
        run.commit()
        try:
            await engine._call(run, lambda: blob_api.finalize(transport(), blob_id),
                             passthrough=frozenset({"chunks_missing", "size_mismatch",
                                                    "hash_mismatch"}))
            return
        except ServerError as exc:
            # The server lost or garbled a chunk: send what it lacks (or all) again.
            log.info("blob finalize refused; resending", extra={
                "event": "transfer_finalize_refused", "reason_code": exc.code})
            resend_all = exc.code != "chunks_missing"
    raise TransferError("the server did not accept the upload")
