"""TURN credentials in coturn's REST scheme."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import sys
import time

import pyotp
import pytest

from app.core.errors import ServerError
from app.crypto.identity import DeviceIdentity
from app.crypto.proof import ProofSigner
from app.net.transport import Transport
from tests.support.clients import enrollment_body, new_user_device


async def test_no_secret_means_turn_unavailable(open_server):
    _, dev = await new_user_device(open_server, "alice")
    try:
        with pytest.raises(ServerError) as err:
            await dev.transport.get_json("/v1/turn/credentials")
        assert (err.value.status, err.value.code) == (503, "turn_unavailable")
    finally:
        await dev.aclose()


async def test_credentials_follow_the_coturn_rest_scheme(make_server):
    server = make_server(require_device_approval=False, turn_secret="s3cret-shared",
                         turn_urls=("turn:127.0.0.1:3478?transport=udp",), turn_ttl_s=600)
    creds, dev = await new_user_device(server, "alice")
    try:
        result = await dev.transport.get_json("/v1/turn/credentials")
        expiry, user_id = result["username"].split(":")
        assert user_id == creds.user_id
        assert abs(int(expiry) - (time.time() + 600)) < 5
        expected = base64.b64encode(hmac.new(b"s3cret-shared", result["username"].encode(),
                                             hashlib.sha1).digest()).decode()
        assert result["credential"] == expected
        assert result["ttl"] == 600 and result["uris"] == ["turn:127.0.0.1:3478?transport=udp"]
    finally:
        await dev.aclose()


async def test_turn_needs_authentication(make_server):
    server = make_server(require_device_approval=False, turn_secret="x")
    _, dev = await new_user_device(server, "alice")
    try:
        dev.transport.token = ""
        with pytest.raises(ServerError) as err:
            await dev.transport.get_json("/v1/turn/credentials")
        assert err.value.status == 401
    finally:
        await dev.aclose()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return udp.getsockname()[1]


@pytest.fixture
def coturn(tmp_path):
    """Debian's coturn on loopback with the REST-API shared secret."""
    if shutil.which("turnserver") is None or shutil.which("turnutils_uclient") is None:
        pytest.skip("coturn not installed")
    port, secret = _free_port(), "coturn-shared-secret"
    process = subprocess.Popen(
        ["turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
         f"--listening-port={port}", "--use-auth-secret", f"--static-auth-secret={secret}",
         "--realm=safeconsult.test", "--no-tls", "--no-dtls", "--no-cli",
         "--allow-loopback-peers", f"--pidfile={tmp_path / 'turn.pid'}",
         "--log-file=stdout", "--simple-log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # listening once its TCP port accepts
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield port, secret
    process.terminate()
    process.wait(timeout=10)


def _allocate(port: int, username: str, credential: str) -> bool:
    result = subprocess.run(
        ["turnutils_uclient", "-y", "-n", "1", "-c", "-u", username, "-w", credential,
         "-p", str(port), "127.0.0.1"], capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    return "Cannot complete Allocation" not in output and "Total lost packets 0" in output


async def test_coturn_accepts_the_credentials_and_refuses_forged_ones(make_server, coturn):
    port, secret = coturn
    server = make_server(require_device_approval=False, turn_secret=secret,
                         turn_urls=(f"turn:127.0.0.1:{port}?transport=udp",))
    _, dev = await new_user_device(server, "alice")
    try:
        result = await dev.transport.get_json("/v1/turn/credentials")
    finally:
        await dev.aclose()
    assert await asyncio.to_thread(_allocate, port, result["username"], result["credential"])
    forged = base64.b64encode(b"\0" * 20).decode()
    assert not await asyncio.to_thread(_allocate, port, result["username"], forged)


async def test_serve_command_takes_the_turn_secret_from_a_file(tmp_path):
    """The real ``python -m server_stub serve`` process, configured from the command line."""
    secret_file = tmp_path / "turn.secret"
    secret_file.write_text("from-a-file\n")
    data, ready = tmp_path / "data", tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "server_stub", "serve", "--data-dir", str(data), "--port", "0",
         "--ready-file", str(ready), "--no-device-approval", "--turn-secret-file",
         str(secret_file), "--turn-url", "turn:127.0.0.1:3478", "--turn-url",
         "turns:127.0.0.1:5349"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert process.poll() is None and time.monotonic() < deadline
            await asyncio.sleep(0.1)
        url = json.loads(ready.read_text())["url"]
        added = subprocess.run(
            [sys.executable, "-m", "server_stub", "admin", "--data-dir", str(data), "user",
             "add", "tina", "--role", "nurse"], input="long enough password\n",
            capture_output=True, text=True, timeout=60, check=True)
        secret = added.stdout.split("secret=")[1].split("&")[0]
        identity = DeviceIdentity.generate()
        transport = Transport(url, (data / "tls" / "ca.pem").read_text(),
                              signer=ProofSigner(identity))
        try:
            enrolled = await transport.post_json("/v1/devices/enroll", enrollment_body(
                identity, "tina", "long enough password", pyotp.TOTP(secret).now()))
            transport.token = enrolled["session"]["access_token"]
            result = await transport.get_json("/v1/turn/credentials")
        finally:
            await transport.aclose()
        assert result["uris"] == ["turn:127.0.0.1:3478", "turns:127.0.0.1:5349"]
        expected = base64.b64encode(hmac.new(b"from-a-file", result["username"].encode(),
                                             hashlib.sha1).digest()).decode()
        assert result["credential"] == expected
    finally:
        process.terminate()
        process.wait(timeout=15)
