import pytest

from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.storage.audit_queue import AuditQueueRepository
from app.storage.cache import Cache
from app.storage.messages import MessageRepository
from app.storage.secrets import SecretRepository


@pytest.fixture
def cache(tmp_path, keys):
    cache = Cache.open(tmp_path, keys)
    yield cache
    cache.close()


def m(event: str, body: str, room: str = "!r1", ts: int = 0) -> CachedMessage:
    return CachedMessage(room, event, "@dr:x", ts, Phi(body))


def test_insert_is_idempotent_per_event(cache):
    repo = MessageRepository(cache)
    assert repo.insert(m("$1", "hello", ts=1))
    assert not repo.insert(m("$1", "hello again", ts=1))
    assert repo.insert_many([m("$1", "x"), m("$2", "y"), m("$3", "z")]) == 2
    assert [x.body.reveal() for x in repo.list_room("!r1")] == ["y", "z", "hello"]


def test_list_room_pages_oldest_first(cache):
    repo = MessageRepository(cache)
    repo.insert_many(m(f"${i}", f"b{i}", ts=i) for i in range(10))
    repo.insert(m("$other", "elsewhere", room="!r2", ts=5))
    latest = repo.list_room("!r1", limit=3)
    assert [x.ts_ms for x in latest] == [7, 8, 9]
    earlier = repo.list_room("!r1", limit=3, before_ts_ms=7)
    assert [x.ts_ms for x in earlier] == [4, 5, 6]
    assert all(isinstance(x.body, Phi) for x in latest)
    assert "b9" not in repr(latest)  # bodies stay tagged as PHI


def test_search_trigram_short_and_cjk(cache):
    repo = MessageRepository(cache)
    repo.insert_many([
        m("$1", "Potassium is 5.9, please review", ts=1),
        m("$2", "CT shows no bleed", ts=2),
        m("$3", "患者肺炎加重，请会诊", ts=3, room="!r2"),
        m("$4", "potassium repeat normal", ts=4),
        m("$5", 'quote "x" and 100% sure_', ts=5),
    ])
    assert [x.event_id for x in repo.search("potassium")] == ["$4", "$1"]
    assert [x.event_id for x in repo.search("POTASS", room_id="!r1")] == ["$4", "$1"]
    assert [x.event_id for x in repo.search("肺炎")] == ["$3"]  # two characters: scan
    assert [x.event_id for x in repo.search("肺炎加重")] == ["$3"]  # trigram index
    assert [x.event_id for x in repo.search("CT")] == ["$2"]
    assert repo.search("肺炎", room_id="!r1") == []
    assert [x.event_id for x in repo.search('"x" and')] == ["$5"]
    assert [x.event_id for x in repo.search("0%")] == ["$5"]
    assert [x.event_id for x in repo.search("%")] == ["$5"]  # LIKE wildcards are literal
    assert [x.event_id for x in repo.search("_")] == ["$5"]
    assert repo.search("  ") == []
    assert repo.search("NOT OR AND") == []  # FTS operators are plain text


def test_search_follows_deletes_and_retention(cache):
    repo = MessageRepository(cache)
    repo.insert_many([m("$1", "alpha beta", ts=1), m("$2", "alpha gamma", ts=100, room="!r2")])
    assert repo.delete_older_than(50) == 1
    assert [x.event_id for x in repo.search("alpha")] == ["$2"]
    assert repo.delete_room("!r2") == 1
    assert repo.search("alpha") == []


def test_secrets(cache):
    repo = SecretRepository(cache)
    assert repo.get("file:1") is None
    repo.put("file:1", b"\x00" * 32)
    repo.put("file:1", b"\x01" * 32)
    repo.put("file:2", b"k2")
    repo.put("other_x", b"k3")
    assert repo.get("file:1") == b"\x01" * 32
    assert repo.names("file:") == ["file:1", "file:2"]
    assert repo.names("other_") == ["other_x"]
    assert repo.names("other%") == []
    assert repo.delete("file:1") and not repo.delete("file:1")


def test_audit_queue_survives_reopen_until_acked(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        queue = AuditQueueRepository(cache)
        seqs = [queue.enqueue("login", b'{"ok":1}', created_ms=i) for i in range(5)]
        assert seqs == sorted(seqs)
    with Cache.open(tmp_path, keys) as cache:
        queue = AuditQueueRepository(cache)
        assert [e.created_ms for e in queue.pending(3)] == [0, 1, 2]
        assert queue.ack(seqs[2]) == 3
        assert [e.seq for e in queue.pending()] == seqs[3:]
        assert queue.pending()[0].payload == b'{"ok":1}'
        assert queue.count() == 2
