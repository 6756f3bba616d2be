"""Resumable, end-to-end encrypted file transfers (attachments): see ``engine``.

Typical use (a signed-in session; the chat sends and receives the descriptor)::

    engine = TransferEngine.for_session(session)
    engine.progress.connect(on_progress)              # TransferProgress snapshots
    descriptor = await engine.upload(room_id, path)   # -> put descriptor.to_wire() in the message
    descriptor = await engine.upload_bytes(room_id, data, name="snapshot.png")  # no file written
    descriptor = await engine.upload_stored(room_id, file_id)  # from the encrypted file store
    file_id = await engine.download(wire, sender_device, room_id=room_id)
    plaintext_chunks = engine.files.open(file_id)     # EncryptedFileStore
    await engine.resume_pending()                     # at start-up
"""

from app.services.transfers.descriptor import (
    DESCRIPTOR_TYPE,
    AttachmentDescriptor,
    KnownDevice,
    SenderDevice,
    parse_descriptor,
)
from app.services.transfers.engine import (
    DeviceSigner,
    TransferEngine,
    TransferOptions,
    download_id,
)
from app.services.transfers.errors import (
    DescriptorInvalid,
    FileTooLarge,
    ManifestSignatureInvalid,
    SourceChanged,
    SourceGone,
    SourceUnreadable,
    TransferCancelled,
    TransferError,
    TransferInterrupted,
    TransferRefused,
    TransferTampered,
    UnknownTransfer,
)
from app.services.transfers.progress import TransferProgress, TransferResult

__all__ = [
    "DESCRIPTOR_TYPE", "AttachmentDescriptor", "DescriptorInvalid", "DeviceSigner",
    "FileTooLarge", "KnownDevice", "ManifestSignatureInvalid", "SenderDevice", "SourceChanged",
    "SourceGone", "SourceUnreadable", "TransferCancelled", "TransferEngine", "TransferError",
    "TransferInterrupted", "TransferOptions", "TransferProgress", "TransferRefused",
    "TransferResult", "TransferTampered", "UnknownTransfer", "download_id", "parse_descriptor",
]
