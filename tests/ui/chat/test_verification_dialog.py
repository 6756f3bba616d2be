"""Verifying a device from the chat view: two people, two real chat services, the real
relay; each clicks through their own dialog."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.crypto.store import TrustLevel
from app.services.verification import Phase
from tests.integration.test_chat import new_client, room_with
from tests.ui.chat.conftest import Person, run


def _open_room(person: Person, room: str) -> None:
    person.view.refresh()
    person.view.rooms.select(room)


def _start(qtbot, alice: Person, bob: Person):
    """Alice verifies bob's device from her member list; bob accepts; codes on both sides."""
    assert alice.view.members.select_device(bob.user_id, bob.device_id)
    qtbot.mouseClick(alice.view.members.verify, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(alice.view.dialogs) == 1, timeout=10_000)
    (mine,) = alice.view.dialogs.values()
    assert mine.pages.currentWidget() is mine.waiting_page
    assert "Waiting for dr." in mine.waiting_text.text()

    run(qtbot, bob.chat.sync_once())  # the request pops up on bob's screen
    (theirs,) = bob.view.dialogs.values()
    assert theirs.isVisible() and theirs.pages.currentWidget() is theirs.request_page
    assert alice.client.creds.username in theirs.request_text.text()
    qtbot.mouseClick(theirs.accept_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: theirs.status.phase is Phase.WAITING, timeout=10_000)
    run(qtbot, alice.chat.sync_once())
    run(qtbot, bob.chat.sync_once())
    run(qtbot, alice.chat.sync_once())
    for dialog in (mine, theirs):
        assert dialog.pages.currentWidget() is dialog.compare_page
        assert dialog.match_button.isVisible() and dialog.mismatch_button.isVisible()
    assert len(mine.emoji_names()) == 7
    assert mine.emoji_names() == theirs.emoji_names()
    assert mine.status.emoji == theirs.status.emoji
    return mine, theirs


def test_both_confirm_and_the_devices_show_verified(qtbot, people, save_screenshot):
    alice, bob = people("dr.okafor", "dr.lind")
    room = run(qtbot, room_with(alice.client, bob.client))
    _open_room(alice, room)
    _open_room(bob, room)
    mine, theirs = _start(qtbot, alice, bob)
    theirs.use_numbers.setChecked(True)  # the numbers instead, for a screen without emoji
    assert theirs.numbers.isVisible()
    assert theirs.numbers.text() == mine.numbers.text() != ""
    theirs.use_numbers.setChecked(False)
    save_screenshot(theirs, "verification-dialog.png")

    qtbot.mouseClick(mine.match_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: mine.status.phase is Phase.CONFIRMED, timeout=10_000)
    assert "Waiting for dr.lind to compare" in mine.waiting_text.text()
    run(qtbot, bob.chat.sync_once())
    qtbot.mouseClick(theirs.match_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: theirs.status.phase is Phase.VERIFIED, timeout=10_000)
    run(qtbot, alice.chat.sync_once())
    for dialog in (mine, theirs):
        assert dialog.pages.currentWidget() is dialog.done_page
        assert "is verified" in dialog.done_text.text()
    assert alice.view.members.trust_texts()[bob.device_id] == "Verified"
    assert bob.view.members.trust_texts()[alice.device_id] == "Verified"
    qtbot.mouseClick(theirs.close_button, Qt.MouseButton.LeftButton)
    assert not theirs.isVisible()


def test_codes_that_differ_end_it_on_both_sides(qtbot, people):
    alice, bob = people("dr.okafor2", "dr.lind2")
    room = run(qtbot, room_with(alice.client, bob.client))
    _open_room(alice, room)
    _open_room(bob, room)
    mine, theirs = _start(qtbot, alice, bob)
    qtbot.mouseClick(theirs.mismatch_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: theirs.status.phase is Phase.CANCELLED, timeout=10_000)
    assert theirs.pages.currentWidget() is theirs.cancelled_page
    assert theirs.cancelled_text.text().startswith("The emoji did not match")
    run(qtbot, alice.chat.sync_once())
    assert mine.pages.currentWidget() is mine.cancelled_page
    assert mine.cancelled_text.text().startswith("dr.lind2 said the emoji did not match")
    assert alice.view.members.trust_texts()[bob.device_id] == "Trusted under policy"


