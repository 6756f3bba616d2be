"""The pre-join dialog's network test, against the real server and a real coturn (Qt
offscreen on the test's qasync loop): "Network: good" with figures; with coturn stopped,
*Test again* says calls work only directly. Screenshot with SAFECONSULT_SCREENSHOTS=1."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.ui.asyncbridge import TaskRunner
from app.ui.call.prejoin import PreJoinDialog
from tests.integration.test_calls import coturn, new_peer, turn_server  # noqa: F401
from tests.ui.chat.conftest import run


def test_prejoin_shows_the_network_test(qtbot, qloop, theme, turn_server, coturn,  # noqa: F811
                                        tmp_path, save_screenshot):
    alice = run(qtbot, new_peer(turn_server, tmp_path, "dr.alice"))
    try:
        dialog = PreJoinDialog(TaskRunner(), title="Ward 7 consult",
                               network_test=lambda: alice.calls.network_test(timeout_s=1.5))
        qtbot.addWidget(dialog)
        dialog.show()
        assert dialog.network_status.text() == "Network: testing…"
        qtbot.waitUntil(lambda: dialog.network_report is not None, timeout=15_000)
        text = dialog.network_status.text()
        assert text.startswith("Network: good · ") and "ms round trip to the relay" in text
        dialog.resize(520, 600)
        save_screenshot(dialog, "call-prejoin-network.png")

        coturn.stop()
        qtbot.mouseClick(dialog.retest_button, Qt.MouseButton.LeftButton)
        assert not dialog.retest_button.isEnabled()
        qtbot.waitUntil(lambda: dialog.network_report is not None, timeout=15_000)
        assert dialog.network_report.verdict == "direct_only"
        assert dialog.network_status.text().startswith("Network: direct only")
        assert dialog.retest_button.isEnabled()
        dialog.reject()
    finally:
        run(qtbot, alice.close())
