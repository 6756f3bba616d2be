"""Transfers survive being killed and dropped, and the received bytes match.

* **Killed**: a child process runs the engine (its own Transport, SQLCipher cache, audit
  log, keyring file) and SIGKILLs itself at a random point of the transfer -- preparing,
  uploading or downloading. A fresh child resumes from the persisted state, and so on until
  the file is stored on the receiving device. Every resume must start from at least the
  bytes the killed process had reported done (nothing done twice from zero).
* **Dropped**: a TCP proxy between the engine and the server cuts every connection at
  random moments; the engine retries in the same process. When the server stays out of
  reach past the retries, the transfer pauses and ``resume`` finishes it later.

The CI form moves 20 MB killed at 5 points. The issue's full form (500 MB, 20 kills) is the
slow test::

    .venv/bin/python -m pytest -m slow -s tests/integration/test_transfer_resume.py
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.crypto.identity import DeviceIdentity
from app.crypto.proof import ProofSigner
from app.net import relay_api
from app.net.transport import Transport
from app.security.keystore import KeyringKeyStore
from app.services.audit import AuditService
from app.services.transfers import (
    DeviceSigner,
    KnownDevice,
    TransferEngine,
    TransferInterrupted,
    TransferOptions,
)
from app.storage.cache import Cache
from app.storage.files import EncryptedFileStore
from tests.unit.security.file_keyring import FileTestKeyring

if TYPE_CHECKING:
    from tests.support.clients import LoggedInDevice

ROOT = Path(__file__).parents[2]


# -- the child process ------------------------------------------------------------------------

def _engine_from(cfg: dict, transport: Transport) -> tuple[TransferEngine, Cache]:
    backend = FileTestKeyring(Path(cfg["keyring"]))
    keys = KeyringKeyStore.open(cfg["user_id"], cfg["device_id"], backend=backend,
                                allow_test_backend=True)
    cache = Cache.open(Path(cfg["cache_dir"]), keys)
    identity = DeviceIdentity.unpickle(cfg["device_id"], cfg["pickle"],
                                       bytes.fromhex(cfg["pickle_key"]))
    audit = AuditService(cache, identity.sign, device_id=cfg["device_id"])
    options = TransferOptions(chunk_size=cfg["chunk_size"], parallel=cfg.get("parallel", 3),
                              progress_interval_s=cfg.get("progress_interval_s", 0),
                              commit_interval_s=cfg.get("commit_interval_s", 0))
    engine = TransferEngine(cache, transport,
                            DeviceSigner(cfg["user_id"], cfg["device_id"], identity.sign),
                            audit=audit, options=options)
    return engine, cache


async def _child(cfg: dict) -> None:
    identity = DeviceIdentity.unpickle(cfg["device_id"], cfg["pickle"],
                                       bytes.fromhex(cfg["pickle_key"]))
    transport = Transport(cfg["url"], Path(cfg["ca"]).read_text(), signer=ProofSigner(identity))
    transport.token = cfg["token"]
    engine, _cache = _engine_from(cfg, transport)
    offsets = cfg["offsets"]
    die_at = cfg.get("die_at")

    def report(p) -> None:
        position = offsets.get(p.phase, 0) + p.bytes_done
        print(f"P {p.phase} {p.bytes_done} {p.resumed_bytes} {position}", flush=True)
        if die_at is not None and p.phase in offsets and position >= die_at:
            os.kill(os.getpid(), signal.SIGKILL)

    engine.progress.connect(report)
    pending = [t for t in engine.transfers() if not t.final]
    if pending:
        result = await engine.resume(pending[0].transfer_id)
        out = (result.descriptor.to_wire() if result.descriptor is not None
               else {"file_id": result.file_id})
    elif cfg["mode"] == "upload":
        out = (await engine.upload(cfg["room_id"], cfg["source"])).to_wire()
    else:
        sender = KnownDevice(**cfg["sender"])
        out = {"file_id": await engine.download(cfg["descriptor"], sender)}
    print("D " + json.dumps(out), flush=True)
    await transport.aclose()


# -- the parent -------------------------------------------------------------------------------

@dataclass
class Side:
    device: LoggedInDevice
    cfg: dict


def _side(device: LoggedInDevice, server, root: Path, keyring: Path, chunk: int) -> Side:
    pickle_key = os.urandom(32)
    return Side(device, {
        "url": server.url, "ca": str(server.ca_path), "keyring": str(keyring),
        "user_id": device.user_id, "device_id": device.device_id,
        "pickle": device.identity.pickle(pickle_key), "pickle_key": pickle_key.hex(),
        "token": device.transport.token, "cache_dir": str(root), "chunk_size": chunk,
    })


def _run_child(cfg: dict, path: Path, timeout: float) -> tuple[int, list[list[str]], dict | None]:
    path.write_text(json.dumps(cfg))
    proc = subprocess.run([sys.executable, "-m", "tests.integration.test_transfer_resume",
                           str(path)], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)
    progress, done = [], None
    for line in proc.stdout.splitlines():
        if line.startswith("P "):
            progress.append(line.split()[1:])
        elif line.startswith("D "):
            done = json.loads(line[2:])
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed ({proc.returncode}) after {progress[-3:]}: "
                             f"{proc.stderr[-3000:]}")
    return proc.returncode, progress, done


def _write_random(path: Path, size: int) -> str:
    hasher = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 8 << 20))
            hasher.update(block)
            out.write(block)
            left -= len(block)
    return hasher.hexdigest()


async def kill_and_resume(server, tmp_path: Path, *, size: int, kills: int, chunk: int,
                          seed: int, timeout: float = 120) -> list[tuple[str, int]]:
    from tests.support.clients import new_user_device  # not in the child: it loads the server

    _c, alice_dev = await new_user_device(server, "dr.sender")
    _c, bob_dev = await new_user_device(server, "dr.receiver")
    room_id = await relay_api.create_room(alice_dev.transport)
    await relay_api.invite(alice_dev.transport, room_id, username="dr.receiver")
    await relay_api.join(bob_dev.transport, room_id)
    keyring = tmp_path / "keyring.json"
    alice = _side(alice_dev, server, tmp_path / "alice", keyring, chunk)
    bob = _side(bob_dev, server, tmp_path / "bob", keyring, chunk)
    source = tmp_path / "series.bin"
    digest = _write_random(source, size)

    count = max(1, -(-size // chunk))
    blob = size + 16 * count
    # The timeline: preparing (plaintext), uploading, then downloading (ciphertext).
    offsets = {"preparing": 0, "uploading": size, "downloading": size + blob}
    rng = random.Random(seed)
    points = sorted(rng.randrange(size // 50, size + 2 * blob - blob // 50) for _ in range(kills))
    alice.cfg |= {"mode": "upload", "room_id": room_id, "source": str(source),
                  "offsets": offsets}
    bob.cfg |= {"mode": "download", "offsets": offsets,
                "sender": {"user_id": alice_dev.user_id, "device_id": alice_dev.device_id,
                           "ed25519": alice_dev.identity.ed25519}}

    killed: list[tuple[str, int]] = []
    last_reported: dict[str, int] = {}
    descriptor, file_id = None, None
    runs = 0
    while file_id is None:
        runs += 1
        assert runs <= kills + 6, f"too many runs, no progress: {killed} seed={seed}"
        side = alice if descriptor is None else bob
        target = points[len(killed)] if len(killed) < len(points) else None
        cfg = side.cfg | {"die_at": target, "descriptor": descriptor}
        code, progress, done = _run_child(cfg, tmp_path / "child.json", timeout)
        phases_seen = [p[0] for p in progress]
        # A resumed upload or download starts at least where the killed one had reported.
        for phase in ("uploading", "downloading"):
            if phase in phases_seen and phase in last_reported:
                first = next(p for p in progress if p[0] == phase)
                assert int(first[2]) >= last_reported[phase], (
                    f"{phase} resumed from {first[2]} after {last_reported[phase]} had been "
                    f"reported (seed={seed}, kills so far {killed})")
        if code == -signal.SIGKILL:
            last = progress[-1]
            killed.append((last[0], int(last[1])))
            if last[0] in ("uploading", "downloading"):
                last_reported[last[0]] = int(last[1])
            continue
        assert done is not None, f"child ended without a result (seed={seed})"
        if descriptor is None:
            descriptor = done
        else:
            file_id = done["file_id"]
    assert len(killed) == kills, f"kills {killed} of points {points} (seed={seed})"

    # The receiving device's store holds exactly the sent bytes (read by this process).
    bob_keys = KeyringKeyStore.open(bob_dev.user_id, bob_dev.device_id,
                                    backend=FileTestKeyring(keyring), allow_test_backend=True)
    with Cache.open(tmp_path / "bob", bob_keys) as cache:
        hasher = hashlib.sha256()
        for part in EncryptedFileStore(cache).open(file_id):
            hasher.update(part)
        assert hasher.hexdigest() == digest
        assert not any((tmp_path / "bob" / "transfers").glob("*"))
    for dev in (alice_dev, bob_dev):
        await dev.aclose()
    return killed


async def test_a_transfer_killed_at_random_points_resumes_each_time(open_server, tmp_path):
    killed = await kill_and_resume(open_server, tmp_path, size=20 * 1_000_000, kills=5,
                                   chunk=256 * 1024, seed=int.from_bytes(os.urandom(4)))
    assert len(killed) == 5


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_500_mb_killed_at_20_random_points(open_server, tmp_path):
    killed = await kill_and_resume(open_server, tmp_path, size=500 * 1_000_000, kills=20,
                                   chunk=TransferOptions().chunk_size,
                                   seed=int.from_bytes(os.urandom(4)),
                                   timeout=900)
    print("killed at", killed)


# -- dropped connections ----------------------------------------------------------------------

class DroppingProxy:
    """A TCP relay to the server that can cut every open connection, or refuse new ones
    (the network edge: TLS passes through untouched)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: set[asyncio.StreamWriter] = set()
        self.refusing = False
        self.drops = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    def drop_all(self) -> None:
        self.drops += 1
        for writer in list(self.writers):
            writer.transport.abort()

    async def close(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _proxied_engine(device: LoggedInDevice, server, port: int, root: Path,
                          **options) -> tuple[TransferEngine, Cache, Transport]:
    transport = Transport(f"https://127.0.0.1:{port}", server.ca_pem,
                          signer=ProofSigner(device.identity))
    transport.token = device.transport.token
    keys = KeyringKeyStore.open(device.user_id, device.device_id,
                                backend=FileTestKeyring(root.parent / "keyring.json"),
                                allow_test_backend=True)
    cache = Cache.open(root, keys)
    engine = TransferEngine(
        cache, transport, DeviceSigner(device.user_id, device.device_id, device.identity.sign),
        audit=AuditService(cache, device.identity.sign, device_id=device.device_id),
        options=TransferOptions(chunk_size=128 * 1024, retry_base_s=0.02, retry_max_s=0.1,
                                progress_interval_s=0, **options))
    return engine, cache, transport


async def test_dropped_connections_are_retried_and_a_long_outage_pauses(open_server, tmp_path):
    from tests.support.clients import new_user_device

    _c, alice_dev = await new_user_device(open_server, "dr.sender")
    _c, bob_dev = await new_user_device(open_server, "dr.receiver")
    room_id = await relay_api.create_room(alice_dev.transport)
    await relay_api.invite(alice_dev.transport, room_id, username="dr.receiver")
    await relay_api.join(bob_dev.transport, room_id)
    proxy = DroppingProxy(open_server.port)
    port = await proxy.start()
    alice, alice_cache, alice_t = await _proxied_engine(alice_dev, open_server, port,
                                                        tmp_path / "alice", max_retries=20)
    bob, bob_cache, bob_t = await _proxied_engine(bob_dev, open_server, port, tmp_path / "bob",
                                                  max_retries=2)
    source = tmp_path / "path.svs"
    digest = _write_random(source, 6 * 1_000_000)
    rng = random.Random()
    try:
        # Upload: every connection cut at 5 random moments of the transfer.
        cuts = sorted(rng.sample(range(1, 40), 5))

        def cut(p) -> None:
            if p.phase == "uploading" and cuts and p.chunks_done >= cuts[0]:
                cuts.pop(0)
                proxy.drop_all()

        alice.progress.connect(cut)
        descriptor = await alice.upload(room_id, source)
        assert proxy.drops == 5

        # Download: the server goes out of reach for longer than the retries -> paused.
        outages = []

        def outage(p) -> None:
            if p.phase == "downloading" and p.chunks_done >= 10 and not outages:
                outages.append(p)
                proxy.refusing = True
                proxy.drop_all()

        bob.progress.connect(outage)
        with pytest.raises(TransferInterrupted) as caught:
            await bob.download(descriptor.to_wire(), KnownDevice(
                alice_dev.user_id, alice_dev.device_id, alice_dev.identity.ed25519))
        assert "resume" in caught.value.user_message
        (paused,) = bob.transfers()
        assert paused.phase == "paused" and 10 <= paused.chunks_done < paused.chunk_count
        assert caught.value.transfer_id == paused.transfer_id
        proxy.refusing = False
        result = await bob.resume(paused.transfer_id)
        hasher = hashlib.sha256()
        for part in bob.files.open(result.file_id):
            hasher.update(part)
        assert hasher.hexdigest() == digest
    finally:
        await proxy.close()
        for t in (alice_t, bob_t):
            await t.aclose()
        alice_cache.close()
        bob_cache.close()
        await alice_dev.aclose()
        await bob_dev.aclose()


if __name__ == "__main__":
    asyncio.run(_child(json.loads(Path(sys.argv[1]).read_text())))
