"""The shell with the real session service and the real server: enrollment waits for IT's
approval (fingerprint on the sign-in screen), then sign-in opens the workspace.

The login view, the TaskRunner on the qasync loop, SessionLink (app/ui/session_link.py),
SessionService, pinned TLS and server_stub are all real; only the OS keyring is a test double.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt

from app.config import Paths, Policy
from app.security.keystore import KeyringKeyStore
from app.security.testing import InMemoryTestKeyring
from app.services.app_state import AppState, ConnectionState, DeviceState
from app.ui.session_link import SessionLink
from tests.support.clients import create_user, next_totp_code


@pytest.fixture
def link(server, tmp_path):
    keyring = InMemoryTestKeyring()
    state = AppState()
    policy = Policy(server_url=server.url, pinned_ca_pem=server.ca_pem)
    link = SessionLink(state, policy, Paths.under(tmp_path / "client"), keystore_for=(
        lambda user, device_id: KeyringKeyStore.open(user, device_id, backend=keyring,
                                                     allow_test_backend=True)))
    return link


def test_enrol_wait_for_approval_then_sign_in(qtbot, make_window, link, server, qloop):
    creds = create_user(server, "dr.wang", role="consultant")
    window = make_window(state=link._state, sign_in=link.sign_in, on_close=link.aclose)
    window.show()
    state: AppState = link._state

    def submit() -> None:
        code_task = asyncio.ensure_future(
            next_totp_code(server, creds.username, creds.totp_secret))
        qtbot.waitUntil(code_task.done, timeout=40_000)
        login = window.login
        login.username.setText(creds.username)
        login.password.setText(creds.password)
        login.totp.setText(code_task.result())
        qtbot.mouseClick(login.submit, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: login.submit.isEnabled(), timeout=30_000)

    submit()  # first sign-in on this workstation: enrolment, IT must approve
    assert state.device == DeviceState.PENDING
    assert state.user is None and state.connection == ConnectionState.OFFLINE
    assert "waiting for IT's approval" in window.login.error.text()
    fingerprint = window.login.fingerprint.text()
    assert window.login.fingerprint.isVisible() and len(fingerprint.replace(" ", "")) >= 40

    device_id = link.service.snapshot.device_id
    approved = subprocess.run(
        [sys.executable, "-m", "server_stub", "admin", "--data-dir", str(server.data_dir),
         "device", "approve", device_id], capture_output=True, text=True, timeout=60)
    assert approved.returncode == 0, approved.stderr

    submit()  # approved: the workspace opens with the user's role
    assert state.user is not None and state.user.username == "dr.wang"
    assert state.device == DeviceState.ACTIVE and state.connection == ConnectionState.ONLINE
    assert window.pages.currentWidget() is window.workspace
    assert window.workspace.user_label.text() == "Signed in as dr.wang (Consultant)"
    assert window.login.password.text() == "" and window.login.totp.text() == ""

    closing = asyncio.ensure_future(window.shutdown())
    qtbot.waitUntil(closing.done, timeout=10_000)
    closing.result()
    assert link.service.transport is None  # the session let go of its connection


def test_wrong_code_is_told_plainly(qtbot, make_window, link, server):
    creds = create_user(server, "nurse.li", role="nurse")
    window = make_window(state=link._state, sign_in=link.sign_in, on_close=link.aclose)
    window.show()
    login = window.login
    login.username.setText(creds.username)
    login.password.setText(creds.password)
    login.totp.setText("000000")
    qtbot.mouseClick(login.submit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(login.error.isVisible, timeout=30_000)
    assert login.error.text() == "The username, password or authenticator code is not correct."
    assert link._state.user is None
    closing = asyncio.ensure_future(window.shutdown())
    qtbot.waitUntil(closing.done, timeout=10_000)
