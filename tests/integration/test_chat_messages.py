"""Replies, edits and recalls between real clients through the reference relay (the content
travels inside Megolm; docs/e2ee.md, "Message content")."""

from __future__ import annotations

import json

import pytest

from app.core.chat import EventState
from app.core.errors import SafeConsultError
from app.core.phi import Phi
from app.services.chat import new_event_id
from app.services.chat_content import Edit, to_wire
from tests.integration.test_chat import new_client, raw_files_containing, room_with
from tests.support.clients import server_db


async def _post_plain(client, room_id: str, content: dict) -> str:
    """Send an arbitrary plaintext content through the real Megolm path (a hostile or buggy
    client): queued structured, encrypted and posted like any other."""
    event_id = new_event_id()
    client.chat.outbox.queue(room_id, event_id, Phi(json.dumps(content)), structured=True)
    await client.chat.flush()
    return event_id


async def test_reply_edit_and_recall_round_trip(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.m")
    bob = await new_client(open_server, tmp_path, "dr.bob.m")
    try:
        room_id = await room_with(alice, bob)
        first = await alice.chat.send_text(room_id, "MARKER-q1 is the CT done?")
        await bob.chat.sync_once()
        answer = await bob.chat.send_text(room_id, "yes, no bleed", reply_to=first)
        assert await alice.chat.sync_once() == 1
        (reply,) = [m for m in alice.chat.messages(room_id) if m.event_id == answer]
        assert reply.reply_to == first and not reply.edited
        assert alice.chat.message_by_id(first).body.reveal() == "MARKER-q1 is the CT done?"

        # Edits: only the author; the latest by the author's order wins, even out of order.
        await alice.chat.edit_message(room_id, first, "MARKER-q2 is the CT with contrast done?")
        assert await bob.chat.sync_once() == 0  # a change, not a new message
        shown = bob.chat.message_by_id(first)
        assert shown.edited and shown.body.reveal() == "MARKER-q2 is the CT with contrast done?"
        # An older edit arriving late does not win.
        await _post_plain(alice, room_id, to_wire(Edit(first, Phi("stale text"), 1)))
        await bob.chat.sync_once()
        assert bob.chat.message_by_id(first).body.reveal().startswith("MARKER-q2")
        # Bob cannot edit Alice's message: refused locally, and a forged edit is ignored.
        with pytest.raises(SafeConsultError):
            await bob.chat.edit_message(room_id, first, "forged")
        forged = await _post_plain(bob, room_id, to_wire(Edit(first, Phi("forged"), 2**40)))
        await alice.chat.sync_once()
        assert alice.chat.message_by_id(first).body.reveal().startswith("MARKER-q2")
        (kept,) = [e for e in alice.chat.undecrypted(room_id) if e.event_id == forged]
        assert kept.state is EventState.REJECTED and kept.reason == "NotTheSender"
        # Search finds the edited text.
        assert [m.event_id for m in bob.chat.search("contrast")] == [first]

        # Recall: the text leaves every cache; audited on the sender's device.
        await alice.chat.recall_message(room_id, first)
        await bob.chat.sync_once()
        for client in (alice, bob):
            gone = client.chat.message_by_id(first)
            assert gone.recalled and gone.body.reveal() == ""
            assert client.chat.search("MARKER-q") == []
        with pytest.raises(SafeConsultError):
            await alice.chat.edit_message(room_id, first, "back again")
        with pytest.raises(SafeConsultError):
            await bob.chat.recall_message(room_id, first)  # not the author
        await alice.ws.session.audit.flush()  # the server's trail takes the recall
        logged = list(server_db(open_server).connection().execute(
            "SELECT action FROM audit_log WHERE object_id = ?", (first,)))
        assert [r[0] for r in logged] == ["client.message.recall"]
        assert raw_files_containing(open_server.data_dir, [b"MARKER-q"]) == {}
    finally:
        await alice.close()
        await bob.close()


async def test_recall_outside_the_window_is_refused(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.w")
    bob = await new_client(open_server, tmp_path, "dr.bob.w")
    try:
        room_id = await room_with(alice, bob)
        old = await alice.chat.send_text(room_id, "an old message")
        await bob.chat.sync_once()
        alice.chat.recall_window_ms = 0  # the window passed
        with pytest.raises(SafeConsultError):
            await alice.chat.recall_message(room_id, old)
        # A client ignoring its window: receivers keep the message and say why.
        bob.chat.recall_window_ms = 0
        late = await _post_plain(alice, room_id, {"msgtype": "recall", "target": old})
        await bob.chat.sync_once()
        assert bob.chat.message_by_id(old).body.reveal() == "an old message"
        (kept,) = [e for e in bob.chat.undecrypted(room_id) if e.event_id == late]
        assert kept.reason == "RecallTooLate"
    finally:
        await alice.close()
        await bob.close()


async def test_malformed_content_is_kept_unreadable_with_a_reason(open_server, tmp_path):
    alice = await new_client(open_server, tmp_path, "dr.alice.x")
    bob = await new_client(open_server, tmp_path, "dr.bob.x")
    try:
        room_id = await room_with(alice, bob)
        bad = [{"msgtype": "text", "body": 5}, {"msgtype": "edit", "target": "x"},
               {"msgtype": "poll", "body": "?"}, {"msgtype": "text", "body": "hi", "extra": 1}]
        ids = [await _post_plain(alice, room_id, c) for c in bad]
        good = await alice.chat.send_text(room_id, "still works")
        assert await bob.chat.sync_once() == 1
        assert [m.event_id for m in bob.chat.messages(room_id)] == [good]
        kept = {e.event_id: e for e in bob.chat.undecrypted(room_id)}
        for event_id in ids:
            assert kept[event_id].reason == "MalformedContent"
            assert "does not understand" in kept[event_id].user_message
    finally:
        await alice.close()
        await bob.close()
