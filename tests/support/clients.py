"""Test helpers that act like real clients against the reference server.

They use the client's own protocol code (``DeviceIdentity``, ``ProofSigner``, ``Transport``)
over real TLS, and the server's admin functions for what an administrator would do. The
signed strings for enrollment and order acknowledgements are written out here from
docs/protocol.md, independently of the server's definitions, so a drift is caught.

Typical use (async test, ``server`` fixture)::

    alice = create_user(server, "alice", role="physician")
    dev = await enroll_and_login(server, alice.username, alice.password, alice.totp_secret)
    info = await dev.transport.get_json("/v1/auth/session")
    await dev.aclose()

TOTP codes are single-use per user (a code's step must be newer than the last accepted
one); ``next_totp_code`` reads the last used step from the server's database and picks a
code the server will accept, waiting for the next 30 s step only when it must.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import pyotp

from app.core.audit_queue import ChainHead, wipe_ack_message
from app.crypto.identity import DeviceIdentity
from app.crypto.proof import ProofSigner, enrollment_message, order_ack_message
from app.net.transport import Transport
from server_stub import admin
from server_stub.core.db import Database
from tests.support.server import RunningServer

TOTP_PERIOD_S = 30


@dataclass(frozen=True)
class UserCreds:
    user_id: str
    username: str
    role: str
    password: str
    totp_secret: str


@dataclass
class LoggedInDevice:
    """An enrolled device with a logged-in session (``session`` is None while pending)."""

    identity: DeviceIdentity
    transport: Transport
    user_id: str
    username: str
    session: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def device_id(self) -> str:
        return self.identity.device_id

    @property
    def refresh_token(self) -> str:
        assert self.session is not None
        return self.session["refresh_token"]

    def use_session(self, session: dict[str, Any]) -> None:
        self.session = session
        self.transport.token = session["access_token"]

    async def aclose(self) -> None:
        await self.transport.aclose()


def server_db(server: RunningServer) -> Database:
    return server.app.state.db  # type: ignore[attr-defined]


def create_user(server: RunningServer, username: str, *, role: str = "physician",
                password: str | None = None) -> UserCreds:
    """A user created the way the admin CLI does, with a known password and TOTP secret."""
    password = password or "pw-" + secrets.token_urlsafe(12)
    new = admin.add_user(server_db(server), username, role, password)
    return UserCreds(new.user_id, new.username, new.role, password, new.totp_secret)


def last_totp_step(server: RunningServer, username: str) -> int:
    row = server_db(server).connection().execute(
        "SELECT totp_last_step FROM users WHERE username = ?", (username,)).fetchone()
    return int(row[0]) if row else 0


async def next_totp_code(server: RunningServer, username: str, totp_secret: str) -> str:
    """A code for the newest acceptable step (now or now+1) not used yet."""
    while True:
        current = int(time.time() // TOTP_PERIOD_S)
        last = last_totp_step(server, username)
        step = max(current, last + 1)
        # now+1 is accepted but sits at the window's edge; leave it a few seconds of margin.
        seconds_left = TOTP_PERIOD_S - time.time() % TOTP_PERIOD_S
        if step == current or (step == current + 1 and seconds_left > 3):
            return pyotp.TOTP(totp_secret).at(step * TOTP_PERIOD_S)
        await asyncio.sleep(seconds_left + 0.05)


def new_transport(server: RunningServer, identity: DeviceIdentity) -> Transport:
    return Transport(server.url, server.ca_pem, signer=ProofSigner(identity))


def enrollment_body(identity: DeviceIdentity, username: str, password: str, totp_code: str,
                    display_name: str = "Test workstation") -> dict[str, Any]:
    ts_ms = int(time.time() * 1000)
    return {
        "username": username, "password": password, "totp_code": totp_code,
        "device_id": identity.device_id, "ed25519": identity.ed25519,
        "curve25519": identity.curve25519, "display_name": display_name, "ts_ms": ts_ms,
        "signature": identity.sign(enrollment_message(
            identity.device_id, username, identity.ed25519, identity.curve25519, ts_ms)),
    }


def order_ack_body(identity: DeviceIdentity, order: str, order_id: str, *,
                   audit_head: ChainHead | None = None) -> dict[str, Any]:
    """A signed acknowledgement; a wipe's carries the audit chain's final head (by default
    that of a device that recorded nothing)."""
    ts_ms = int(time.time() * 1000)
    if order != "wipe":
        message = order_ack_message(order, identity.device_id, order_id, ts_ms)
        return {"order": order, "order_id": order_id, "ts_ms": ts_ms,
                "signature": identity.sign(message)}
    head = audit_head or ChainHead()
    message = wipe_ack_message(identity.device_id, order_id, ts_ms, head)
    return {"order": order, "order_id": order_id, "ts_ms": ts_ms,
            "signature": identity.sign(message), "audit_seq": head.device_seq,
            "audit_hash": head.entry_hash}


async def enroll(server: RunningServer, username: str, password: str, totp_secret: str, *,
                 identity: DeviceIdentity | None = None,
                 display_name: str = "Test workstation") -> LoggedInDevice:
    """Enroll a new device; active with a session unless the server requires approval."""
    identity = identity or DeviceIdentity.generate()
    transport = new_transport(server, identity)
    code = await next_totp_code(server, username, totp_secret)
    body = enrollment_body(identity, username, password, code, display_name)
    try:
        result = await transport.post_json("/v1/devices/enroll", body)
    except BaseException:
        await transport.aclose()
        raise
    device = LoggedInDevice(identity, transport, result["user_id"], username)
    if result["session"] is not None:
        device.use_session(result["session"])
    return device


def approve(server: RunningServer, device_id: str) -> None:
    admin.approve_device(server_db(server), device_id)


async def login(server: RunningServer, device: LoggedInDevice, password: str,
                totp_secret: str) -> dict[str, Any]:
    """Password + fresh TOTP from an enrolled device; stores the session on ``device``."""
    device.transport.token = ""
    code = await next_totp_code(server, device.username, totp_secret)
    result = await device.transport.post_json(
        "/v1/auth/login",
        {"username": device.username, "password": password, "totp_code": code})
    device.use_session(result["session"])
    return result


async def enroll_and_login(server: RunningServer, username: str, password: str,
                           totp_secret: str, *, display_name: str = "Test workstation"
                           ) -> LoggedInDevice:
    """Enroll a device, approve it if the server wants approval, and log in."""
    device = await enroll(server, username, password, totp_secret, display_name=display_name)
    if device.session is None:
        approve(server, device.device_id)
        try:
            await login(server, device, password, totp_secret)
        except BaseException:
            await device.aclose()
            raise
    return device


async def new_user_device(server: RunningServer, username: str, *, role: str = "physician"
                          ) -> tuple[UserCreds, LoggedInDevice]:
    """A fresh user and a logged-in device of theirs: the one-liner for most tests."""
    creds = create_user(server, username, role=role)
    device = await enroll_and_login(server, creds.username, creds.password, creds.totp_secret)
    return creds, device


async def signed_request(device: LoggedInDevice, method: str, path: str, body: bytes = b"", *,
                         token: str | None = None, extra_headers: dict[str, str] | None = None,
                         proof_headers: dict[str, str] | None = None):
    """A raw ``httpx.Response`` for a request signed like the client signs it (or with the
    given ``proof_headers``, e.g. replayed ones): for tests that need headers, status codes
    and bodies the Transport would turn into exceptions."""
    token = device.transport.token if token is None else token
    headers = {"Content-Type": "application/json", **(extra_headers or {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    signer = device.transport.signer
    assert signer is not None
    headers.update(proof_headers or signer.proof_headers(method, path, body, token))
    return await device.transport._client.request(method, path, content=body, headers=headers)
