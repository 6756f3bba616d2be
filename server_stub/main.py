"""Application factory: settings -> storage -> FastAPI app with its routes."""

from __future__ import annotations

from fastapi import FastAPI

from server_stub import __version__
from server_stub.api.routes import health
from server_stub.core.config import ServerSettings
from server_stub.core.db import Database
from server_stub.core.schema import MIGRATIONS


def create_app(settings: ServerSettings) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    app = FastAPI(title="SafeConsult reference server", version=__version__)
    app.state.settings = settings
    app.state.db = Database(settings.db_path, MIGRATIONS)
    app.include_router(health.router)
    return app
