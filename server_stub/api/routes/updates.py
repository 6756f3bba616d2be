"""Update repository: TUF metadata and targets, served as static files.

IT builds and signs the repository elsewhere (``python -m app.tools.updates``, keys never on
this server) and copies it to ``DATA_DIR/updates``; this route only serves its files. The
server cannot forge an update: clients verify every file against the signed metadata and
the root of trust they were installed with (docs/admin-guide.md, "Updates"). No
authentication -- the files are public and signed -- so a locked-out workstation can still
be updated.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from server_stub.api.errors import ApiError

router = APIRouter(prefix="/updates", tags=["updates"])

_METADATA = re.compile(r"^(\d{1,9}\.)?(root|timestamp|snapshot|targets)\.json$")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$")
# Metadata must never be served from a cache: a stale timestamp is what clients refuse.
_NO_CACHE = {"Cache-Control": "no-store"}


def repository(request: Request) -> Path:
    return request.app.state.settings.data_dir / "updates"


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "no such update file")


@router.get("/metadata/{name}")
def metadata(name: str, request: Request) -> FileResponse:
    if not _METADATA.match(name):
        raise _not_found()
    path = repository(request) / "metadata" / name
    if not path.is_file():
        raise _not_found()
    return FileResponse(path, media_type="application/json", headers=_NO_CACHE)


@router.get("/targets/{target:path}")
def targets(target: str, request: Request) -> FileResponse:
    parts = target.split("/")
    if not 1 <= len(parts) <= 4 or not all(_SEGMENT.match(p) and ".." not in p for p in parts):
        raise _not_found()
    path = repository(request) / "targets" / Path(*parts)
    if not path.is_file() or path.is_symlink():
        raise _not_found()
    return FileResponse(path, media_type="application/octet-stream")
