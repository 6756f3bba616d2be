"""Replying, editing and recalling from the chat view, over real services and the relay."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.ui.phi import phi_widgets
from tests.integration.test_chat import room_with
from tests.ui.chat.conftest import run


def _bubble(view, text: str):
    (bubble,) = [b for b in view.timeline.bubbles.values() if b.body.text() == text]
    return bubble


def test_reply_edit_and_recall_from_the_timeline(qtbot, people):
    alice, bob = people("dr.ana", "dr.ben")
    room = run(qtbot, room_with(alice.client, bob.client))
    for person in (alice, bob):
        person.view.refresh()
        person.view.rooms.select(room)
    question = run(qtbot, alice.chat.send_text(room, "Is the CT of bed 4 reported?"))
    run(qtbot, bob.chat.sync_once())

    # Bob answers the question itself: the reply shows what it quotes, on both sides.
    incoming = _bubble(bob.view, "Is the CT of bed 4 reported?")
    assert not incoming.edit_action.isVisible() and not incoming.recall_action.isVisible()
    incoming.reply_action.trigger()
    assert bob.view.composer.mode == "reply" and bob.view.composer.context_bar.isVisibleTo(
        bob.view.composer)
    assert bob.view.composer.context in phi_widgets(bob.view)
    qtbot.keyClicks(bob.view.composer.edit, "Yes, no bleed.")
    qtbot.keyClick(bob.view.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(bob.view.timeline.bubbles) == 2, timeout=10_000)
    assert bob.view.composer.mode == "" and not bob.view.composer.context_bar.isVisible()
    reply = _bubble(bob.view, "Yes, no bleed.")
    assert not reply.quote.isHidden()
    assert reply.quote.text() == "In reply to dr.ana: Is the CT of bed 4 reported?"
    qtbot.waitUntil(lambda: reply.state.text() == "Sent", timeout=10_000)
    run(qtbot, alice.chat.sync_once())
    qtbot.waitUntil(lambda: len(alice.view.timeline.bubbles) == 2, timeout=10_000)
    assert _bubble(alice.view, "Yes, no bleed.").quote.text() == \
        "In reply to dr.ana: Is the CT of bed 4 reported?"

    # Alice edits her question: the composer starts from its text; both see "edited", and
    # the quote in Bob's reply follows.
    own = _bubble(alice.view, "Is the CT of bed 4 reported?")
    assert own.edit_action.isVisible() and own.recall_action.isVisible()
    own.edit_action.trigger()
    assert alice.view.composer.edit.toPlainText() == "Is the CT of bed 4 reported?"
    alice.view.composer.edit.setPlainText("Is the CT of bed 4 (with contrast) reported?")
    qtbot.keyClick(alice.view.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: own.body.text() == "Is the CT of bed 4 (with contrast) reported?",
                    timeout=10_000)
    assert own.time.text().endswith("· edited")
    assert len(alice.view.timeline.bubbles) == 2  # changed in place, no new entry
    qtbot.waitUntil(lambda: alice.chat.outbox.count() == 0, timeout=10_000)  # posted
    run(qtbot, bob.chat.sync_once())
    edited = bob.view.timeline.bubbles[question]
    qtbot.waitUntil(lambda: edited.body.text() == "Is the CT of bed 4 (with contrast) reported?",
                    timeout=10_000)
    assert edited.time.text().endswith("· edited")
    assert reply.quote.text().endswith("(with contrast) reported?")

    # Alice recalls it (after confirming): gone for both, the reply's quote says so.
    alice.view.recall(question, confirm=False)
    qtbot.waitUntil(lambda: own.body.text() == "Message recalled", timeout=10_000)
    assert not own.edit_action.isVisible() and not own.reply_action.isVisible()
    qtbot.waitUntil(lambda: alice.chat.outbox.count() == 0, timeout=10_000)
    run(qtbot, bob.chat.sync_once())
    qtbot.waitUntil(lambda: bob.view.timeline.bubbles[question].body.text()
                    == "Message recalled", timeout=10_000)
    assert reply.quote.text() == "In reply to dr.ana: Message recalled"
    # Reopening the room shows the same from the cache.
    bob.view.open_room(room)
    assert bob.view.timeline.texts() == ["Message recalled", "Yes, no bleed."]


def test_editing_can_be_cancelled(qtbot, people):
    (alice,) = people("dr.ada")
    room = run(qtbot, alice.chat.create_room())
    alice.view.refresh()
    alice.view.rooms.select(room)
    run(qtbot, alice.chat.send_text(room, "first draft"))
    _bubble(alice.view, "first draft").edit_action.trigger()
    assert alice.view.composer.edit.toPlainText() == "first draft"
    alice.view.composer.cancel_context.click()
    assert alice.view.composer.mode == "" and alice.view.composer.edit.toPlainText() == ""
    qtbot.keyClicks(alice.view.composer.edit, "a new message")
    qtbot.keyClick(alice.view.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(alice.view.timeline.bubbles) == 2, timeout=10_000)
    assert alice.view.timeline.texts() == ["first draft", "a new message"]


def test_own_messages_show_sent_delivered_read(qtbot, people):
    alice, bob = people("dr.ava", "dr.bea")
    room = run(qtbot, room_with(alice.client, bob.client))
    alice.view.refresh()
    alice.view.rooms.select(room)
    bob.view.refresh()  # Bob has not opened the conversation
    event_id = run(qtbot, alice.chat.send_text(room, "Potassium is 6.1, please call"))
    mine = alice.view.timeline.bubbles[event_id]
    qtbot.waitUntil(lambda: mine.state.text() == "Sent", timeout=10_000)

    run(qtbot, bob.chat.sync_once())  # his device has it
    run(qtbot, alice.chat.sync_once())
    qtbot.waitUntil(lambda: mine.state.text() == "Delivered", timeout=10_000)

    bob.view.rooms.select(room)  # he reads it
    run(qtbot, bob.chat.send_receipts())
    run(qtbot, alice.chat.sync_once())
    qtbot.waitUntil(lambda: mine.state.text() == "Read", timeout=10_000)
    # Reopening the room shows the same, from the cache.
    alice.view.open_room(room)
    assert alice.view.timeline.bubbles[event_id].state.text() == "Read"
    # Bob's own bubble for Alice's message shows no delivery state.
    assert bob.view.timeline.bubbles[event_id].state.text() == ""


def test_urgent_banner_until_acknowledged_and_do_not_disturb(qtbot, people):
    alice, bob = people("dr.ula", "dr.udo")
    room = run(qtbot, room_with(alice.client, bob.client))
    for person in (alice, bob):
        person.view.refresh()
    alice.view.rooms.select(room)
    assert not bob.view.urgent.isVisibleTo(bob.view)

    # Bob chooses "Do not disturb": routine messages no longer alert; Alice sees his status.
    bob.view.presence_box.set_status("dnd")
    bob.view.set_presence("dnd")
    qtbot.waitUntil(lambda: bob.chat.presence == "dnd" and not bob.chat.outbox.to_device(),
                    timeout=10_000)
    run(qtbot, alice.chat.sync_once())
    qtbot.waitUntil(lambda: any("Do not disturb" in alice.view.members.tree.topLevelItem(i)
                                .text(0) for i in range(alice.view.members.tree
                                                        .topLevelItemCount())),
                    timeout=10_000)
    before = bob.view.alerts
    run(qtbot, alice.chat.send_text(room, "routine: discharge letter drafted"))
    run(qtbot, bob.chat.sync_once())
    assert bob.view.alerts == before

    # Alice writes an urgent message from the composer.
    alice.view.composer.urgent.setChecked(True)
    qtbot.keyClicks(alice.view.composer.edit, "Bed 3 desaturating, come now")
    qtbot.keyClick(alice.view.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: alice.chat.outbox.count() == 0 and len(
        alice.view.timeline.bubbles) == 2, timeout=10_000)
    assert not alice.view.composer.urgent.isChecked()
    urgent_id = next(e for e, b in alice.view.timeline.bubbles.items()
                 if b.body.text() == "Bed 3 desaturating, come now")
    mine = alice.view.timeline.bubbles[urgent_id]
    assert mine.urgent.text() == "Urgent" and mine.ack_button.isHidden()

    run(qtbot, bob.chat.sync_once())  # under DND, urgent still alerts and holds the banner
    assert bob.view.alerts == before + 1
    assert bob.view.urgent.isVisibleTo(bob.view)
    assert bob.view.urgent.text.text() == "Urgent from dr.ula: Bed 3 desaturating, come now"
    assert bob.view.urgent.text in phi_widgets(bob.view)
    bob.chat.renotify()  # the interval passed, not acknowledged: again
    assert bob.view.alerts == before + 2

    # Open shows the conversation; the message has an Acknowledge button there too.
    bob.view.urgent.open_button.click()
    assert bob.view.current_room == room
    theirs = bob.view.timeline.bubbles[urgent_id]
    assert not theirs.ack_button.isHidden()
    bob.view.urgent.ack_button.click()
    qtbot.waitUntil(lambda: not bob.view.urgent.isVisibleTo(bob.view), timeout=10_000)
    assert theirs.ack_button.isHidden() and theirs.urgent.text() == "Urgent · acknowledged"
    assert bob.chat.renotify() == []
    run(qtbot, alice.chat.sync_once())
    qtbot.waitUntil(lambda: mine.urgent.text() == "Urgent · acknowledged", timeout=10_000)


def test_scrolling_up_loads_older_history_from_the_cache(qtbot, people):
    from app.core.messages import CachedMessage
    from app.core.phi import Phi

    (alice,) = people("dr.hist")
    room = run(qtbot, alice.chat.create_room())
    base = 1_700_000_000_000
    alice.chat.messages_repo.insert_many(
        CachedMessage(room, f"sc_hist{i:04d}", alice.user_id, base + i * 1000, Phi(f"note {i}"))
        for i in range(250))
    alice.view.refresh()
    alice.view.rooms.select(room)
    timeline = alice.view.timeline
    assert timeline.texts() == [f"note {i}" for i in range(150, 250)]
    qtbot.waitUntil(lambda: timeline.verticalScrollBar().value() > 0, timeout=5_000)

    first_shown = timeline.bubbles["sc_hist0150"]
    timeline.verticalScrollBar().setValue(0)  # the user scrolls to the top
    qtbot.waitUntil(lambda: len(timeline.bubbles) == 200, timeout=5_000)
    assert timeline.texts() == [f"note {i}" for i in range(50, 250)]
    # What the user was looking at stays in view (not thrown to the top or bottom).
    qtbot.waitUntil(lambda: timeline.verticalScrollBar().value() > 0, timeout=5_000)
    top = first_shown.mapTo(timeline.widget(), first_shown.rect().topLeft()).y()
    assert abs(top - timeline.verticalScrollBar().value()) < 50

    timeline.verticalScrollBar().setValue(0)
    qtbot.waitUntil(lambda: len(timeline.bubbles) == 250, timeout=5_000)
    assert timeline.texts()[:2] == ["note 0", "note 1"]
    assert alice.view.load_older() == 0  # the start of the history


def test_disappearing_messages_setting_and_purge_in_the_view(qtbot, people):
    import time

    alice, bob = people("dr.dia", "dr.dov")
    room = run(qtbot, room_with(alice.client, bob.client))
    for person in (alice, bob):
        person.view.refresh()
        person.view.rooms.select(room)
    assert alice.view.disappear_box.currentText() == "Messages stay"
    run(qtbot, alice.chat.send_text(room, "handover: bed 9 stable"))
    alice.view.disappear_box.chosen.emit(3600)  # the user picks "after 1 hour"
    qtbot.waitUntil(lambda: alice.chat.disappearing(room) == 3600
                    and alice.chat.outbox.count() == 0, timeout=10_000)
    run(qtbot, bob.chat.sync_once())
    qtbot.waitUntil(lambda: bob.view.disappear_box.currentText() == "Disappear after 1 hour",
                    timeout=10_000)
    assert bob.view.timeline.texts() == ["handover: bed 9 stable"]
    bob.chat.purge_expired(int(time.time() * 1000) + 3_601_000)  # an hour later
    qtbot.waitUntil(lambda: bob.view.timeline.texts() == [], timeout=10_000)
