"""A main window signed in through its own sign-in form against the real server (the
composition root's wiring, app/ui/workspace_setup.py, included), and awaiting a coroutine
from a synchronous Qt test. The fixture is registered for tests/ui in tests/ui/conftest.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from PySide6.QtCore import Qt

from app.config import Paths, Policy, Settings
from tests.support.clients import create_user, next_totp_code


def run(qtbot, coro, timeout: int = 40_000) -> Any:
    """Await ``coro`` on the test's qasync loop while Qt keeps processing events."""
    future = asyncio.ensure_future(coro)
    qtbot.waitUntil(future.done, timeout=timeout)
    return future.result()


def sign_in_window(qtbot, qapp, server, creds, root, *, policy_problem: str = ""):
    """A shown MainWindow over the data directory ``root``, signed in as ``creds`` through
    its own form (the same directory again: the same workstation after a restart)."""
    from app.main import _build_window

    policy = Policy(server_url=server.url, pinned_ca_pem=server.ca_pem)
    window = _build_window(qapp, policy, policy_problem, Paths.under(root), Settings(),
                           keys_in_memory=True)
    qtbot.addWidget(window)
    window.observe_state()
    window.show()
    code = run(qtbot, next_totp_code(server, creds.username, creds.totp_secret))
    window.login.username.setText(creds.username)
    window.login.password.setText(creds.password)
    window.login.totp.setText(code)
    qtbot.mouseClick(window.login.submit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace, timeout=30_000)
    return window


@pytest.fixture
def signed_in_window(qtbot, qapp, qloop, tmp_path):
    """``open(server, username, role)`` -> a shown MainWindow signed in as a new user."""
    windows = []

    def open_window(server, username: str, role: str, *, policy_problem: str = ""):
        creds = create_user(server, username, role=role)
        window = sign_in_window(qtbot, qapp, server, creds, tmp_path / username,
                                policy_problem=policy_problem)
        windows.append(window)
        return window

    yield open_window
    for window in windows:
        future = asyncio.ensure_future(window.shutdown())
        qtbot.waitUntil(future.done, timeout=10_000)
