"""The chat view over real chat services and the real relay: rooms and unread counts, sending
and receiving, messages waiting for their key, the new-device warning, search."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.crypto.store import TrustLevel
from app.ui.phi import phi_widgets
from tests.integration.test_chat import new_client, room_with
from tests.support.clients import server_db
from tests.ui.chat.conftest import Person, run


def test_unread_counts_then_reading_and_replying(qtbot, people):
    alice, bob = people("dr.amara", "dr.bruno")
    room = run(qtbot, room_with(alice.client, bob.client))
    other = run(qtbot, room_with(bob.client, alice.client))
    for view in (alice.view, bob.view):
        view.refresh()
    assert set(bob.view.rooms.room_ids()) == {room, other}

    for text in ("Bed 12: troponin rising, can you look?", "ECG attached to the consult"):
        run(qtbot, alice.chat.send_text(room, text))
    run(qtbot, bob.chat.sync_once())
    assert bob.view.rooms.unread(room) == 2
    assert bob.view.rooms.unread(other) == 0

    bob.view.rooms.select(room)  # the user picks the conversation
    assert bob.view.current_room == room
    assert bob.view.timeline.texts() == ["Bed 12: troponin rising, can you look?",
                                         "ECG attached to the consult"]
    assert bob.view.rooms.unread(room) == 0
    assert bob.view.room_title.text() == "dr.amara"
    assert bob.view.timeline in phi_widgets(bob.view)  # the lock hides it

    # Enter sends; Shift+Enter is a new line inside the message.
    qtbot.keyClicks(bob.view.composer.edit, "On my way.")
    qtbot.keyClick(bob.view.composer.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(bob.view.composer.edit, "10 minutes")
    qtbot.keyClick(bob.view.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(bob.view.timeline.bubbles) == 3, timeout=10_000)
    mine = bob.view.timeline.bubbles[list(bob.view.timeline.bubbles)[-1]]
    assert mine.own and mine.body.text() == "On my way.\n10 minutes"
    qtbot.waitUntil(lambda: mine.state.text() == "Sent", timeout=10_000)
    assert bob.view.composer.edit.toPlainText() == ""

    alice.view.rooms.select(room)
    run(qtbot, alice.chat.sync_once())
    assert alice.view.timeline.texts()[-1] == "On my way.\n10 minutes"
    assert alice.view.rooms.unread(room) == 0  # read as it arrived: she is looking at it


def test_messages_written_offline_show_as_queued(qtbot, people, open_server):
    alice, bob = people("dr.ama2", "dr.bru2")
    room = run(qtbot, room_with(alice.client, bob.client))
    bob.view.refresh()
    bob.view.rooms.select(room)
    bob.chat._set_online(False)
    open_server.stop()  # the relay goes away
    bob.view.composer.edit.setPlainText("Will call after rounds")
    bob.view.composer.submit()
    qtbot.waitUntil(lambda: len(bob.view.timeline.bubbles) == 1, timeout=10_000)
    bubble = next(iter(bob.view.timeline.bubbles.values()))
    qtbot.waitUntil(lambda: "Queued" in bubble.state.text(), timeout=15_000)
    assert "Offline" in bob.view.connection.text()


def test_a_message_waits_for_its_key_then_appears_in_place(qtbot, people, open_server):
    alice, bob = people("dr.ama3", "dr.bru3")
    room = run(qtbot, room_with(alice.client, bob.client))
    bob.view.refresh()
    bob.view.rooms.select(room)
    run(qtbot, alice.chat.send_text(room, "Potassium 6.8, repeat sample sent"))
    # The relay delivers the event before its room key: hold bob's to-device queue back.
    db = server_db(open_server)
    held = db.connection().execute(
        "SELECT recipient_user_id, recipient_device_id, sender_user_id, sender_device_id,"
        " type, content, created_ms FROM to_device WHERE recipient_device_id = ?",
        (bob.device_id,)).fetchall()
    with db.transaction() as conn:
        conn.execute("DELETE FROM to_device WHERE recipient_device_id = ?", (bob.device_id,))
    run(qtbot, bob.chat.sync_once())
    (bubble,) = bob.view.timeline.bubbles.values()
    assert bubble.kind == "undecryptable"
    assert bubble.body.text().startswith("Waiting for the key from dr.ama3's device")

    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO to_device (recipient_user_id, recipient_device_id, sender_user_id,"
            " sender_device_id, type, content, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [tuple(r) for r in held])
    run(qtbot, bob.chat.sync_once())
    assert list(bob.view.timeline.bubbles.values()) == [bubble]  # the same entry, replaced
    assert bubble.kind == "message"
    assert bubble.body.text() == "Potassium 6.8, repeat sample sent"


def test_a_new_device_warning_blocks_writing_until_decided(qtbot, people, open_server,
                                                           tmp_path, save_screenshot):
    alice, bob = people("dr.ama4", "dr.bru4")
    room = run(qtbot, room_with(alice.client, bob.client))
    run(qtbot, bob.chat.send_text(room, "Switching to the ward 7 workstation"))
    run(qtbot, alice.chat.sync_once())
    alice.view.refresh()
    alice.view.rooms.select(room)
    assert alice.view.banner.isHidden() and not alice.view.composer.blocked

    bob2 = run(qtbot, new_client(open_server, tmp_path, "dr.bru4", creds=bob.client.creds))
    try:
        new_device = bob2.ws.session.device.device_id
        run(qtbot, alice.chat.check_device_lists())  # the device_warning signal
        assert alice.view.banner.isVisible()
        assert "dr.bru4 has a new or changed device" in alice.view.banner.title.text()
        assert alice.view.banner.current.device_id == new_device
        assert alice.view.composer.blocked
        assert not alice.view.composer.send_button.isEnabled()
        alice.view.composer.edit.setPlainText("not yet")
        alice.view.composer.submit()
        qtbot.wait(50)
        assert len(alice.view.timeline.bubbles) == 1  # nothing was sent
        assert alice.view.members.trust_texts()[new_device] == "New device, not verified"
        alice.view.members.select_device(bob.user_id, new_device)
        save_screenshot(alice.view, "chat-device-warning.png")

        qtbot.mouseClick(alice.view.banner.accept, Qt.MouseButton.LeftButton)
        assert alice.view.banner.isHidden() and not alice.view.composer.blocked
        assert {r.device_id: r.trust for r in alice.chat.devices(bob.user_id)}[
            new_device] is TrustLevel.ACCEPTED
        assert alice.view.members.trust_texts()[new_device] == "Trusted under policy"
        alice.view.composer.edit.setPlainText("now both of your devices")
        alice.view.composer.submit()
        qtbot.waitUntil(lambda: len(alice.view.timeline.bubbles) == 2, timeout=10_000)
        sent = list(alice.view.timeline.bubbles.values())[-1]
        qtbot.waitUntil(lambda: sent.state.text() == "Sent", timeout=10_000)
        run(qtbot, bob2.chat.sync_once())
        assert bob2.texts(room)[-1] == "now both of your devices"
    finally:
        run(qtbot, bob2.close())


def test_blocking_a_flagged_device_from_the_banner(qtbot, people, open_server, tmp_path):
    alice, bob = people("dr.ama5", "dr.bru5")
    room = run(qtbot, room_with(alice.client, bob.client))
    alice.view.refresh()
    alice.view.rooms.select(room)
    bob2 = run(qtbot, new_client(open_server, tmp_path, "dr.bru5", creds=bob.client.creds))
    try:
        run(qtbot, alice.chat.check_device_lists())
        device = alice.view.banner.current
        alice.view.block_device(device, confirm=False)
        assert alice.view.banner.isHidden() and not alice.view.composer.blocked
        assert alice.view.members.trust_texts()[device.device_id] == "Blocked"
    finally:
        run(qtbot, bob2.close())


def test_search_finds_cached_messages_and_opens_their_room(qtbot, people):
    alice, bob = people("dr.ama6", "dr.bru6")
    room = run(qtbot, room_with(alice.client, bob.client))
    for text in ("Lactate 4.1 after fluids", "Chest X-ray clear", "lactate repeat at 6 pm"):
        run(qtbot, alice.chat.send_text(room, text))
    run(qtbot, bob.chat.sync_once())
    bob.view.refresh()
    bob.view.search.setFocus()
    qtbot.keyClicks(bob.view.search, "lactate")
    bob.view.search.search_now()
    hits = bob.view.results.hits()
    assert [h.text for h in hits] == ["lactate repeat at 6 pm", "Lactate 4.1 after fluids"]
    assert bob.view.left_stack.currentWidget() is bob.view.results
    assert bob.view.results in phi_widgets(bob.view)
    bob.view.results.list.itemClicked.emit(bob.view.results.list.item(1))
    assert bob.view.current_room == room
    qtbot.keyClick(bob.view.search, Qt.Key.Key_Escape)
    assert bob.view.left_stack.currentWidget() is bob.view.rooms

    bob.view.search.setText("no such words")
    bob.view.search.search_now()
    assert bob.view.results.hits() == []
    assert "No messages on this device" in bob.view.results.summary.text()


def test_new_consult_room_and_invitation(qtbot, people):
    alice, bob = people("dr.ama7", "dr.bru7")
    alice.view.create_room(invite="dr.bru7")
    qtbot.waitUntil(lambda: alice.view.current_room is not None, timeout=15_000)
    room = alice.view.current_room
    assert alice.view.room_title.text() == "New consult room (only you)"
    assert _member_names(alice) == ["dr.ama7 (you)", "dr.bru7 (invited)"]

    run(qtbot, bob.chat.refresh_rooms())
    assert bob.view.rooms.room_ids() == [room]
    bob.view.rooms.select(room)
    assert bob.view.join_button.isVisible() and bob.view.composer.blocked
    qtbot.mouseClick(bob.view.join_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not bob.view.composer.blocked, timeout=15_000)
    assert bob.view.room_title.text() == "dr.ama7"
    run(qtbot, alice.chat.sync_once())
    assert alice.view.room_title.text() == "dr.bru7"


def test_inviting_someone_unknown_says_so(qtbot, people):
    (alice,) = people("dr.ama8")
    alice.view.create_room()
    qtbot.waitUntil(lambda: alice.view.current_room is not None, timeout=15_000)
    alice.view.invite_user("nobody.here")
    qtbot.waitUntil(lambda: alice.view.message.isVisible(), timeout=15_000)
    assert alice.view.message.text()


def _member_names(person: Person) -> list[str]:
    tree = person.view.members.tree
    return [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]


def test_a_consult_conversation_as_the_screenshot_shows_it(qtbot, people, save_screenshot):
    """Synthetic content only (no real patient): three colleagues, two rooms, an invitation."""
    okafor, lindqvist, chen = people("dr.okafor", "dr.lindqvist", "nurse.chen",
                                     receipt_interval_s=0)
    consult = run(qtbot, room_with(okafor.client, lindqvist.client, chen.client))
    direct = run(qtbot, room_with(lindqvist.client, okafor.client))
    invitation = run(qtbot, chen.chat.create_room())
    run(qtbot, chen.chat.invite(invitation, "dr.okafor"))
    script = [
        (chen, "Bed 12 (chest pain, 58 y): troponin 0.9 at 14:10, up from 0.2."),
        (okafor, "Thanks. ECG changes?"),
        (chen, "New ST depression V4–V6. Uploaded to the consult."),
        (lindqvist, "Seen it. Start the ACS pathway, I can take him to the cath lab at 16:00."),
        (okafor, "Agreed. Consent done, I will call the family."),
    ]
    sent = []
    for index, (person, text) in enumerate(script):
        if index == 4:  # the others have read the conversation so far
            for reader in (lindqvist, chen):
                reader.chat.mark_read(consult)
                run(qtbot, reader.chat.send_receipts())
        reply_to = sent[2] if index == 3 else None  # Lindqvist answers the ECG message
        sent.append(run(qtbot, person.chat.send_text(consult, text, reply_to=reply_to)))
        for other in (okafor, lindqvist, chen):
            run(qtbot, other.chat.sync_once())
    run(qtbot, okafor.chat.sync_once())  # the delivery receipts of the last message
    for text in ("Are you free for the 17:00 handover?", "Two new admissions on ward 7."):
        run(qtbot, lindqvist.chat.send_text(direct, text))
    run(qtbot, okafor.chat.sync_once())
    run(qtbot, okafor.chat.refresh_rooms())
    okafor.view.rooms.select(consult)
    assert okafor.view.rooms.unread(direct) == 2
    assert okafor.view.rooms.room_ids()[0] == invitation  # invitations first
    assert okafor.view.room_title.text() == "dr.lindqvist, nurse.chen"
    assert len(okafor.view.timeline.bubbles) == 5
    bubbles = okafor.view.timeline.bubbles
    assert bubbles[sent[3]].quote.text().startswith("In reply to nurse.chen: New ST")
    assert bubbles[sent[1]].state.text() == "Read"
    assert bubbles[sent[4]].state.text() == "Delivered"
    okafor.view.members.select_device(lindqvist.user_id, lindqvist.device_id)
    okafor.view.composer.edit.setPlainText("Cath lab confirmed for 16:00")
    qtbot.wait(50)
    save_screenshot(okafor.view, "chat-view.png")
