"""The hash-chained audit log: what is recorded, and that edits, deletions, reordering and
truncation made by hand with sqlite3 are all caught, by the API and by the admin CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from app.core.errors import ServerError
from server_stub import admin
from server_stub.crud.audit import append_audit, verify_chain
from tests.support.clients import create_user, new_user_device, server_db


def _cli(data_dir, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server_stub", "admin", "--data-dir",
                           str(data_dir), *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)


def _tamper(db_path, *statements: str) -> None:
    """An attacker with the database file: drops the append-only triggers and edits."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    for sql in statements:
        conn.execute(sql)
    conn.close()


def _seed(server, n: int = 6) -> None:
    db = server_db(server)
    with db.transaction() as conn:
        for i in range(n):
            append_audit(conn, actor_user_id=None, device_id=None, action=f"test.{i}",
                         object_type="thing", object_id=str(i), outcome="ok", source="test",
                         detail={"i": i})


async def test_actions_are_recorded_and_the_chain_verifies(open_server):
    creds, dev = await new_user_device(open_server, "alice", role="auditor")
    try:
        await dev.transport.post_json("/v1/audit/events",
                                      {"action": "file.export", "object_type": "consult",
                                       "object_id": "c-1", "detail": {"format": "pdf"}})
        page = await dev.transport.get_json("/v1/audit?after_seq=0&limit=100")
        actions = [e["action"] for e in page["entries"]]
        assert actions[:3] == ["user.create", "device.enroll", "login"]
        assert actions[-1] == "client.file.export"
        assert page["entries"][-1]["actor_user_id"] == creds.user_id
        status = await dev.transport.get_json("/v1/audit/verify")
        assert status["ok"] and status["entries"] == len(actions)
    finally:
        await dev.aclose()


async def test_audit_is_for_auditors_and_clients_cannot_forge_server_actions(open_server):
    _, dev = await new_user_device(open_server, "alice", role="physician")
    try:
        with pytest.raises(ServerError) as err:
            await dev.transport.get_json("/v1/audit")
        assert (err.value.status, err.value.code) == (403, "forbidden")
        with pytest.raises(ServerError) as err:
            await dev.transport.post_json("/v1/audit/events", {"action": "login"})
        assert err.value.status == 422
        with pytest.raises(ServerError) as err:
            await dev.transport.post_json("/v1/audit/events",
                                          {"action": "file.print", "detail": {"x": {"y": 1}}})
        assert err.value.status == 422
    finally:
        await dev.aclose()


def test_append_needs_a_transaction_and_rows_cannot_be_updated(server):
    db = server_db(server)
    with pytest.raises(RuntimeError):
        append_audit(db.connection(), actor_user_id=None, device_id=None, action="x",
                     object_type=None, object_id=None, outcome="ok", source="test")
    _seed(server, 1)
    with pytest.raises(sqlite3.IntegrityError):
        db.connection().execute("UPDATE audit_log SET outcome = 'failed'")
    with pytest.raises(sqlite3.IntegrityError):
        db.connection().execute("DELETE FROM audit_log")


@pytest.mark.parametrize(("name", "statements", "bad_seq"), [
    ("edit", ["UPDATE audit_log SET object_id = 'other' WHERE seq = 3"], 3),
    ("edit-and-rehash-nothing-else", ["UPDATE audit_log SET outcome = 'failed' WHERE seq = 5"], 5),
    ("delete", ["DELETE FROM audit_log WHERE seq = 4"], 5),
    ("reorder", ["UPDATE audit_log SET seq = -1 WHERE seq = 3",
                 "UPDATE audit_log SET seq = 3 WHERE seq = 4",
                 "UPDATE audit_log SET seq = 4 WHERE seq = -1"], 3),
    ("truncate", ["DELETE FROM audit_log WHERE seq >= 6"], 6),
])
def test_tampering_is_detected(server, name, statements, bad_seq):
    _seed(server)
    db = server_db(server)
    assert verify_chain(db.connection()).ok
    _tamper(db.path, *statements)
    report = verify_chain(db.connection())
    assert not report.ok
    assert report.first_bad_seq == bad_seq, report


