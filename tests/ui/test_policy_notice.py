"""A refused machine policy is said where the user looks -- on the sign-in form at start and
above the workspace after sign-in -- and recorded in the device's audit chain, which reaches
the server (issue #9: "falls back to safe defaults and says so in the UI and the audit")."""

from __future__ import annotations

import json

from tests.support.clients import server_db

PROBLEM = "policy is not signed: this machine accepts only a policy signed by IT."


def test_a_refused_policy_is_shown_at_sign_in_and_after_and_audited(
        qtbot, open_server, signed_in_window):
    window = signed_in_window(open_server, "dr.cole", "physician", policy_problem=PROBLEM)
    banner = window.workspace.policy_banner
    assert banner.isVisible() and banner.kind == "refused"
    assert PROBLEM in banner.label.text() and "safe defaults" in banner.label.text()

    def entries():
        return server_db(open_server).connection().execute(
            "SELECT outcome, detail FROM audit_log WHERE action = 'client.policy.change'"
        ).fetchall()

    qtbot.waitUntil(lambda: len(entries()) == 1, timeout=30_000)
    [(outcome, detail)] = entries()
    assert outcome == "refused" and json.loads(detail)["reason"] == PROBLEM


def test_the_sign_in_form_says_so_before_anyone_signs_in(qtbot, qapp, qloop, tmp_path):
    from app.config import Paths, Policy, Settings
    from app.main import _build_window

    window = _build_window(qapp, Policy(), PROBLEM, Paths.under(tmp_path), Settings(),
                           keys_in_memory=True)
    qtbot.addWidget(window)
    window.observe_state()
    assert window.login.error.isVisibleTo(window.login)
    assert PROBLEM in window.login.error.text()


def test_no_notice_when_the_policy_is_fine(qtbot, open_server, signed_in_window):
    window = signed_in_window(open_server, "dr.dove", "physician")
    assert getattr(window.workspace, "policy_banner", None) is None
    assert not window.login.error.isVisibleTo(window.login)
