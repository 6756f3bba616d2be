"""``admin grant add|revoke|list`` as an administrator runs it: a real CLI process on the
data directory."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from server_stub import admin
from server_stub.crud import rooms


def _cli(data_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "server_stub", "admin", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, timeout=60, check=False)


def test_grant_add_list_revoke(tmp_path):
    db = admin.open_database(tmp_path)
    owner = admin.add_user(db, "owner", "physician", "pw-owner-123456")
    admin.add_user(db, "locum", "consultant", "pw-locum-123456")
    with db.transaction() as conn:
        room, _ = rooms.create_room(conn, creator_user_id=owner.user_id, creator_device_id=None,
                                    now_ms=int(time.time() * 1000))
    before = time.time() * 1000
    added = _cli(tmp_path, "grant", "add", "--room", room.room_id, "--user", "locum",
                 "--role", "observer", "--hours", "2")
    assert added.returncode == 0, added.stderr
    conn = db.connection()
    member = conn.execute("SELECT * FROM room_members WHERE room_id = ? AND role = 'observer'",
                          (room.room_id,)).fetchone()
    assert member["state"] == "joined"
    assert before + 2 * 3_600_000 <= member["expires_ms"] <= time.time() * 1000 + 2 * 3_600_000
    listed = _cli(tmp_path, "grant", "list", "--room", room.room_id)
    assert "locum" in listed.stdout and "observer" in listed.stdout and "until" in listed.stdout
    revoked = _cli(tmp_path, "grant", "revoke", "--room", room.room_id, "--user", "locum")
    assert revoked.returncode == 0, revoked.stderr
    assert "locum" not in _cli(tmp_path, "grant", "list", "--room", room.room_id).stdout
    actions = [json.loads(line)["action"] for line in
               _cli(tmp_path, "audit", "export").stdout.splitlines()]
    assert "room.grant" in actions and "room.revoke" in actions
    assert _cli(tmp_path, "audit", "verify").returncode == 0


def test_grant_refusals(tmp_path):
    db = admin.open_database(tmp_path)
    owner = admin.add_user(db, "owner", "physician", "pw-owner-123456")
    admin.add_user(db, "locum", "consultant", "pw-locum-123456")
    with db.transaction() as conn:
        room, _ = rooms.create_room(conn, creator_user_id=owner.user_id, creator_device_id=None,
                                    now_ms=int(time.time() * 1000))
    cases = [
        (1, ["add", "--room", room.room_id, "--user", "nobody", "--hours", "1"]),
        (1, ["add", "--room", "AAAAAAAAAAAAAAAAAAAAAA", "--user", "locum", "--hours", "1"]),
        (2, ["add", "--room", room.room_id, "--user", "locum", "--hours", "0"]),
        (2, ["add", "--room", room.room_id, "--user", "locum", "--role", "owner", "--hours", "1"]),
        (1, ["revoke", "--room", room.room_id, "--user", "locum"]),
        (1, ["add", "--room", room.room_id, "--user", "owner", "--hours", "1"]),
    ]
    for expected, args in cases:
        done = _cli(tmp_path, "grant", *args)
        assert done.returncode == expected, (args, done.returncode, done.stderr[-500:])
