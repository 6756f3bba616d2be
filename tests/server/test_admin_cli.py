"""The admin CLI as a real subprocess: ``python -m server_stub admin --data-dir DIR ...``."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse

import pyotp
import pytest

from app.core.errors import ServerError
from tests.support.clients import create_user, enroll, login, server_db


def _cli(data_dir, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server_stub", "admin", "--data-dir",
                           str(data_dir), *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)


def _secret_from(stdout: str) -> str:
    uri = next(line for line in stdout.splitlines() if line.startswith("otpauth://totp/"))
    query = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)
    assert query["issuer"] == ["SafeConsult"]
    return query["secret"][0]


async def test_user_added_by_cli_enrolls_and_is_approved_by_cli(server):
    password = "correct horse battery"
    added = _cli(server.data_dir, "user", "add", "Walter", "--role", "consultant",
                 stdin=password + "\n")
    assert added.returncode == 0, added.stderr
    assert password not in added.stdout
    secret = _secret_from(added.stdout)
    listed = _cli(server.data_dir, "user", "list")
    assert "walter" in listed.stdout and "consultant" in listed.stdout

    dev = await enroll(server, "walter", password, secret)
    try:
        devices = _cli(server.data_dir, "device", "list", "--user", "walter")
        assert dev.device_id in devices.stdout and "pending" in devices.stdout
        approved = _cli(server.data_dir, "device", "approve", dev.device_id)
        assert approved.returncode == 0, approved.stderr
        result = await login(server, dev, password, secret)
        assert result["role"] == "consultant"
        again = _cli(server.data_dir, "device", "approve", dev.device_id)
        assert again.returncode == 1 and "not pending" in again.stderr
        wiped = _cli(server.data_dir, "device", "wipe", dev.device_id)
        assert wiped.returncode == 0 and "wipe order" in wiped.stdout
        status = await dev.transport.get_json("/v1/devices/self/status")
        assert (status["state"], status["order"]) == ("revoked", "wipe")
    finally:
        await dev.aclose()


def test_refusals_exit_1_and_usage_errors_exit_2(tmp_path):
    data = tmp_path / "data"
    assert _cli(data, "user", "add", "amy", "--role", "physician",
                stdin="long enough password\n").returncode == 0
    dup = _cli(data, "user", "add", "AMY", "--role", "nurse", stdin="long enough password\n")
    assert dup.returncode == 1 and "already exists" in dup.stderr
    short = _cli(data, "user", "add", "bea", "--role", "nurse", stdin="short\n")
    assert short.returncode == 1 and "12 characters" in short.stderr
    bad_name = _cli(data, "user", "add", "9lives", "--role", "nurse",
                    stdin="long enough password\n")
    assert bad_name.returncode == 1
    assert _cli(data, "user", "disable", "nobody").returncode == 1
    assert _cli(data, "device", "revoke", "A" * 22).returncode == 1
    assert _cli(data, "user", "add", "cat", "--role", "janitor").returncode == 2
    assert _cli(data, "user").returncode == 2
    assert _cli(data, "frobnicate").returncode == 2
    info = _cli(data, "info")
    assert info.returncode == 0 and "ca.pem" in info.stdout


def test_seed_demo_prints_usable_credentials(tmp_path):
    result = _cli(tmp_path / "data", "seed-demo", "--json")
    assert result.returncode == 0, result.stderr
    users = json.loads(result.stdout)
    assert {u["role"] for u in users} == {"physician", "nurse", "consultant", "it_admin",
                                          "auditor"}
    for u in users:
        assert len(u["password"]) >= 12
        assert pyotp.TOTP(u["totp_secret"]).now().isdigit()
        assert u["otpauth_uri"].startswith("otpauth://totp/")
    assert len({u["password"] for u in users}) == len(users)
    again = _cli(tmp_path / "data", "seed-demo", "--json")
    assert again.returncode == 1  # the demo users exist already


def test_cli_and_running_server_share_the_database(server):
    added = _cli(server.data_dir, "user", "add", "dora", "--role", "nurse",
                 stdin="long enough password\n")
    assert added.returncode == 0
    row = server_db(server).connection().execute(
        "SELECT role FROM users WHERE username = 'dora'").fetchone()
    assert row[0] == "nurse"


async def test_reset_totp_and_password_end_sessions_and_replace_credentials(open_server):
    creds = create_user(open_server, "erin")
    dev = await enroll(open_server, creds.username, creds.password, creds.totp_secret)
    try:
        reset = _cli(open_server.data_dir, "user", "reset-totp", "erin")
        assert reset.returncode == 0, reset.stderr
        new_secret = _secret_from(reset.stdout)
        assert new_secret != creds.totp_secret
        with pytest.raises(ServerError) as err:
            await dev.transport.get_json("/v1/auth/session")
        assert err.value.status == 401  # the session ended with the reset
        pw = _cli(open_server.data_dir, "user", "reset-password", "erin",
                  stdin="a brand new password\n")
        assert pw.returncode == 0, pw.stderr
        with pytest.raises(ServerError) as err:
            await login(open_server, dev, "a brand new password", creds.totp_secret)
        assert err.value.code == "invalid_credentials"  # old authenticator
        with pytest.raises(ServerError) as err:
            await login(open_server, dev, creds.password, new_secret)
        assert err.value.code == "invalid_credentials"  # old password
        result = await login(open_server, dev, "a brand new password", new_secret)
        assert result["username"] == "erin"
    finally:
        await dev.aclose()
    assert _cli(open_server.data_dir, "user", "reset-totp", "nobody").returncode == 1
