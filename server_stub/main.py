"""Application factory: settings -> storage -> FastAPI app with its routes."""

from __future__ import annotations

from fastapi import FastAPI

from server_stub import __version__
from server_stub.api.direct_push import KeepServerSend
from server_stub.api.errors import install_error_handlers
from server_stub.api.limits import BodyLimitMiddleware
from server_stub.api.routes import (
    admin_devices,
    audit,
    auth,
    blobs,
    devices,
    events,
    health,
    keys,
    rooms,
    signaling,
    todevice,
    turn,
    updates,
    ws,
)
from server_stub.core.config import ServerSettings
from server_stub.core.db import Database
from server_stub.core.schema import MIGRATIONS
from server_stub.core.security import SourceLimiter, warm_up


def create_app(settings: ServerSettings) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    app = FastAPI(title="SafeConsult reference server", version=__version__)
    app.state.settings = settings
    # Checkpoints run in the relay's background task, never inside a request's commit.
    app.state.db = Database(settings.db_path, MIGRATIONS, autocheckpoint=False)
    app.state.login_limiter = SourceLimiter()
    warm_up()
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes,
                       max_chunk_bytes=settings.max_chunk_bytes)
    app.add_middleware(KeepServerSend)  # the push socket's direct writes (api/direct_push.py)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(devices.router)
    app.include_router(admin_devices.router)
    app.include_router(keys.router)
    app.include_router(audit.router)
    app.include_router(turn.router)
    app.include_router(rooms.router)
    app.include_router(events.router)
    app.include_router(todevice.router)
    app.include_router(signaling.router)
    app.include_router(blobs.router)
    app.include_router(ws.router)
    app.include_router(updates.router)
    return app
