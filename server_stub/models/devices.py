"""Enrollment, device status and order acknowledgement schemas."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from server_stub.models.auth import Password, SessionTokens, Strict, TotpCode

# Keys are 32 bytes and signatures 64 bytes, in unpadded standard base64.
DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{22}$")]
PublicKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}$")]
Signature = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{86}$")]


class EnrollRequest(Strict):
    username: str = Field(pattern=r"^[a-z][a-z0-9._-]{1,31}$")
    password: Password
    totp_code: TotpCode
    device_id: DeviceId
    ed25519: PublicKey
    curve25519: PublicKey
    display_name: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    ts_ms: int = Field(ge=0, le=2**53)
    signature: Signature


class EnrollResponse(BaseModel):
    device_id: str
    user_id: str
    state: Literal["pending", "active"]
    session: SessionTokens | None


class DeviceStatus(BaseModel):
    device_id: str
    state: Literal["pending", "active", "revoked", "wiped"]
    order: Literal["none", "logout", "wipe"]
    order_id: str | None


class OrderAck(Strict):
    order: Literal["logout", "wipe"]
    order_id: DeviceId
    ts_ms: int = Field(ge=0, le=2**53)
    signature: Signature
    # A wipe's acknowledgement: the final head of the device's audit chain (both or neither;
    # neither = the device could not read its log). Signed with the rest (SC-WIPE-ACK-v2).
    audit_seq: int | None = Field(default=None, ge=0, le=2**53)
    audit_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class OwnDevice(BaseModel):
    device_id: str
    display_name: str
    state: str
    created_ms: int
    approved_ms: int | None
    last_seen_ms: int | None
    current: bool


class OwnDevices(BaseModel):
    devices: list[OwnDevice]


class AdminDevice(BaseModel):
    """A device as IT administration sees it: who, what, state, pending order, key."""

    device_id: str
    user_id: str
    username: str
    display_name: str
    state: Literal["pending", "active", "revoked", "wiped"]
    order: Literal["none", "logout", "wipe"]
    ed25519: str  # the identity key: its fingerprint is compared with the device's screen
    created_ms: int
    approved_ms: int | None
    last_seen_ms: int | None


class AdminDevices(BaseModel):
    devices: list[AdminDevice]


class AdminOrder(BaseModel):
    device_id: str
    state: Literal["pending", "active", "revoked", "wiped"]
    order: Literal["none", "logout", "wipe"]
    order_id: str | None
