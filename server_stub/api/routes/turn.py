"""TURN credentials in coturn's REST scheme (``use-auth-secret``): short-lived, per user."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from fastapi import APIRouter
from pydantic import BaseModel

from server_stub.api.deps import (
    Auth,
    Settings,
)
from server_stub.api.errors import ApiError

router = APIRouter(prefix="/v1/turn", tags=["turn"])


class TurnCredentials(BaseModel):
    username: str
    credential: str
    ttl: int
    uris: list[str]


def turn_credential(secret: str, username: str) -> str:
    """coturn's check: base64(HMAC-SHA1(static-auth-secret, username))."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@router.get("/credentials", response_model=TurnCredentials)
def credentials(auth: Auth,
                settings: Settings) -> TurnCredentials:
    if not settings.turn_secret:
        raise ApiError(503, "turn_unavailable", "no TURN server is configured")
    username = f"{int(time.time()) + settings.turn_ttl_s}:{auth.user_id}"
    return TurnCredentials(username=username,
                           credential=turn_credential(settings.turn_secret, username),
                           ttl=settings.turn_ttl_s, uris=list(settings.turn_urls))
