"""The IT admin's Devices page against the real server: a nurse's new cart waits for
approval, IT compares the fingerprint and approves it, the nurse signs in; a wipe asks first
and, confirmed, reaches the device's status. Declining the question changes nothing."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt

from app.services.session import fingerprint
from tests.support.clients import create_user, enroll, login
from tests.support.signed_in import run


def _select(panel, device_id: str) -> None:
    row = next(i for i, d in enumerate(panel.devices) if d.device_id == device_id)
    panel.table.selectRow(row)


def test_it_admin_approves_a_waiting_cart_and_wipes_it_after_confirming(
        qtbot, open_server, signed_in_window, save_screenshot):
    window = signed_in_window(open_server, "ivan", "it_admin")
    window.workspace.show_area("admin")
    panel = window.workspace.views["admin"].devices_panel
    qtbot.waitUntil(lambda: panel.busy == 0, timeout=20_000)

    # From now on new devices wait for IT (what a hospital server is configured to do).
    open_server.app.state.settings = dataclasses.replace(
        open_server.app.state.settings, require_device_approval=True)
    nurse = create_user(open_server, "nora", role="nurse")
    cart = run(qtbot, enroll(open_server, "nora", nurse.password, nurse.totp_secret,
                             display_name="Ward 3 cart"))
    try:
        assert cart.session is None
        panel.pending_only.setChecked(True)  # reloads
        qtbot.waitUntil(lambda: panel.busy == 0 and len(panel.devices) == 1, timeout=20_000)
        [waiting] = panel.devices
        assert (waiting.username, waiting.display_name) == ("nora", "Ward 3 cart")
        _select(panel, cart.device_id)
        assert panel.table.item(0, 2).text() == "Waiting for approval"
        assert panel.table.item(0, 5).text() == fingerprint(cart.identity.ed25519)
        assert panel.buttons["approve"].isEnabled()
        save_screenshot(window, "admin-devices.png")

        qtbot.mouseClick(panel.buttons["approve"], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.busy == 0 and panel.devices == [], timeout=20_000)
        assert "approved" in panel.done_text.text()
        run(qtbot, login(open_server, cart, nurse.password, nurse.totp_secret))

        panel.pending_only.setChecked(False)
        qtbot.waitUntil(lambda: panel.busy == 0 and len(panel.devices) == 2, timeout=20_000)
        _select(panel, cart.device_id)
        asked: list[str] = []
        panel._confirm = lambda _parent, _title, text: asked.append(text) or False
        qtbot.mouseClick(panel.buttons["wipe"], Qt.MouseButton.LeftButton)
        assert len(asked) == 1 and "Ward 3 cart" in asked[0] and "cannot be undone" in asked[0]
        assert panel.busy == 0  # declined: nothing was sent
        status = run(qtbot, cart.transport.get_json("/v1/devices/self/status"))
        assert (status["state"], status["order"]) == ("active", "none")

        panel._confirm = lambda *_: True
        qtbot.mouseClick(panel.buttons["wipe"], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: panel.busy == 0 and "Wipe ordered" in panel.done_text.text(),
                        timeout=20_000)
        status = run(qtbot, cart.transport.get_json("/v1/devices/self/status"))
        assert (status["state"], status["order"]) == ("revoked", "wipe")
        qtbot.waitUntil(lambda: any(d.device_id == cart.device_id and d.order == "wipe"
                                    for d in panel.devices), timeout=20_000)
        _select(panel, cart.device_id)
        assert panel.allowed(panel.selected()) == {"wipe"}  # revoked: only a (re)wipe is left
        assert not panel.error.isVisible()
    finally:
        run(qtbot, cart.aclose())
