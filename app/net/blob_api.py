"""The blob store (docs/protocol.md, "Blobs"): resumable upload and download of encrypted
files, chunk by chunk, over the one pinned-TLS transport (request proofs on every call).

Bodies of chunks are raw ciphertext; this module never sees anything else. Answers are
validated into :class:`BlobInfo`, so nothing above it handles the server's raw JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from app.net.auth_api import ProtocolError, response_field
from app.net.transport import Transport

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
STATES = frozenset({"uploading", "finalizing", "complete"})
# The reference server's limits (server_stub/core/config.py); a deployment may set lower.
MAX_CHUNK_BYTES = 8 * 1_048_576
MAX_BLOB_BYTES = 2 * 1_073_741_824


def _seg(value: str) -> str:
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class BlobInfo:
    blob_id: str
    room_id: str
    total_size: int
    chunk_size: int
    chunk_count: int
    sha256: str
    state: str  # "uploading" | "finalizing" | "complete"
    created_ms: int
    completed_ms: int | None
    present_chunks: frozenset[int] | None  # only in answers that list them


def _int(data: Any, name: str) -> int:
    return int(response_field(data, name, int))


def parse_blob(data: Any) -> BlobInfo:
    state = response_field(data, "state", str)
    if state not in STATES:
        raise ProtocolError("blob state not understood")
    sha = response_field(data, "sha256", str)
    if not _HEX64.match(sha):
        raise ProtocolError("blob sha256 not understood")
    completed = data.get("completed_ms")
    if completed is not None and (not isinstance(completed, int) or isinstance(completed, bool)):
        raise ProtocolError("response field 'completed_ms' is not an integer")
    present: frozenset[int] | None = None
    if "present_chunks" in data:
        raw = response_field(data, "present_chunks", list)
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
            raise ProtocolError("present_chunks must be integers")
        present = frozenset(raw)
    info = BlobInfo(
        blob_id=response_field(data, "blob_id", str), room_id=response_field(data, "room_id", str),
        total_size=_int(data, "total_size"), chunk_size=_int(data, "chunk_size"),
        chunk_count=_int(data, "chunk_count"), sha256=sha, state=state,
        created_ms=_int(data, "created_ms"), completed_ms=completed, present_chunks=present,
    )
    if info.chunk_count < 1 or info.chunk_size < 1 or info.total_size < 1:
        raise ProtocolError("blob sizes not understood")
    return info


async def create_blob(transport: Transport, room_id: str, *, total_size: int, chunk_size: int,
                      chunk_count: int, sha256: str) -> BlobInfo:
    """Open an upload of ``total_size`` ciphertext bytes in ``chunk_count`` chunks."""
    data = await transport.post_json("/v1/blobs", {
        "room_id": room_id, "total_size": total_size, "chunk_size": chunk_size,
        "chunk_count": chunk_count, "sha256": sha256,
    })
    return parse_blob(data)


async def blob_status(transport: Transport, blob_id: str) -> BlobInfo:
    """The blob and the chunks the server holds: what an upload resumes from."""
    return parse_blob(await transport.get_json(f"/v1/blobs/{_seg(blob_id)}"))


async def put_chunk(transport: Transport, blob_id: str, index: int, data: bytes) -> int:
    """Upload (or replace) chunk ``index``; returns the size the server stored."""
    response = await transport.request(
        "PUT", f"/v1/blobs/{_seg(blob_id)}/chunks/{int(index)}", content=data,
        headers={"Content-Type": "application/octet-stream"})
    size = _int(response.json(), "size")
    if size != len(data):
        raise ProtocolError("the server stored a different chunk size")
    return size


async def finalize(transport: Transport, blob_id: str) -> BlobInfo:
    """Ask the server to check sizes and digest and make the blob immutable."""
    return parse_blob(await transport.post_json(f"/v1/blobs/{_seg(blob_id)}/finalize", {}))


async def get_chunk(transport: Transport, blob_id: str, index: int) -> bytes:
    """Chunk ``index`` of a complete blob, as stored (the caller checks size and tag)."""
    response = await transport.request("GET", f"/v1/blobs/{_seg(blob_id)}/chunks/{int(index)}")
    return response.content


async def delete_blob(transport: Transport, blob_id: str) -> None:
    """Delete a blob this device uploaded (a cancelled upload), in any state but while the
    server is finalizing it (``409 blob_finalizing``: ask again). Another member's blob,
    or this user's from another device, is ``403 forbidden``; an unknown or already deleted
    one is refused like a blob of a consult the caller is not in (``403 not_member``)."""
    response = await transport.request("DELETE", f"/v1/blobs/{_seg(blob_id)}")
    try:
        data = response.json()
    except ValueError:
        raise ProtocolError("blob delete answer not understood") from None
    if response_field(data, "blob_id", str) != blob_id or data.get("deleted") is not True:
        raise ProtocolError("blob delete answer not understood")
