"""Pieces of the relay benchmark: seeding a data directory with many logged-in devices,
running the relay and the reference server as child processes, and the WebSocket clients.

Devices are seeded straight into the server's database with the auth layer's own functions
(one password hash shared by all, sessions issued the way login issues them): logging 1,050
devices in through password + TOTP would take minutes and measure the login, not the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import websockets

from app.crypto.identity import DeviceIdentity
from app.crypto.proof import ProofSigner
from app.net.transport import Transport
from server_stub.core.config import ServerSettings
from server_stub.core.db import Database
from server_stub.core.schema import MIGRATIONS
from server_stub.core.security import hash_password
from server_stub.crud import devices as devices_crud
from server_stub.crud import grants, rooms, sessions
from server_stub.crud import users as users_crud
from server_stub.tls import ensure_tls, tls_files

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SeededDevice:
    user_id: str
    identity: DeviceIdentity
    token: str

    def ws_headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        headers.update(ProofSigner(self.identity).proof_headers("GET", "/v1/ws", b"",
                                                                self.token))
        return headers


@dataclass
class Seed:
    room_id: str
    sender: SeededDevice
    members: list[SeededDevice]
    idle: list[SeededDevice]


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def seed(data_dir: Path, *, members: int, idle: int) -> Seed:
    """A room with ``members`` receiving devices plus a sender, and ``idle`` devices of
    users in no room; every device active, with an access token."""
    settings = ServerSettings(data_dir=data_dir, require_device_approval=False)
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_tls(data_dir)
    db = Database(settings.db_path, MIGRATIONS)
    password_hash = hash_password("bench-password-not-used")
    now = int(time.time() * 1000)

    def make(conn, name: str) -> SeededDevice:
        # No usable TOTP seed: these users never log in, their sessions are issued here.
        user = users_crud.create_user(conn, username=name, role="physician",
                                      password_hash=password_hash, totp_sealed="none")
        ident = DeviceIdentity.generate()
        devices_crud.create_device(
            conn, device_id=ident.device_id, user_id=user.id, ed25519=ident.ed25519,
            curve25519=ident.curve25519, display_name="bench", enroll_ts_ms=now,
            enroll_signature="bench", active=True)
        issued = sessions.create_session(conn, settings, user_id=user.id,
                                         device_id=ident.device_id)
        return SeededDevice(user.id, ident, issued.access_token)

    with db.transaction() as conn:
        sender = make(conn, "sender")
        room, _ = rooms.create_room(conn, creator_user_id=sender.user_id,
                                    creator_device_id=sender.identity.device_id, now_ms=now)
        receivers = [make(conn, f"member{i:03d}") for i in range(members)]
        for dev in receivers:
            grants.grant(conn, room.room_id, target_user_id=dev.user_id, role="member",
                         expires_ms=None, granted_by=sender.user_id, now_ms=now)
        idlers = [make(conn, f"idle{i:04d}") for i in range(idle)]
    return Seed(room.room_id, sender, receivers, idlers)


@dataclass
class ChildServer:
    proc: subprocess.Popen
    port: int
    ca_pem: str

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process so far (from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def _wait_ready(proc: subprocess.Popen, ready: Path, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError("server did not become ready")
        time.sleep(0.05)
    return json.loads(ready.read_text())


def start_relay(data_dir: Path) -> ChildServer:
    ready = data_dir / "ready.json"
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "server_stub", "serve", "--data-dir", str(data_dir),
         "--port", "0", "--ready-file", str(ready), "--no-device-approval"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    info = _wait_ready(proc, ready)
    return ChildServer(proc, info["port"], tls_files(data_dir).ca_cert.read_text())


def start_reference(data_dir: Path) -> ChildServer:
    files = tls_files(data_dir)
    ready = data_dir / "reference-ready.json"
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/bench/ws_reference_server.py"), str(files.cert),
         str(files.key), str(ready)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    info = _wait_ready(proc, ready)
    return ChildServer(proc, info["port"], files.ca_cert.read_text())


@dataclass
class Receiver:
    """One receiving device: records when each message id first arrives."""

    ws: object
    arrivals: dict[str, float] = field(default_factory=dict)
    count: int = 0  # pushes received, duplicates included


def client_ssl(ca_pem: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=ca_pem)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def open_many(count: int, opener, *, parallel: int = 64) -> list:
    gate = asyncio.Semaphore(parallel)

    async def one(i: int):
        async with gate:
            return await opener(i)

    return await asyncio.gather(*(one(i) for i in range(count)))


async def connect_relay_ws(server: ChildServer, dev: SeededDevice, ctx: ssl.SSLContext):
    return await websockets.connect(
        f"wss://127.0.0.1:{server.port}/v1/ws", ssl=ctx, additional_headers=dev.ws_headers(),
        open_timeout=30, compression=None, max_size=1 << 20, ping_interval=None)


async def connect_reference_ws(server: ChildServer, role: str, ctx: ssl.SSLContext):
    ws = await websockets.connect(f"wss://127.0.0.1:{server.port}/", ssl=ctx, open_timeout=30,
                                  compression=None, max_size=1 << 20, ping_interval=None)
    await ws.send(role)
    return ws


def event_ids(frame: str) -> list[str]:
    """Event ids pushed in one frame (one JSON object per line)."""
    out = []
    for line in frame.split("\n"):
        data = json.loads(line)
        if data.get("type") == "event":
            out.append(data["event"]["event_id"])
    return out


async def receive_into(receiver: Receiver, parse=event_ids) -> None:
    with contextlib.suppress(websockets.exceptions.ConnectionClosed):
        async for frame in receiver.ws:
            now = time.perf_counter()
            for event_id in parse(frame):
                receiver.arrivals.setdefault(event_id, now)
                receiver.count += 1


def relay_transport(server: ChildServer, dev: SeededDevice) -> Transport:
    transport = Transport(f"https://127.0.0.1:{server.port}", server.ca_pem,
                          signer=ProofSigner(dev.identity), timeout_s=30)
    transport.token = dev.token
    return transport


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
