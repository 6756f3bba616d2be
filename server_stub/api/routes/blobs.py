"""Resumable upload and download of encrypted blobs (docs/protocol.md, "Blobs").

Chunk bodies are raw ciphertext bytes. Only active members of the blob's room may touch it;
observers may download but not upload. Every chunk download is audited. The device that
uploaded a blob may delete it (a cancelled upload), in the same way retention does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from server_stub.api.deps import AuthContext, authenticated, get_db
from server_stub.api.errors import ApiError
from server_stub.api.routes.relay_support import (
    api_error,
    audit,
    blob_files,
    guarded,
    hub_of,
)
from server_stub.core.db import Database
from server_stub.core.security import now_ms
from server_stub.crud import blobs
from server_stub.crud.rooms import WRITER_ROLES
from server_stub.models.blobs import CreateBlob

router = APIRouter(tags=["blobs"])

_MAX_INDEX = 2**31


def _not_uploading() -> blobs.Refused:
    return blobs.Refused(409, "blob_not_uploading", "this blob no longer accepts chunks")


def _index(index: int) -> int:
    if not 0 <= index < _MAX_INDEX:
        raise ApiError(416, "chunk_out_of_range", "chunk index out of range")
    return index


@router.post("/v1/blobs", status_code=201)
def create_blob(
    request: Request, body: CreateBlob,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    settings = request.app.state.settings

    def work(conn) -> blobs.Blob:
        blob = blobs.create_blob(
            conn, room_id=body.room_id, owner_user_id=auth.user_id,
            owner_device_id=auth.device_id, total_size=body.total_size,
            chunk_size=body.chunk_size, chunk_count=body.chunk_count, sha256=body.sha256,
            now_ms=now_ms(), max_chunk_bytes=settings.max_chunk_bytes,
            max_blob_bytes=settings.max_blob_bytes)
        audit(conn, request, auth, "blob.create", object_type="blob", object_id=blob.blob_id,
              detail={"room_id": body.room_id, "size": body.total_size})
        return blob

    return guarded(db, hub_of(request.app), work).to_wire(present=[])


@router.get("/v1/blobs/{blob_id}")
def blob_status(
    request: Request, blob_id: str,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    def work(conn) -> dict[str, Any]:
        blob = blobs.blob_for_member(conn, blob_id, auth.user_id, now_ms())
        return blob.to_wire(present=blobs.present_chunks(conn, blob_id))

    return guarded(db, hub_of(request.app), work)


@router.put("/v1/blobs/{blob_id}/chunks/{index}")
async def put_chunk(
    request: Request, blob_id: str, index: int,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    _index(index)
    data = await request.body()  # already read (and size-capped) for the request proof
    files = blob_files(request.app)
    hub = hub_of(request.app)

    def store() -> dict[str, Any]:
        def check(conn) -> blobs.Blob:
            blob = blobs.blob_for_member(conn, blob_id, auth.user_id, now_ms(),
                                         roles=WRITER_ROLES)
            if blob.state != "uploading":
                raise blobs.Refused(409, f"blob_{blob.state}",
                                    "this blob is being finalized or is complete")
            blobs.check_chunk(blob, index, len(data))
            return blob

        guarded(db, hub, check)
        try:
            files.write_chunk(blob_id, index, data)
        except FileNotFoundError:
            if blobs.get_blob(db.connection(), blob_id) is not None:
                raise
            # Its directory went while the chunk was written: a delete won the race.
            raise api_error(_not_uploading()) from None

        def record(conn) -> None:
            blob = blobs.get_blob(conn, blob_id)
            if blob is None or blob.state != "uploading":
                # Finalize, a purge or a delete won the race: the file must not count.
                raise _not_uploading()
            blobs.record_chunk(conn, blob_id, index, len(data))

        try:
            guarded(db, hub, record)
        except ApiError:
            if blobs.get_blob(db.connection(), blob_id) is None:
                # Deleted (or purged) meanwhile: the row went first and its files after,
                # so what this request wrote may have landed after they were removed.
                # Remove it now rather than leave it for the next sweep; the blob cannot
                # come back (its id is never reused, and every later request is refused).
                files.delete(blob_id)
            raise
        return {"blob_id": blob_id, "index": index, "size": len(data)}

    return await run_in_threadpool(store)


@router.post("/v1/blobs/{blob_id}/finalize")
def finalize(
    request: Request, blob_id: str,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    files = blob_files(request.app)
    hub = hub_of(request.app)
    holder: dict[str, blobs.Blob] = {}

    def begin(conn) -> bool:
        blob = blobs.blob_for_member(conn, blob_id, auth.user_id, now_ms(), roles=WRITER_ROLES)
        holder["blob"] = blob
        return blobs.begin_finalize(conn, blob)

    if guarded(db, hub, begin):
        blob = holder["blob"]
        problem = blobs.check_digest(files, blob)
        with db.transaction() as conn:
            blobs.end_finalize(conn, blob_id, ok=problem is None, now_ms=now_ms())
            audit(conn, request, auth, "blob.upload", object_type="blob", object_id=blob_id,
                  outcome="ok" if problem is None else "refused",
                  detail={"room_id": blob.room_id, "size": blob.total_size,
                          **({"code": problem.code} if problem else {})})
        if problem is not None:
            raise api_error(problem)
    done = blobs.get_blob(db.connection(), blob_id)
    if done is None:  # its uploader deleted it right after it completed
        raise api_error(blobs.Refused(403, "not_member",
                                      "you are not a member of this blob's consult"))
    return done.to_wire()


@router.get("/v1/blobs/{blob_id}/chunks/{index}")
def get_chunk(
    request: Request, blob_id: str, index: int,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> Response:
    _index(index)
    files = blob_files(request.app)

    def work(conn) -> blobs.Blob:
        blob = blobs.blob_for_member(conn, blob_id, auth.user_id, now_ms())
        if blob.state != "complete":
            raise blobs.Refused(409, "blob_incomplete", "this blob has not been finalized")
        blobs.check_chunk(blob, index)
        audit(conn, request, auth, "blob.download", object_type="blob", object_id=blob_id,
              detail={"room_id": blob.room_id, "chunk": index})
        return blob

    guarded(db, hub_of(request.app), work)
    try:
        data = files.read_chunk(blob_id, index)
    except blobs.Refused as exc:
        raise api_error(exc) from None
    return Response(data, media_type="application/octet-stream")


@router.delete("/v1/blobs/{blob_id}")
def delete_blob(
    request: Request, blob_id: str,
    auth: AuthContext = Depends(authenticated), db: Database = Depends(get_db),  # noqa: B008
) -> dict[str, Any]:
    """The uploading device deletes its blob (a cancelled upload, or the complete but never
    announced files of a cancelled share): rows at once, then the chunk files -- the same
    two steps as retention (``blobs.delete_rows``). Not while a finalize is hashing it."""
    files = blob_files(request.app)

    def work(conn) -> None:
        blob = blobs.blob_for_member(conn, blob_id, auth.user_id, now_ms())
        blobs.require_owner_device(blob, auth.user_id, auth.device_id)
        if blob.state == "finalizing":
            raise blobs.Refused(409, "blob_finalizing",
                                "this blob is being finalized; try again in a moment")
        blobs.delete_rows(conn, [blob_id])
        audit(conn, request, auth, "blob.delete", object_type="blob", object_id=blob_id,
              detail={"room_id": blob.room_id, "state": blob.state,
                      "size": blob.total_size})

    guarded(db, hub_of(request.app), work)
    files.delete(blob_id)
    return {"blob_id": blob_id, "deleted": True}
