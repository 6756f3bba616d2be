"""ChatState keeps in memory what every message asks (a room's state; whether any event
waits undecrypted), and never answers from it what the cache does not hold."""

from __future__ import annotations

import pytest

from app.core.chat import EventState, RoomEvent
from app.storage.cache import Cache
from app.storage.chat_state import ChatState


@pytest.fixture
def cache(tmp_path, keys):
    with Cache.open(tmp_path / "cache", keys) as c:
        yield c


def event(event_id: str) -> RoomEvent:
    return RoomEvent(0, "!r", event_id, "sc.encrypted", "@bob", "DEV2", 1,
                     {"session_id": "S"})


def statements(cache: Cache) -> list[str]:
    seen: list[str] = []
    cache.conn.set_trace_callback(seen.append)
    return seen


def test_a_room_state_rolled_back_is_not_read_back(cache):
    state = ChatState(cache)
    state.set_room("!r", "joined")
    assert state.room_state("!r") == "joined"
    with pytest.raises(RuntimeError), cache.write():
        state.set_room("!r", "left")
        assert state.room_state("!r") == "left"
        raise RuntimeError("rolled back")
    assert state.room_state("!r") == "joined"
    assert ChatState(cache).room_state("!r") == "joined"


def test_a_room_first_seen_by_a_message_is_joined(cache):
    state = ChatState(cache)
    assert state.room_state("!new") is None
    state.bump_unread("!new", 5, unread=True)
    assert state.room_state("!new") == "joined"


def test_asking_a_room_state_again_costs_no_query(cache):
    state = ChatState(cache)
    state.set_room("!r", "joined")
    seen = statements(cache)
    for _ in range(3):
        assert state.room_state("!r") == "joined"
    assert seen == []


def test_forgetting_with_nothing_undecrypted_costs_no_query_after_the_first(cache):
    state = ChatState(cache)
    seen = statements(cache)
    for i in range(3):
        state.forget_undecrypted(f"$e{i}")
    assert len(seen) == 1 and "chat_undecrypted" in seen[0]


def test_an_event_kept_undecrypted_is_forgotten_once_shown(cache):
    state = ChatState(cache)
    state.forget_undecrypted("$none")  # learns that nothing waits
    state.keep_undecrypted(event("$e1"), EventState.WAITING_FOR_KEY, "MissingRoomKey", "S")
    assert [e.event_id for e in state.waiting_for()] == ["$e1"]
    state.forget_undecrypted("$e1")
    assert state.waiting_for() == []


def test_a_new_state_over_a_cache_with_waiting_events_forgets_them(cache):
    ChatState(cache).keep_undecrypted(event("$e1"), EventState.WAITING_FOR_KEY,
                                      "MissingRoomKey", "S")
    state = ChatState(cache)  # after a restart
    state.forget_undecrypted("$e1")
    assert state.waiting_for() == []


def test_a_rolled_back_keep_then_a_kept_one_is_still_forgotten(cache):
    state = ChatState(cache)
    state.forget_undecrypted("$none")
    with pytest.raises(RuntimeError), cache.write():
        state.keep_undecrypted(event("$e1"), EventState.WAITING_FOR_KEY, "MissingRoomKey", "S")
        raise RuntimeError("rolled back")
    assert state.waiting_for() == []
    state.keep_undecrypted(event("$e2"), EventState.WAITING_FOR_KEY, "MissingRoomKey", "S")
    state.forget_undecrypted("$e2")
    assert state.waiting_for() == []
