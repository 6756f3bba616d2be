"""The device's audit chain in a real SQLCipher cache: sealing, the check, and tampering
done the way an attacker holding the cache key would do it -- rows edited, deleted,
reordered with plain SQL."""

import json
from dataclasses import replace
from itertools import pairwise

import pytest

from app.core.audit_queue import (
    CHAIN_KEYS,
    CLIENT_ACTIONS,
    MAX_DETAIL_ENTRIES,
    MAX_TEXT,
    AuditEntry,
    AuditEntryError,
    seal,
)
from app.crypto.identity import DeviceIdentity
from app.security.keystore import MemoryKeyStore
from app.services.audit import AuditService
from app.storage.cache import Cache
from app.storage.errors import CacheError
from server_stub.api.routes.audit import CLIENT_ACTIONS as SERVER_ACTIONS


@pytest.fixture
def identity():
    return DeviceIdentity.generate()


@pytest.fixture
def keys():
    return MemoryKeyStore("dr.audit", "DEV1")


@pytest.fixture
def cache(tmp_path, keys):
    cache = Cache.open(tmp_path, keys)
    yield cache
    cache.close()


def service(cache, identity, **kwargs):
    return AuditService(cache, identity.sign, device_id=identity.device_id, **kwargs)


def record_five(audit):
    audit.record("session.lock", detail={"reason": "idle"})
    audit.record("session.unlock", detail={"method": "password"})
    audit.record("image.export", object_type="series", object_id="1.2.840.99.1",
                 detail={"deidentified": True, "files": 12})
    audit.record("file.print", object_type="file", object_id="f-17", outcome="refused")
    audit.record("device.verify", object_type="device", object_id="DEVX", detail={"sas": True})


