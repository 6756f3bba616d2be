"""Key directory schemas: one-time/fallback keys, device lists, versions."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from server_stub.models.auth import Strict
from server_stub.models.devices import DeviceId, PublicKey, Signature

KeyId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_+/=-]{1,64}$")]
UserId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{22}$")]


class SignedKey(Strict):
    key_id: KeyId
    key: PublicKey
    signature: Signature


class KeyUpload(Strict):
    one_time_keys: list[SignedKey] = Field(default_factory=list, max_length=100)
    fallback_key: SignedKey | None = None


class KeyCounts(BaseModel):
    one_time_key_count: int
    has_fallback_key: bool


class ClaimRequest(Strict):
    device_ids: list[DeviceId] = Field(min_length=1, max_length=100)


class ClaimedKey(BaseModel):
    key_id: str
    key: str
    signature: str
    fallback: bool


class ClaimResponse(BaseModel):
    keys: dict[str, ClaimedKey]
    missing: list[str]


class DirectoryDevice(BaseModel):
    device_id: str
    display_name: str
    ed25519: str
    curve25519: str
    enroll_ts_ms: int
    enroll_signature: str


class UserDevices(BaseModel):
    user_id: str
    username: str
    role: str
    device_list_version: int
    devices: list[DirectoryDevice]


class VersionsRequest(Strict):
    user_ids: list[UserId] = Field(min_length=1, max_length=500)


class VersionsResponse(BaseModel):
    versions: dict[str, int]


class UserSummary(BaseModel):
    user_id: str
    username: str
    role: str
    device_list_version: int

