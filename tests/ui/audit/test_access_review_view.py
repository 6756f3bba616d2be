"""The auditor's access review in a window signed in through its own form, against the real
server: filters (user, consult, action + outcome, time range), the chain's state (verified,
then the first broken entry after tampering), anomaly alerts, the emergency-access queue
signed off end to end, and exports -- at once, and under the two-person rule with the IT
admin's approval given in the IT admin's own page."""

from __future__ import annotations

import sqlite3

from PySide6.QtCore import QDateTime, Qt
from PySide6.QtWidgets import QTableWidget

from app.services.access_review import AccessReviewService
from app.ui.asyncbridge import TaskRunner
from app.ui.audit.approvals import ApprovalsPanel
from app.ui.audit.review import AccessReviewPanel
from app.ui.phi import is_phi
from tests.server.relay_support import make_room
from tests.support.clients import new_user_device, server_db
from tests.support.signed_in import run

REASON = "Unresponsive patient in resus, need medication history"


def _column(table: QTableWidget, column: int) -> list[str]:
    return [table.item(row, column).text() for row in range(table.rowCount())]


def _idle(qtbot, page) -> None:
    """The page's own requests are done (the window's runner also runs the chat loop)."""
    qtbot.waitUntil(lambda: page.busy == 0, timeout=20_000)