def test_escape_cancels_and_the_other_side_is_told(qtbot, people):
    alice, bob = people("dr.okafor3", "dr.lind3")
    room = run(qtbot, room_with(alice.client, bob.client))
    _open_room(alice, room)
    _open_room(bob, room)
    alice.view.members.select_device(bob.user_id, bob.device_id)
    alice.view.members.verify.click()
    qtbot.waitUntil(lambda: len(alice.view.dialogs) == 1, timeout=10_000)
    run(qtbot, bob.chat.sync_once())
    (theirs,) = bob.view.dialogs.values()
    (mine,) = alice.view.dialogs.values()
    qtbot.keyClick(mine, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: mine.status.phase is Phase.CANCELLED, timeout=10_000)
    assert not mine.isVisible()
    run(qtbot, bob.chat.sync_once())
    assert theirs.pages.currentWidget() is theirs.cancelled_page
    assert theirs.cancelled_text.text() == "dr.okafor3 cancelled the verification."
    assert not theirs.accept_button.isVisible()


def test_verifying_a_flagged_device_from_the_warning_lifts_it(qtbot, people, open_server,
                                                              tmp_path):
    alice, bob = people("dr.okafor4", "dr.lind4")
    room = run(qtbot, room_with(alice.client, bob.client))
    bob2_client = run(qtbot, new_client(open_server, tmp_path, "dr.lind4",
                                        creds=bob.client.creds))
    bob2 = Person(qtbot, bob2_client)
    try:
        _open_room(alice, room)
        run(qtbot, alice.chat.check_device_lists())
        assert alice.view.banner.isVisible() and alice.view.composer.blocked
        qtbot.mouseClick(alice.view.banner.verify, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(alice.view.dialogs) == 1, timeout=10_000)
        (mine,) = alice.view.dialogs.values()
        run(qtbot, bob2.chat.sync_once())
        (theirs,) = bob2.view.dialogs.values()
        theirs.accept_request()
        qtbot.waitUntil(lambda: theirs.status.phase is Phase.WAITING, timeout=10_000)
        for chat in (alice.chat, bob2.chat, alice.chat):
            run(qtbot, chat.sync_once())
        mine.confirm_match()
        qtbot.waitUntil(lambda: mine.status.phase is Phase.CONFIRMED, timeout=10_000)
        run(qtbot, bob2.chat.sync_once())
        theirs.confirm_match()
        qtbot.waitUntil(lambda: theirs.status.phase is Phase.VERIFIED, timeout=10_000)
        run(qtbot, alice.chat.sync_once())
        assert mine.status.phase is Phase.VERIFIED
        assert alice.view.banner.isHidden() and not alice.view.composer.blocked
        assert {r.device_id: r.trust for r in alice.chat.devices(bob.user_id)}[
            bob2.device_id] is TrustLevel.VERIFIED
    finally:
        bob2.verification.close()
        run(qtbot, bob2_client.close())


def test_a_request_arriving_while_locked_waits_for_the_unlock(qtbot, people):
    from app.services.app_state import AppState

    alice, bob = people("dr.okafor5", "dr.lind5")
    room = run(qtbot, room_with(alice.client, bob.client))
    _open_room(bob, room)
    state = AppState(locked=True)
    bob.view.configure(app_state=state)
    status = run(qtbot, alice.verification.start(bob.user_id, bob.device_id))
    run(qtbot, bob.chat.sync_once())
    assert bob.verification.status(status.transaction_id).phase is Phase.REQUESTED
    assert bob.view.dialogs == {}  # nothing over the lock screen
    state.locked = False
    (dialog,) = bob.view.dialogs.values()
    assert dialog.isVisible() and dialog.pages.currentWidget() is dialog.request_page