def test_cli_verify_names_the_first_broken_entry_and_exports_jsonl(server):
    _seed(server)
    ok = _cli(server.data_dir, "audit", "verify")
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stderr
    head = ok.stdout.strip().split("head ")[1]
    exported = _cli(server.data_dir, "audit", "export")
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert f"{lines[-1]['seq']}:{lines[-1]['entry_hash']}" == head

    _tamper(server_db(server).path, "UPDATE audit_log SET detail = '{\"i\":99}' WHERE seq = 2")
    broken = _cli(server.data_dir, "audit", "verify")
    assert broken.returncode == 1
    assert "entry 2" in broken.stderr and "altered" in broken.stderr


def test_cli_expect_head_catches_a_rewritten_tail(server):
    _seed(server, 4)
    head = _cli(server.data_dir, "audit", "verify").stdout.strip().split("head ")[1]
    _seed(server, 2)  # the log grows: an old head stays valid
    assert _cli(server.data_dir, "audit", "verify", "--expect-head", head).returncode == 0
    # The attacker cuts entries 4.. and rewrites the recorded head to match.
    db = server_db(server)
    _tamper(db.path, "DELETE FROM audit_log WHERE seq >= 4")
    conn = sqlite3.connect(db.path, isolation_level=None)
    new_head = conn.execute("SELECT seq || ':' || entry_hash FROM audit_log "
                            "ORDER BY seq DESC LIMIT 1").fetchone()[0]
    conn.execute("UPDATE server_meta SET value = ? WHERE key = 'audit_head'", (new_head,))
    conn.close()
    assert _cli(server.data_dir, "audit", "verify").returncode == 0  # self-consistent now
    result = _cli(server.data_dir, "audit", "verify", "--expect-head", head)
    assert result.returncode == 1 and "expected head" in result.stderr


def test_admin_actions_are_audited(server):
    db = server_db(server)
    user = create_user(server, "zed")
    admin.disable_user(db, "zed")
    admin.enable_user(db, "zed")
    rows = db.connection().execute(
        "SELECT action, object_id, source FROM audit_log WHERE object_id = ?",
        (user.user_id,)).fetchall()
    assert [r[0] for r in rows] == ["user.create", "user.disable", "user.enable"]
    assert {r[2] for r in rows} == {"admin-cli"}


async def test_client_entries_are_idempotent_by_device_seq(open_server):
    _, dev = await new_user_device(open_server, "alice")
    _, other = await new_user_device(open_server, "bob")
    try:
        entry = {"action": "file.print", "object_type": "consult", "object_id": "c-9",
                 "detail": {"device_seq": 1, "entry_hash": "a" * 64, "pages": 2}}
        first = await dev.transport.post_json("/v1/audit/events", entry)
        again = await dev.transport.post_json("/v1/audit/events", entry)
        assert again["seq"] == first["seq"]
        # Another device's seq 1 is its own entry.
        theirs = await other.transport.post_json("/v1/audit/events", entry)
        assert theirs["seq"] != first["seq"]
        with pytest.raises(ServerError) as err:
            await dev.transport.post_json("/v1/audit/events", {
                **entry, "detail": {**entry["detail"], "entry_hash": "b" * 64}})
        assert (err.value.status, err.value.code) == (409, "audit_conflict")
        nxt = await dev.transport.post_json("/v1/audit/events", {
            **entry, "detail": {**entry["detail"], "device_seq": 2, "entry_hash": "c" * 64}})
        assert nxt["seq"] > theirs["seq"]
        rows = server_db(open_server).connection().execute(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'client.file.print'").fetchone()[0]
        assert rows == 3
        assert verify_chain(server_db(open_server).connection()).ok
    finally:
        await dev.aclose()
        await other.aclose()
