"""The lock with the real session service and the real server: unlock with the right and the
wrong password (the service's in-memory verifier), N failures sign out, a remote wipe still
lands while locked, and the kiosk's Switch user ends the session with nothing left.

Window, lock controller (fake clock), SessionLink, SessionService, pinned TLS and server_stub
are real; the OS keyring is the test double (kiosk: the process's memory key store).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.config import Paths, Policy
from app.core.autolock import LockConfig
from app.core.phi import Phi
from app.security.keystore import KeyringKeyStore
from app.security.testing import InMemoryTestKeyring
from app.services.app_state import AppState, ConnectionState, DeviceState
from app.services.session import SessionState
from app.ui.lock_controller import LockController
from app.ui.phi import PhiLabel, phi_widgets
from app.ui.session_link import SessionLink
from tests.support.clients import create_user, next_totp_code

TIMEOUT, WARNING = 120, 20


class Clock:
    now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def signed_in(qtbot, make_window, qapp, open_server, tmp_path):
    """Sign a fresh user in through the window; returns (window, link, controller, clock)."""

    def build(*, policy: Policy | None = None, keystore_for=None):
        keyring = InMemoryTestKeyring()
        policy = policy or Policy()
        from dataclasses import replace
        policy = replace(policy, server_url=open_server.url, pinned_ca_pem=open_server.ca_pem)
        link = SessionLink(AppState(), policy, Paths.under(tmp_path / "client"), keystore_for=(
            keystore_for or (lambda user, device_id: KeyringKeyStore.open(
                user, device_id, backend=keyring, allow_test_backend=True))))
        window = make_window(policy=policy, state=link.state, sign_in=link.sign_in,
                             sign_out=link.sign_out, on_close=link.aclose, lock=link.lock,
                             unlock=link.unlock)
        clock = Clock()
        controller = LockController(
            qapp, link.state, lambda: LockConfig(TIMEOUT, WARNING, policy.max_unlock_failures),
            window.lock_now, clock=clock, parent=window)
        window.show()
        creds = create_user(open_server, "dr.lock", role="physician")
        code = asyncio.ensure_future(next_totp_code(open_server, creds.username,
                                                    creds.totp_secret))
        qtbot.waitUntil(code.done, timeout=40_000)
        login = window.login
        login.username.setText(creds.username)
        login.password.setText(creds.password)
        login.totp.setText(code.result())
        qtbot.mouseClick(login.submit, Qt.MouseButton.LeftButton)
        # ONLINE once sign_in() has returned (the unlock verifier exists from then on).
        qtbot.waitUntil(lambda: link.state.connection == ConnectionState.ONLINE, timeout=30_000)
        window.workspace.views["consults"].layout().insertWidget(0, PhiLabel(Phi("MRN 555-1234")))
        return window, link, controller, clock, creds

    yield build


def visible_phi() -> list:
    return [w for top in QApplication.topLevelWidgets() for w in phi_widgets(top)
            if w.isVisible()]


def lock_by_idling(controller: LockController, clock: Clock) -> None:
    clock.now += TIMEOUT
    controller.tick()


def try_unlock(qtbot, window, password: str) -> None:
    screen = window.lock_screen
    screen.password.setText(password)
    qtbot.mouseClick(screen.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: screen.unlock_button.isEnabled(), timeout=10_000)


def close(qtbot, window) -> None:
    closing = asyncio.ensure_future(window.shutdown())
    qtbot.waitUntil(closing.done, timeout=10_000)


def test_unlock_then_a_remote_wipe_lands_while_locked(qtbot, signed_in, open_server):
    window, link, controller, clock, creds = signed_in()
    service = link.service
    lock_by_idling(controller, clock)
    assert service.snapshot.state is SessionState.LOCKED and link.state.locked
    assert window.pages.currentWidget() is window.lock_screen and visible_phi() == []

    try_unlock(qtbot, window, "not-the-password")
    assert window.lock_screen.error.text() == (
        "The password is not correct. Attempts left before you are signed out: 4")
    assert service.snapshot.state is SessionState.LOCKED and visible_phi() == []

    try_unlock(qtbot, window, creds.password)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace)
    assert service.snapshot.state is SessionState.SIGNED_IN and not link.state.locked
    assert len(visible_phi()) == 1

    # Locked again; IT orders a wipe: the push socket and the poller still run.
    lock_by_idling(controller, clock)
    assert service.snapshot.state is SessionState.LOCKED
    device_id = service.snapshot.device_id
    wiped = subprocess.run(
        [sys.executable, "-m", "server_stub", "admin", "--data-dir", str(open_server.data_dir),
         "device", "wipe", device_id], capture_output=True, text=True, timeout=60)
    assert wiped.returncode == 0, wiped.stderr
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.wiped, timeout=20_000)
    assert link.state.device == DeviceState.WIPED and link.state.user is None
    assert visible_phi() == [] and window._workspace is None
    close(qtbot, window)


def test_the_last_failed_unlock_signs_out(qtbot, signed_in):
    window, link, controller, clock, _creds = signed_in(policy=Policy(max_unlock_failures=2))
    lock_by_idling(controller, clock)
    try_unlock(qtbot, window, "wrong-1")
    assert "Attempts left before you are signed out: 1" in window.lock_screen.error.text()
    try_unlock(qtbot, window, "wrong-2")
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.login, timeout=10_000)
    assert link.service.snapshot.state is SessionState.SIGNED_OUT
    assert window.login.error.text() == "Too many failed attempts: you have been signed out."
    assert link.service.transport is None and controller.machine is None
    close(qtbot, window)


def test_kiosk_switch_user_leaves_nothing(qtbot, signed_in):
    from app.security.kiosk import session_keys

    window, link, _controller, _clock, _creds = signed_in(policy=Policy(kiosk=True),
                                                          keystore_for=session_keys)
    assert window.banner.switch_user.isVisible()
    qtbot.mouseClick(window.banner.switch_user, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.login, timeout=20_000)
    assert link.service.snapshot.state is SessionState.SIGNED_OUT
    clean, _report = link.service.last_attestation
    assert clean  # the kiosk clean-up ran: nothing of the session is left on disk
    assert window.login.username.text() == "" and not window.banner.switch_user.isVisible()
    close(qtbot, window)