def test_entries_chain_and_verify(cache, identity):
    audit = service(cache, identity)
    record_five(audit)
    rows = audit._queue.pending()
    entries = [AuditEntry.from_bytes(r.payload) for r in rows]
    assert [e.device_seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == "0" * 64
    for before, after in pairwise(entries):
        assert after.prev_hash == before.entry_hash
    report = audit.verify(identity.ed25519)
    assert report.ok and report.entries == 5, report.problems
    # Another device's key does not verify them.
    assert not audit.verify(DeviceIdentity.generate().ed25519).ok


def _rows(cache):
    return cache.conn.execute("SELECT seq, kind, payload FROM audit_queue ORDER BY seq").fetchall()


def _set_payload(cache, seq, payload):
    with cache.write() as conn:
        conn.execute("UPDATE audit_queue SET payload = ? WHERE seq = ?", (payload, seq))


def _edit(payload: bytes, **changes) -> bytes:
    data = json.loads(payload)
    data.update(changes)
    return json.dumps(data).encode()


def test_edited_entry_is_caught(cache, identity):
    audit = service(cache, identity)
    record_five(audit)
    seq, _, payload = _rows(cache)[2]
    _set_payload(cache, seq, _edit(payload, outcome="failed"))
    report = audit.verify(identity.ed25519)
    assert not report.ok and report.first_bad_seq == 3
    assert "hash mismatch" in report.problem


def test_edit_with_recomputed_hash_fails_the_signature(cache, identity):
    audit = service(cache, identity)
    record_five(audit)
    seq, _, payload = _rows(cache)[4]
    forged = AuditEntry.from_bytes(_edit(payload, object_id="DEV-OTHER"))
    forged_hash = forged.computed_hash()
    _set_payload(cache, seq, _edit(payload, object_id="DEV-OTHER", entry_hash=forged_hash))
    report = audit.verify(identity.ed25519)
    # The last entry: no successor's link breaks, only the signature (and the head) tell.
    assert not report.ok and report.first_bad_seq == 5
    assert "signature invalid" in report.problem


def test_deleted_entries_are_caught(cache, identity):
    audit = service(cache, identity)
    record_five(audit)
    with cache.write() as conn:
        conn.execute("DELETE FROM audit_queue WHERE seq = 2")
    report = audit.verify(identity.ed25519)
    assert not report.ok and report.first_bad_seq == 3
    assert "missing or moved" in report.problem


def test_cut_off_tail_is_caught(cache, identity):
    audit = service(cache, identity)
    record_five(audit)
    with cache.write() as conn:
        conn.execute("DELETE FROM audit_queue WHERE seq >= 4")
    report = audit.verify(identity.ed25519)
    assert not report.ok and "recorded head" in report.problem


@pytest.mark.parametrize("how", ["swap_payloads", "swap_seqs"])
def test_reordered_entries_are_caught(cache, identity, how):
    audit = service(cache, identity)
    record_five(audit)
    rows = _rows(cache)
    with cache.write() as conn:
        if how == "swap_payloads":
            conn.execute("UPDATE audit_queue SET payload = ?, kind = ? WHERE seq = 2",
                         (rows[3][2], rows[3][1]))
            conn.execute("UPDATE audit_queue SET payload = ?, kind = ? WHERE seq = 4",
                         (rows[1][2], rows[1][1]))
        else:  # renumber the rows themselves
            conn.execute("UPDATE audit_queue SET seq = 100 WHERE seq = 2")
            conn.execute("UPDATE audit_queue SET seq = 2 WHERE seq = 4")
            conn.execute("UPDATE audit_queue SET seq = 4 WHERE seq = 100")
    report = audit.verify(identity.ed25519)
    assert not report.ok and report.first_bad_seq == 2, report.problems


def test_upload_watermark_keeps_the_chain_checkable_and_continuing(tmp_path, keys, identity):
    with Cache.open(tmp_path, keys) as cache:
        audit = service(cache, identity)
        record_five(audit)
        audit._queue.ack(3)  # as after the server acknowledged 1-3
        assert [r.seq for r in audit._queue.pending()] == [4, 5]
        assert audit.verify(identity.ed25519).ok
    # A restart continues the same chain: next number, linked to the last entry.
    with Cache.open(tmp_path, keys) as cache:
        audit = service(cache, identity)
        last = AuditEntry.from_bytes(audit._queue.pending()[-1].payload)
        entry = audit.record("snapshot", detail={"reason": "user"})
        assert entry.device_seq == 6 and entry.prev_hash == last.entry_hash
        assert audit.verify(identity.ed25519).ok
        audit._queue.ack(6)
        assert audit.pending == 0
        assert audit.verify(identity.ed25519).ok
        assert audit.record("snapshot").device_seq == 7


def test_the_first_remaining_entry_is_checked_against_the_anchor(cache, identity):
    audit = service(cache, identity)
    record_five(audit)
    audit._queue.ack(2)
    # Replace entry 3 with a validly signed entry that does not follow entry 2.
    third = AuditEntry.from_bytes(_rows(cache)[0][2])
    _set_payload(cache, 3, seal(replace(third, prev_hash="1" * 64), identity.sign).to_bytes())
    report = audit.verify(identity.ed25519)
    assert not report.ok and report.first_bad_seq == 3
    assert "link broken" in report.problem


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"action": "login"}, "unknown client audit action"),
    ({"action": "session.lock", "outcome": "maybe"}, "outcome"),
    ({"action": "session.lock", "detail": {"device_seq": 1}}, "reserved"),
    ({"action": "session.lock", "detail": {"note": "x" * (MAX_TEXT + 1)}}, "at most"),
    ({"action": "session.lock", "detail": {"note": "two\nlines"}}, "printable"),
    ({"action": "session.lock", "object_id": "y" * (MAX_TEXT + 1)}, "object_id"),
    ({"action": "session.lock", "detail": {"n": 1.5}}, "str, int or bool"),
    ({"action": "session.lock",
      "detail": {f"k{i}": i for i in range(MAX_DETAIL_ENTRIES - len(CHAIN_KEYS) + 1)}},
     "detail entries"),
])
def test_entries_the_server_would_refuse_are_refused_at_record(cache, identity, kwargs, message):
    audit = service(cache, identity)
    action = kwargs.pop("action")
    with pytest.raises(AuditEntryError, match=message):
        audit.record(action, **kwargs)
    assert audit.pending == 0


def test_a_full_entry_fits_the_server_limits(cache, identity):
    audit = service(cache, identity)
    detail = {f"k{i}": "v" * MAX_TEXT for i in range(MAX_DETAIL_ENTRIES - len(CHAIN_KEYS))}
    entry = audit.record("file.export", object_type="t" * MAX_TEXT, object_id="i" * MAX_TEXT,
                         detail=detail)
    sent = entry.server_detail()
    assert len(sent) == MAX_DETAIL_ENTRIES
    assert all(len(v) <= MAX_TEXT for v in sent.values() if isinstance(v, str))


def test_client_actions_are_known_to_the_server():
    assert set(CLIENT_ACTIONS) <= set(SERVER_ACTIONS)


def test_recording_after_the_cache_closed_is_an_error(tmp_path, keys, identity):
    cache = Cache.open(tmp_path, keys)
    audit = service(cache, identity)
    cache.close()
    with pytest.raises(CacheError, match="closed"):
        audit.record("session.lock")
