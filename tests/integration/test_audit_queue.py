"""The client audit queue against the real server over TLS: every recorded entry reaches
the server's audit log exactly once, in order, with its device sequence number; entries
recorded while the server is down wait in the SQLCipher cache and follow when it is back
(the same transport, the server restarted on the same port with the same database), and
entries committed before a crash are sent by the next process."""

import asyncio
import json
import threading
import time
from dataclasses import dataclass

import pytest

from app.core.audit_queue import AuditEntry
from app.core.errors import SafeConsultError
from app.crypto.identity import verify_ed25519
from app.services.audit import AuditService
from app.storage.cache import Cache
from server_stub.crud.audit import verify_chain
from server_stub.serve import bind_socket, build_server
from tests.integration.test_sign_in import sign_in
from tests.support.clients import create_user, server_db


async def signed_in(server, workstation, name):
    creds = create_user(server, name)
    ws = workstation(name)
    await sign_in(ws, creds)
    return ws


def audit_for(ws, **kwargs) -> AuditService:
    s = ws.session
    return AuditService(s.cache, s.device.identity.sign, device_id=s.device.device_id,
                        transport=s.transport, **kwargs)


def client_rows(db, device_id):
    rows = db.connection().execute(
        "SELECT seq, action, object_type, object_id, outcome, detail FROM audit_log "
        "WHERE device_id = ? AND action LIKE 'client.%' ORDER BY seq", (device_id,),
    ).fetchall()
    return [dict(zip(("seq", "action", "object_type", "object_id", "outcome", "detail"),
                     (*r[:5], json.loads(r[5])), strict=True)) for r in rows]


def assert_verifiable_from_the_server(rows, device_id, public_key):
    """An auditor holding the device's key re-checks each entry from the server's row."""
    prev = "0" * 64
    for row in rows:
        detail = dict(row["detail"])
        chain = {k: detail.pop(k) for k in ("device_seq", "device_ts_ms", "prev_hash",
                                             "entry_hash", "signature")}
        entry = AuditEntry(device_id, chain["device_seq"], chain["device_ts_ms"],
                           row["action"].removeprefix("client."), row["object_type"],
                           row["object_id"], row["outcome"], detail, chain["prev_hash"],
                           chain["entry_hash"], chain["signature"])
        assert entry.prev_hash == prev
        assert entry.computed_hash() == entry.entry_hash
        assert verify_ed25519(public_key, entry.signed_message(), entry.signature)
        prev = entry.entry_hash


async def test_each_recorded_action_reaches_the_server_once_in_order(open_server,
                                                                      open_workstation):
    ws = await signed_in(open_server, open_workstation, "dr.audit")
    device = ws.session.device
    audit = audit_for(ws)
    audit.record("session.lock", detail={"reason": "idle"})
    audit.record("session.unlock", detail={"method": "password"})
    audit.record("image.export", object_type="series", object_id="1.2.840.99.7",
                 detail={"deidentified": True, "files": 3})
    audit.record("file.print", object_type="file", object_id="f-1", outcome="refused")
    assert await audit.flush() == 4
    assert audit.pending == 0 and audit.last_error == ""

    rows = client_rows(server_db(open_server), device.device_id)
    assert [r["action"] for r in rows] == ["client.session.lock", "client.session.unlock",
                                           "client.image.export", "client.file.print"]
    assert [r["detail"]["device_seq"] for r in rows] == [1, 2, 3, 4]
    assert rows[2]["detail"]["deidentified"] is True and rows[2]["object_id"] == "1.2.840.99.7"
    assert rows[3]["outcome"] == "refused"
    assert_verifiable_from_the_server(rows, device.device_id, device.identity.ed25519)
    assert verify_chain(server_db(open_server).connection()).ok
    # A second flush sends nothing again.
    assert await audit.flush() == 0
    assert len(client_rows(server_db(open_server), device.device_id)) == 4
    await ws.session.aclose()


@dataclass
class Restarted:
    server: object
    thread: threading.Thread
    app: object

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def restart_on_same_port(running) -> Restarted:
    """The same server (data directory, database, CA, port) started again."""
    sock = bind_socket(running.settings.host, running.port)
    server = build_server(running.settings, sock)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "server did not restart"
        time.sleep(0.01)
    return Restarted(server, thread, server.config.app)


async def test_entries_recorded_while_the_server_is_down_follow_in_order(open_server,
                                                                         open_workstation):
    ws = await signed_in(open_server, open_workstation, "dr.offline")
    device_id = ws.session.device.device_id
    audit = audit_for(ws, min_backoff_s=0.05, max_backoff_s=0.2)
    audit.start()
    audit.record("session.lock", detail={"n": 1})
    for _ in range(100):
        if audit.pending == 0:
            break
        await asyncio.sleep(0.02)
    assert audit.pending == 0

    open_server.stop()
    for n in range(2, 7):
        audit.record("session.lock" if n % 2 else "session.unlock", detail={"n": n})
    await asyncio.sleep(0.5)  # several failed retries
    assert audit.pending == 5
    assert audit.last_error == "ConnectionFailed"

    back = restart_on_same_port(open_server)
    try:
        deadline = time.monotonic() + 10
        while audit.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert audit.pending == 0, audit.last_error
        rows = client_rows(back.app.state.db, device_id)
        seqs = [r["detail"]["device_seq"] for r in rows]
        assert seqs == [1, 2, 3, 4, 5, 6]  # no gap, no duplicate
        assert [r["detail"]["n"] for r in rows] == [1, 2, 3, 4, 5, 6]
        assert_verifiable_from_the_server(rows, device_id, ws.session.device.identity.ed25519)
    finally:
        await audit.aclose()
        await ws.session.aclose()
        back.stop()


async def test_entries_committed_before_a_crash_are_sent_by_the_next_session(
    open_server, open_workstation,
):
    ws = await signed_in(open_server, open_workstation, "dr.crash")
    session = ws.session
    device_id = session.device.device_id
    directory, keys = session.cache.directory, session.cache._keys
    # Recorded with the network unreachable (no transport), then the process "dies": the
    # connection goes away without close(), as after SIGKILL.
    audit = session.audit  # the session's own: the one audit call
    audit.transport = None  # the network is unreachable
    for n in range(3):
        audit.record("snapshot", detail={"n": n})
    assert await audit.flush() == 0
    await audit.aclose()
    session.audit = None
    session.cache.conn.close()
    session.cache = None

    reopened = Cache.open(directory, keys)
    assert reopened.full_check_ran  # it was not closed cleanly
    again = AuditService(reopened, session.device.identity.sign, device_id=device_id,
                         transport=session.transport)
    assert again.pending == 3
    assert again.verify(session.device.identity.ed25519).ok
    assert await again.flush() == 3
    rows = client_rows(server_db(open_server), device_id)
    assert [r["detail"]["device_seq"] for r in rows] == [1, 2, 3]
    reopened.close()
    await session.aclose()


async def test_a_refused_upload_keeps_the_entry_and_later_ones(open_server, open_workstation):
    """A server that refuses (here: the session has ended) keeps everything queued, in
    order; nothing is dropped."""
    ws = await signed_in(open_server, open_workstation, "dr.refused")
    audit = audit_for(ws)
    ws.session.transport.token = "not-a-token"
    ws.session.transport.refresher = None
    audit.record("session.lock")
    audit.record("session.unlock")
    assert await audit.flush() == 0
    assert audit.pending == 2 and audit.last_error
    with pytest.raises(SafeConsultError):
        await ws.session.transport.get_json("/v1/auth/session")
    assert client_rows(server_db(open_server), ws.session.device.device_id) == []
    await ws.session.aclose()
