"""PIN unlock in the window, with the real session service and the real server: the set-PIN
step after sign-in (trivial and mismatched PINs refused, *Not now*), the lock screen asking
for the PIN with *Use password instead*, three wrong PINs leaving the password only, the
policy's N failures signing out, and no PIN anywhere when policy says no.

Window, lock controller (fake clock), SessionLink, SessionService, pinned TLS and server_stub
are real; the OS keyring is the test double. Screenshots (SAFECONSULT_SCREENSHOTS=1):
docs/screenshots/lock-pin.png, lock-pin-fallback.png and set-pin.png.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.config import Paths, Policy
from app.core.autolock import LockConfig
from app.core.phi import Phi
from app.core.pin import PIN_MAX_FAILURES
from app.security.keystore import KeyringKeyStore
from app.security.testing import InMemoryTestKeyring
from app.services.app_state import AppState, ConnectionState
from app.services.session import SessionState
from app.ui.lock_controller import LockController
from app.ui.lock_screen import PIN, SetPinDialog
from app.ui.phi import PhiLabel, phi_widgets
from app.ui.session_link import SessionLink
from tests.support.clients import create_user, next_totp_code

TIMEOUT, WARNING = 120, 20
GOOD_PIN = "482913"


class Clock:
    now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def signed_in(qtbot, make_window, qapp, open_server, tmp_path):
    """Sign a fresh user in through the window; returns (window, link, controller, clock,
    creds). The set-PIN step, if any, is left open."""

    def build(policy: Policy, name: str = "dr.pin"):
        keyring = InMemoryTestKeyring()
        policy = replace(policy, server_url=open_server.url, pinned_ca_pem=open_server.ca_pem)
        link = SessionLink(AppState(), policy, Paths.under(tmp_path / "client"),
                           keystore_for=lambda user, device_id: KeyringKeyStore.open(
                               user, device_id, backend=keyring, allow_test_backend=True))
        window = make_window(policy=policy, state=link.state, sign_in=link.sign_in,
                             sign_out=link.sign_out, on_close=link.aclose, lock=link.lock,
                             unlock=link.unlock)
        clock = Clock()
        controller = LockController(
            qapp, link.state, lambda: LockConfig(TIMEOUT, WARNING, policy.max_unlock_failures),
            window.lock_now, clock=clock, parent=window)
        window.show()
        creds = create_user(open_server, name, role="physician")
        code = asyncio.ensure_future(next_totp_code(open_server, creds.username,
                                                    creds.totp_secret))
        qtbot.waitUntil(code.done, timeout=40_000)
        login = window.login
        login.username.setText(creds.username)
        login.password.setText(creds.password)
        login.totp.setText(code.result())
        qtbot.mouseClick(login.submit, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: link.state.connection == ConnectionState.ONLINE, timeout=30_000)
        qtbot.waitUntil(lambda: not login._busy, timeout=10_000)
        window.workspace.views["consults"].layout().insertWidget(0, PhiLabel(Phi("MRN 555-1234")))
        return window, link, controller, clock, creds

    return build


def visible_phi() -> list:
    return [w for top in QApplication.topLevelWidgets() for w in phi_widgets(top)
            if w.isVisible()]


def lock_by_idling(controller: LockController, clock: Clock) -> None:
    clock.now += TIMEOUT
    controller.tick()


def submit(qtbot, screen, field, text: str) -> None:
    field.setText(text)
    qtbot.mouseClick(screen.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: screen.unlock_button.isEnabled(), timeout=10_000)


def set_pin(qtbot, dialog: SetPinDialog, pin: str, again: str | None = None) -> None:
    dialog.pin.setText(pin)
    dialog.repeat.setText(pin if again is None else again)
    qtbot.mouseClick(dialog.set_button, Qt.MouseButton.LeftButton)
    # Done when the dialog is ready again, or closed (and deleted) after the PIN was set.
    qtbot.waitUntil(lambda: not shiboken6.isValid(dialog) or dialog.set_button.isEnabled(),
                    timeout=10_000)


def close(qtbot, window) -> None:
    closing = asyncio.ensure_future(window.shutdown())
    qtbot.waitUntil(closing.done, timeout=10_000)


def test_set_pin_step_then_unlock_with_the_pin(qtbot, signed_in, save_screenshot):
    window, link, controller, clock, _creds = signed_in(Policy(allow_pin_unlock=True))
    service = link.service
    dialog = window.login.pin_dialog
    assert isinstance(dialog, SetPinDialog)
    qtbot.waitUntil(dialog.isVisible)
    assert dialog.isModal() and window.pages.currentWidget() is window.workspace
    assert "at least 6 digits" in dialog.intro.text()
    dialog.pin.setText(GOOD_PIN)
    dialog.repeat.setText(GOOD_PIN[:3])
    save_screenshot(dialog, "set-pin.png")
    dialog.pin.clear()
    dialog.repeat.clear()

    set_pin(qtbot, dialog, "123456")
    assert dialog.error.text() == (
        "This PIN is too easy to guess. Avoid repeated digits and runs such as 123456.")
    assert dialog.pin.text() == "" and dialog.repeat.text() == ""  # digits dropped once sent
    set_pin(qtbot, dialog, "4829")
    assert dialog.error.text() == "Use at least 6 digits."
    set_pin(qtbot, dialog, GOOD_PIN, "482931")
    assert dialog.error.text() == "The two PINs are not the same. Enter them again."
    assert not service.pin.is_set
    assert dialog.error.geometry().bottom() < dialog.note.geometry().top()  # not clipped
    # The PIN field takes digits only, twelve at most.
    qtbot.keyClicks(dialog.pin, "12ab34567890123")
    assert dialog.pin.text() == "123456789012"
    dialog.pin.clear()

    with qtbot.waitSignal(dialog.pinSet, timeout=10_000):
        set_pin(qtbot, dialog, GOOD_PIN)
    qtbot.waitUntil(lambda: window.login.pin_dialog is None)
    assert service.pin.is_set

    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    lock_by_idling(controller, clock)
    screen = window.lock_screen
    assert window.pages.currentWidget() is screen and visible_phi() == []
    assert screen.mode == PIN and screen.pin.isVisible() and not screen.password.isVisible()
    assert screen.switch_button.isVisible()
    assert screen.switch_button.text() == "Use password instead"
    assert QApplication.focusWidget() is screen.pin  # type the PIN at once

    submit(qtbot, screen, screen.pin, "739204")
    assert screen.error.text() == (
        "The PIN is not correct. Attempts left before you are signed out: 4")
    assert service.snapshot.state is SessionState.LOCKED and screen.mode == PIN
    save_screenshot(window, "lock-pin.png")

    # Use password instead, and back.
    qtbot.mouseClick(screen.switch_button, Qt.MouseButton.LeftButton)
    assert screen.mode == "password" and screen.password.isVisible() and not screen.pin.isVisible()
    assert screen.switch_button.text() == "Use PIN instead" and screen.error.isHidden()
    qtbot.mouseClick(screen.switch_button, Qt.MouseButton.LeftButton)
    assert screen.mode == PIN

    submit(qtbot, screen, screen.pin, GOOD_PIN)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace)
    assert service.snapshot.state is SessionState.SIGNED_IN and len(visible_phi()) == 1
    assert service.unlock_failures == 0
    close(qtbot, window)


def test_wrong_pins_leave_the_password_then_the_limit_signs_out(qtbot, signed_in,
                                                               save_screenshot):
    window, link, controller, clock, creds = signed_in(
        Policy(allow_pin_unlock=True, max_unlock_failures=PIN_MAX_FAILURES + 1))
    dialog = window.login.pin_dialog
    set_pin(qtbot, dialog, GOOD_PIN)
    qtbot.waitUntil(lambda: window.login.pin_dialog is None)
    lock_by_idling(controller, clock)
    screen = window.lock_screen
    for n in range(PIN_MAX_FAILURES):
        assert screen.mode == PIN
        submit(qtbot, screen, screen.pin, f"73920{n}")
    assert screen.mode == "password" and screen.password.isVisible()
    assert not screen.pin.isVisible() and not screen.switch_button.isVisible()
    assert screen.error.text() == ("The PIN cannot be used any more: enter your password. "
                                   "Attempts left before you are signed out: 1")
    save_screenshot(window, "lock-pin-fallback.png")
    # The next lock starts on the password too.
    submit(qtbot, screen, screen.password, creds.password)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace)
    lock_by_idling(controller, clock)
    assert screen.mode == "password" and not screen.switch_button.isVisible()
    # PIN failures counted with password failures; the policy's N-th ends the session.
    for n in range(PIN_MAX_FAILURES + 1):
        submit(qtbot, screen, screen.password, f"wrong-{n}")
        if link.state.user is None:
            break
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.login, timeout=10_000)
    assert link.service.snapshot.state is SessionState.SIGNED_OUT
    assert window.login.error.text() == "Too many failed attempts: you have been signed out."
    close(qtbot, window)


def test_no_pin_anywhere_when_policy_says_no(qtbot, signed_in):
    window, _link, controller, clock, creds = signed_in(Policy(allow_pin_unlock=False))
    assert window.login.pin_dialog is None
    assert not [w for w in QApplication.topLevelWidgets()
                if isinstance(w, SetPinDialog) and w.isVisible()]
    lock_by_idling(controller, clock)
    screen = window.lock_screen
    assert screen.mode == "password" and screen.password.isVisible()
    assert not screen.pin.isVisible() and not screen.switch_button.isVisible()
    submit(qtbot, screen, screen.password, creds.password)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace)
    close(qtbot, window)


def test_not_now_skips_the_pin(qtbot, signed_in):
    window, link, controller, clock, creds = signed_in(Policy(allow_pin_unlock=True))
    dialog = window.login.pin_dialog
    qtbot.mouseClick(dialog.skip_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.login.pin_dialog is None)
    assert not link.service.pin.is_set
    lock_by_idling(controller, clock)
    assert window.lock_screen.mode == "password"
    assert not window.lock_screen.switch_button.isVisible()
    submit(qtbot, window.lock_screen, window.lock_screen.password, creds.password)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace)
    close(qtbot, window)


def test_signing_out_closes_the_set_pin_step(qtbot, signed_in):
    window, _link, _controller, _clock, _creds = signed_in(Policy(allow_pin_unlock=True))
    dialog = window.login.pin_dialog
    qtbot.waitUntil(dialog.isVisible)
    window.sign_out()
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.login, timeout=10_000)
    assert window.login.pin_dialog is None
    qtbot.waitUntil(lambda: not [w for w in QApplication.topLevelWidgets()
                                 if isinstance(w, SetPinDialog) and w.isVisible()])
    close(qtbot, window)
