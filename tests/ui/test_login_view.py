"""The sign-in screen: field checks, the injected sign-in call, and how outcomes are shown."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import Qt

from app.core.errors import SafeConsultError
from app.services.app_state import AppState, SignedInUser
from app.ui.asyncbridge import TaskRunner
from app.ui.login_view import LoginView


@pytest.fixture
def view(qtbot, qloop, fake_sign_in):
    runner = TaskRunner()
    login = LoginView(fake_sign_in, runner, "https://consult.example-hospital.org")
    runner.setParent(login)
    qtbot.addWidget(login)
    login.show()
    return login


def fill_in(qtbot, view, username="dr.chen", password="correct horse", code="123 456"):
    qtbot.keyClicks(view.username, username)
    qtbot.keyClicks(view.password, password)
    qtbot.keyClicks(view.totp, code)


def test_shows_the_server(view):
    assert view.server.text() == "Server: https://consult.example-hospital.org"


def test_password_is_masked(view):
    assert view.password.echoMode() == view.password.EchoMode.Password


@pytest.mark.parametrize(
    ("username", "password", "code", "message", "focus"),
    [
        ("", "pw", "123456", "Enter your user name.", "username"),
        ("dr.chen", "", "123456", "Enter your password.", "password"),
        ("dr.chen", "pw", "12345", "Enter the 6-digit code from your authenticator app.", "totp"),
    ],
)
def test_missing_fields_are_named(qtbot, view, fake_sign_in, username, password, code, message,
                                  focus):
    with qtbot.waitActive(view):
        view.activateWindow()
    fill_in(qtbot, view, username, password, code)
    qtbot.mouseClick(view.submit, Qt.MouseButton.LeftButton)
    assert view.error.text() == message and view.error.isVisible()
    assert getattr(view, focus).hasFocus()
    assert fake_sign_in.calls == []


def test_totp_field_accepts_only_digits(qtbot, view):
    qtbot.keyClicks(view.totp, "12a3 45x6789")
    assert view.totp.text() == "123 456"


def test_success_sends_the_fields_and_clears_the_secrets(qtbot, view, fake_sign_in):
    fill_in(qtbot, view, username="  dr.chen ")
    with qtbot.waitSignal(view.signedIn, timeout=2000):
        qtbot.keyClick(view.totp, Qt.Key.Key_Return)  # Enter submits from any field
    assert fake_sign_in.calls == [("dr.chen", "correct horse", "123456")]
    assert view.password.text() == "" and view.totp.text() == ""
    assert view.error.isHidden()
    assert view.submit.isEnabled()


def test_busy_while_signing_in(qtbot, view, fake_sign_in):
    fake_sign_in.gate = asyncio.Event()
    fill_in(qtbot, view)
    qtbot.mouseClick(view.submit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(fake_sign_in.calls) == 1, timeout=2000)
    assert not view.submit.isEnabled() and not view.username.isEnabled()
    assert view.submit.text() == "Signing in…"
    qtbot.mouseClick(view.submit, Qt.MouseButton.LeftButton)  # no second attempt meanwhile
    with qtbot.waitSignal(view.signedIn, timeout=2000):
        fake_sign_in.gate.set()
    assert len(fake_sign_in.calls) == 1
    assert view.submit.text() == "Sign in"


def test_failure_shows_the_specific_message(qtbot, view, fake_sign_in):
    fake_sign_in.error = SafeConsultError(
        "401 bad_totp", user_message="The code is wrong or has expired. Enter the current code.")
    fill_in(qtbot, view)
    qtbot.mouseClick(view.submit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(view.error.isVisible, timeout=2000)
    assert view.error.text() == "The code is wrong or has expired. Enter the current code."
    assert view.submit.isEnabled()
    assert view.username.text() == "dr.chen"  # kept: only the secrets are re-entered


def test_unexpected_failure_does_not_leak_its_text(qtbot, view, fake_sign_in):
    fake_sign_in.error = RuntimeError("password 'correct horse' rejected by backend at 10.1.2.3")
    fill_in(qtbot, view)
    qtbot.mouseClick(view.submit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(view.error.isVisible, timeout=2000)
    assert "correct horse" not in view.error.text()
    assert "10.1.2.3" not in view.error.text()


def test_signing_in_switches_the_window_to_the_workspace(qtbot, make_window, fake_sign_in):
    """The login view does not navigate; the window follows AppState.user, set by sign-in."""
    state = AppState()
    fake_sign_in.on_success = lambda name: setattr(
        state, "user", SignedInUser("u1", name, "nurse", "d1"))
    window = make_window(state=state)
    window.show()
    fill_in(qtbot, window.login)
    qtbot.mouseClick(window.login.submit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace, timeout=2000)


def test_keyboard_only_sign_in_order(qtbot, view):
    """Tab walks user name -> password -> code -> Sign in; no mouse needed."""
    with qtbot.waitActive(view):
        view.activateWindow()
    view.username.setFocus()
    order = [view.username]
    for _ in range(3):
        qtbot.keyClick(view.focusWidget(), Qt.Key.Key_Tab)
        order.append(view.focusWidget())
    assert order == [view.username, view.password, view.totp, view.submit]


def test_labels_are_buddies_for_mnemonics(view):
    assert view.username_label.buddy() is view.username
    assert view.password_label.buddy() is view.password
    assert view.totp_label.buddy() is view.totp
    for field in (view.username, view.password, view.totp):
        assert field.accessibleName()  # screen readers name every field


def test_not_ready_until_the_workstation_is_prepared(qtbot, view, fake_sign_in):
    view.set_ready(False)
    assert not view.submit.isEnabled() and not view.username.isEnabled()
    assert view.submit.text() == "Preparing this workstation…"
    view._submit()  # e.g. Enter pressed in a field: ignored
    assert fake_sign_in.calls == []
    view.set_ready(True, "A wipe of this workstation's SafeConsult data was interrupted and "
                         "has now been completed.")
    assert view.submit.isEnabled() and view.submit.text() == "Sign in"
    assert view.notice.isVisible() and "wipe" in view.notice.text()
