"""Login, refresh, session schemas (docs/protocol.md, "Authentication")."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Username = Annotated[str, Field(min_length=1, max_length=64)]
Password = Annotated[str, Field(min_length=1, max_length=256)]
TotpCode = Annotated[str, Field(pattern=r"^[0-9]{6}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class LoginRequest(Strict):
    username: Username
    password: Password
    totp_code: TotpCode


class RefreshRequest(Strict):
    refresh_token: str = Field(min_length=20, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")


class SessionTokens(BaseModel):
    session_id: str
    access_token: str
    access_expires_ms: int
    refresh_token: str
    refresh_expires_ms: int
    session_expires_ms: int


class LoginResponse(BaseModel):
    user_id: str
    username: str
    role: str
    device_id: str
    session: SessionTokens


class SessionInfo(BaseModel):
    user_id: str
    username: str
    role: str
    device_id: str
    session_id: str
    access_expires_ms: int
    session_expires_ms: int
