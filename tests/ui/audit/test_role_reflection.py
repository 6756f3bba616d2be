"""The UI reflects the role the server enforces (issue #8: "nothing shown that the server
would refuse"): an auditor gets the access review; an IT admin gets approvals and no audit
content; a clinician gets no Admin area but gets Emergency access. Each window is signed in
through its own form against the real server, and no page reports a refused request."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from app.ui.audit.approvals import ApprovalsPanel
from app.ui.audit.devices import DevicesPanel
from app.ui.audit.review import AccessReviewPanel

AUDIT_CONTENT = ("accessReview", "auditTable", "alertTable", "breakGlassTable", "chainStatus",
                 "breakGlassReasonShown")


def _named(window, names) -> list[str]:
    return [w.objectName() for w in window.findChildren(QWidget) if w.objectName() in names]


def ivan_device_listed(panel) -> bool:
    """The IT admin's own workstation is listed, marked, and offers no action on itself."""
    own = [d for d in panel.devices if d.device_id == panel._service.own_device_id]
    if len(own) != 1 or own[0].username != "ivan":
        return False
    panel.table.selectRow(panel.devices.index(own[0]))
    return panel.allowed(own[0]) == set() and not any(
        b.isEnabled() for b in panel.buttons.values())


def test_each_role_sees_what_the_server_lets_it_do(qtbot, open_server, signed_in_window):
    auditor = signed_in_window(open_server, "audrey", "auditor")
    ws = auditor.workspace
    assert ws.visible_areas() == ["consults", "chat", "images", "admin"]
    panel = ws.views["admin"].panel
    assert isinstance(panel, AccessReviewPanel)
    qtbot.waitUntil(lambda: panel.busy == 0, timeout=20_000)
    assert not panel.error.isVisible() and panel.chain.state == "ok"
    assert not ws.views["consults"].emergency_button.isVisibleTo(ws.views["consults"])

    it_admin = signed_in_window(open_server, "ivan", "it_admin")
    ws = it_admin.workspace
    assert "admin" in ws.visible_areas()
    ws.show_area("admin")
    panel = ws.views["admin"].approvals_panel
    assert isinstance(panel, ApprovalsPanel)
    devices = ws.views["admin"].devices_panel
    assert isinstance(devices, DevicesPanel)
    qtbot.waitUntil(lambda: devices.busy == 0 and bool(devices.devices), timeout=20_000)
    assert not devices.error.isVisible()
    assert ivan_device_listed(devices)
    qtbot.waitUntil(lambda: panel.busy == 0, timeout=20_000)
    assert not panel.error.isVisible()  # the server allowed everything the page asked
    assert "Audit exports need a second person's approval: no" in panel.policy_text.text()
    assert _named(it_admin, AUDIT_CONTENT) == []  # no audit content anywhere in the window

    clinician = signed_in_window(open_server, "dr.osei", "physician")
    ws = clinician.workspace
    assert ws.visible_areas() == ["consults", "chat", "images"]
    ws.show_area("admin")
    assert ws.current_area() == "consults"  # a hidden area cannot be reached
    assert ws.views["admin"].panel is None
    assert _named(clinician, (*AUDIT_CONTENT, "approvals")) == []
    consults = ws.views["consults"]
    assert consults.emergency_button.isVisible()
    qtbot.waitUntil(lambda: consults.table.rowCount() == 0 and consults.service.rooms == [],
                    timeout=5_000)