def test_access_review_filters_chain_alerts_sign_off_and_exports(
    qtbot, open_server, signed_in_window, tmp_path, save_screenshot,
):
    _, owner = run(qtbot, new_user_device(open_server, "dr.owner"))
    _, erdoc = run(qtbot, new_user_device(open_server, "dr.erdoc"))
    _, it_dev = run(qtbot, new_user_device(open_server, "ivan", role="it_admin"))
    room_id = run(qtbot, make_room(owner))
    run(qtbot, erdoc.transport.post_json(f"/v1/rooms/{room_id}/break_glass", {"reason": REASON}))
    try:
        run(qtbot, erdoc.transport.post_json("/v1/rooms/AAAAAAAAAAAAAAAAAAAAAA/break_glass",
                                             {"reason": REASON}))
    except Exception as exc:  # the refused attempt is audit material too
        assert getattr(exc, "status", None) == 404

    window = signed_in_window(open_server, "audrey", "auditor")
    workspace = window.workspace
    assert "admin" in workspace.visible_areas()
    workspace.show_area("admin")
    panel = workspace.views["admin"].panel
    assert isinstance(panel, AccessReviewPanel)
    _idle(qtbot, panel)
    assert not panel.error.isVisible()  # nothing the server refused
    assert panel.chain.state == "ok" and "verified" in panel.chain.text()
    assert panel.log_table.rowCount() > 0
    for table in (panel.log_table, panel.alert_table, panel.bg_table):
        assert is_phi(table)  # consult ids, names and reasons: hidden by the lock
    rules = _column(panel.alert_table, 1)
    assert "Emergency access" in rules
    panel.tabs.setCurrentIndex(1)
    save_screenshot(window, "access-review-alerts.png")
    panel.tabs.setCurrentIndex(0)
    assert _column(panel.bg_table, 2) == [room_id]
    assert _column(panel.bg_table, 1) == ["dr.erdoc"]

    # Filters: a user, a consult (patient), an action prefix with an outcome, a period.
    filters = panel.filters
    qtbot.keyClicks(filters.user, "dr.erdoc")
    qtbot.mouseClick(filters.search, Qt.MouseButton.LeftButton)
    _idle(qtbot, panel)
    actions = set(_column(panel.log_table, 2))
    assert {"login", "room.break_glass"} <= actions and "room.create" not in actions
    assert set(_column(panel.log_table, 1)) <= {"dr.erdoc", ""}  # "" = the admin CLI
    save_screenshot(window, "access-review.png")
    filters.user.clear()
    filters.room.setText(room_id)
    qtbot.mouseClick(filters.search, Qt.MouseButton.LeftButton)
    _idle(qtbot, panel)
    assert sorted(_column(panel.log_table, 2)) == ["room.break_glass", "room.create"]
    assert set(_column(panel.log_table, 4)) == {room_id}
    filters.room.clear()
    filters.action.setEditText("room.*")
    filters.outcome.setCurrentIndex(filters.outcome.findData("refused"))
    qtbot.mouseClick(filters.search, Qt.MouseButton.LeftButton)
    _idle(qtbot, panel)
    assert _column(panel.log_table, 4) == ["AAAAAAAAAAAAAAAAAAAAAA"]
    filters.use_period.setChecked(True)
    filters.from_time.setDateTime(QDateTime.currentDateTime().addSecs(3600))
    filters.to_time.setDateTime(QDateTime.currentDateTime().addSecs(7200))
    qtbot.mouseClick(filters.search, Qt.MouseButton.LeftButton)
    _idle(qtbot, panel)
    assert panel.log_table.rowCount() == 0
    qtbot.mouseClick(filters.clear, Qt.MouseButton.LeftButton)

    # Emergency-access review: the reason shown (PHI-tagged), a note, flagged.
    panel.tabs.setCurrentIndex(2)
    panel.bg_table.selectRow(0)
    assert panel.bg_reason.text() == REASON and is_phi(panel.bg_reason)
    assert panel.bg_approve.isEnabled() and panel.bg_flag.isEnabled()
    qtbot.keyClicks(panel.bg_note, "Checked with the ward lead; patient was not in resus")
    save_screenshot(window, "access-review-break-glass.png")
    qtbot.mouseClick(panel.bg_flag, Qt.MouseButton.LeftButton)
    _idle(qtbot, panel)
    qtbot.waitUntil(lambda: panel.bg_table.rowCount() == 0, timeout=10_000)
    row = server_db(open_server).connection().execute(
        "SELECT reviewed_by, review_note, decision FROM break_glass").fetchone()
    assert tuple(row[1:]) == ("Checked with the ward lead; patient was not in resus",
                              "flagged")
    panel.bg_show_all.setChecked(True)
    _idle(qtbot, panel)
    assert _column(panel.bg_table, 4) == ["Flagged"]
    panel.bg_table.selectRow(0)
    assert panel.bg_status.text().startswith("Flagged by audrey")
    assert panel.bg_note.toPlainText().startswith("Checked with the ward lead")  # no tag
    assert not panel.bg_approve.isEnabled()
    save_screenshot(window, "access-review-signed-off.png")
    assert server_db(open_server).connection().execute(
        "SELECT count(*) FROM audit_log WHERE action = 'break_glass.review'").fetchone()[0] == 1

    # Export at once.
    panel.tabs.setCurrentIndex(3)
    panel.export_dir = tmp_path
    panel.export_format.setCurrentIndex(panel.export_format.findData("csv"))
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.last_export is not None, timeout=10_000)
    assert panel.last_export.name == "audit-export.csv"
    exported = panel.last_export.read_text()
    assert "room.break_glass" in exported
    # The sign-off and its decision are in the export (the review's audit entry).
    [review_line] = [line for line in exported.splitlines() if "break_glass.review" in line]
    assert "flagged" in review_line

    # Under the two-person rule: waiting, approved by an IT admin in their page, downloaded.
    run(qtbot, it_dev.transport.request("PUT", "/v1/audit/policy", json_body={
        "export_approval": True, "policy_approval": False}))
    panel.last_export = None
    panel.export_format.setCurrentIndex(panel.export_format.findData("fhir"))
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    _idle(qtbot, panel)
    assert panel.export_status.text().startswith("Waiting for a second approval")
    assert panel.last_export is None and panel.export_collect.isVisible()
    it_runner = TaskRunner()
    approvals = ApprovalsPanel(AccessReviewService(lambda: it_dev.transport), it_runner)
    qtbot.addWidget(approvals)
    approvals.show()
    approvals.load_all()
    _idle(qtbot, approvals)
    assert _column(approvals.table, 1) == ["audrey"]
    assert "format=fhir" in approvals.table.item(0, 3).text()
    qtbot.mouseClick(approvals.approve, Qt.MouseButton.LeftButton)
    _idle(qtbot, approvals)
    qtbot.waitUntil(lambda: approvals.table.rowCount() == 0, timeout=10_000)
    qtbot.mouseClick(panel.export_collect, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.last_export is not None, timeout=10_000)
    assert panel.last_export.name == "audit-export.json"
    assert '"resourceType": "Bundle"' in panel.last_export.read_text().replace(
        '"resourceType":"Bundle"', '"resourceType": "Bundle"')

    # Tampering with the server's log shows as the first broken entry.
    conn = sqlite3.connect(server_db(open_server).path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("UPDATE audit_log SET outcome = 'failed' WHERE seq = 3")
    conn.close()
    qtbot.mouseClick(panel.verify_button, Qt.MouseButton.LeftButton)
    _idle(qtbot, panel)
    assert panel.chain.state == "broken"
    assert "first broken entry #3" in panel.chain.text()

    for dev in (owner, erdoc, it_dev):
        run(qtbot, dev.aclose())
