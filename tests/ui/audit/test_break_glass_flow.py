"""Emergency access from the Consults area, end to end: a physician signed in through the
window asks for access to a consult they are not a member of; the dialog requires a reason
(and says it is reviewed), the server grants a short observer grant, the workspace shows
"Emergency access active until HH:MM -- reviewed afterwards" in every area, the consult
lists its expiry, the device's own audit log records it, and the banner goes at expiry."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.ui.phi import is_phi
from tests.server.relay_support import make_room
from tests.support.clients import new_user_device, server_db
from tests.support.server import start_server
from tests.support.signed_in import run

TTL_S = 10  # long enough for the steps below on a loaded machine


def test_break_glass_needs_a_reason_shows_a_banner_until_expiry(
    qtbot, signed_in_window, tmp_path, save_screenshot,
):
    server = start_server(tmp_path / "server", require_device_approval=False,
                          break_glass_ttl_s=TTL_S)
    try:
        _, owner = run(qtbot, new_user_device(server, "dr.owner"))
        room_id = run(qtbot, make_room(owner))
        window = signed_in_window(server, "dr.erdoc", "physician")
        workspace = window.workspace
        consults = workspace.views["consults"]
        banner = workspace.emergency_banner
        assert workspace.current_area() == "consults"
        assert consults.emergency_button.isVisible() and not banner.isVisible()
        assert is_phi(consults.table)

        qtbot.mouseClick(consults.emergency_button, Qt.MouseButton.LeftButton)
        dialog = next(w for w in consults.children() if w.objectName() == "breakGlassDialog")
        assert dialog.isVisible() and is_phi(dialog.reason) and is_phi(dialog.room)
        assert "reviews every emergency access" in dialog.warning.text()
        # No reason, or one too short: the request cannot be sent.
        qtbot.keyClicks(dialog.room, room_id)
        assert not dialog.submit.isEnabled()
        qtbot.keyClicks(dialog.reason, "urgent")
        assert not dialog.submit.isEnabled()
        dialog.reason.setPlainText("Unresponsive patient in resus, need medication history")
        assert dialog.submit.isEnabled()
        save_screenshot(dialog, "break-glass-dialog.png")
        # A consult that does not exist: the server refuses, the dialog says so and stays.
        dialog.room.setText("AAAAAAAAAAAAAAAAAAAAAA")
        qtbot.mouseClick(dialog.submit, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10_000)
        assert "no consult with this ID" in dialog.error.text()
        assert dialog.isVisible() and dialog.room.isEnabled()
        dialog.room.setText(room_id)
        with qtbot.waitSignal(dialog.accepted, timeout=10_000):
            qtbot.mouseClick(dialog.submit, Qt.MouseButton.LeftButton)
        grant = dialog.grant
        assert grant is not None and grant.room_id == room_id

        qtbot.waitUntil(banner.isVisible, timeout=5_000)
        assert "Emergency access active until" in banner.label.text()
        assert "reviewed afterwards" in banner.label.text()
        assert banner.until_ms() == grant.expires_ms
        qtbot.waitUntil(lambda: consults.table.rowCount() == 1, timeout=10_000)
        assert consults.table.item(0, 0).text() == room_id
        assert consults.table.item(0, 2).text().startswith("Emergency access until")
        # The banner is the workspace's: it stays when another area is shown.
        workspace.show_area("images")
        assert banner.isVisible()
        workspace.show_area("consults")
        save_screenshot(window, "break-glass-banner.png")

        # Audited on the device (the one AuditService) as well as by the server.
        link_service = window.login._sign_in.__self__.service  # the SessionLink's service
        run(qtbot, link_service.audit.flush())
        rows = server_db(server).connection().execute(
            "SELECT action, object_id, outcome FROM audit_log WHERE action LIKE "
            "'%break_glass' ORDER BY seq").fetchall()
        assert sorted(tuple(r) for r in rows) == sorted([
            ("room.break_glass", "AAAAAAAAAAAAAAAAAAAAAA", "refused"),
            ("client.break_glass", "AAAAAAAAAAAAAAAAAAAAAA", "refused"),
            ("room.break_glass", room_id, "ok"), ("client.break_glass", room_id, "ok")])

        # At expiry the banner goes and the consult leaves the list.
        qtbot.waitUntil(lambda: not banner.isVisible(), timeout=(TTL_S + 5) * 1000)
        qtbot.waitUntil(lambda: consults.table.rowCount() == 0, timeout=5_000)
        run(qtbot, owner.aclose())
    finally:
        server.stop()


def test_the_banner_follows_its_grants(qtbot, qloop):
    from app.ui.banner import EmergencyAccessBanner

    banner = EmergencyAccessBanner()
    qtbot.addWidget(banner)
    banner.show()
    now = 1_800_000_000_000
    banner.set_grants({"r1": now - 1}, now_ms=now)
    assert not banner.isVisible()
    banner.set_grants({"r1": now + 60_000, "r2": now + 120_000}, now_ms=now)
    assert banner.isVisible() and banner.until_ms() == now + 120_000
    assert "(2 consults)" in banner.label.text()
    banner.set_grants({}, now_ms=now)
    assert not banner.isVisible() and banner.label.text() == ""


def test_the_banner_goes_at_expiry_even_if_its_timer_fires_early(qtbot, qloop):
    from app.ui.banner import EmergencyAccessBanner

    clock = [1_800_000_000_000]
    banner = EmergencyAccessBanner()
    banner._now_ms = lambda: clock[0]
    qtbot.addWidget(banner)
    banner.show()
    expired: list[None] = []
    banner.expired.connect(lambda: expired.append(None))
    banner.set_grants({"r1": clock[0] + 6_000})
    clock[0] += 5_800  # a coarse timer may fire this early
    banner._tick()
    assert banner.isVisible() and banner._timer.isActive() and expired == []
    assert banner._timer.remainingTime() <= 300
    clock[0] += 300
    banner._tick()
    assert not banner.isVisible() and expired == [None]
