"""AppState (Qt-free): the events the shell observes. Lives with the UI tests it serves."""

from __future__ import annotations

import subprocess
import sys

from app.services.app_state import (
    AppState,
    ConnectionState,
    DeviceState,
    Role,
    SignedInUser,
)


def test_each_field_emits_on_change_only():
    state = AppState()
    seen: list[tuple[str, object]] = []

    def recorder(name: str):
        return lambda value: seen.append((name, value))

    for name in ("connection", "device", "lock_seconds_left", "user", "policy_problem"):
        getattr(state.events, name).connect(recorder(name))
    user = SignedInUser("dr.chen", Role.CLINICIAN)
    state.connection = ConnectionState.ONLINE
    state.connection = ConnectionState.ONLINE  # unchanged: no event
    state.device = DeviceState.ACTIVE
    state.lock_seconds_left = 300
    state.user = user
    state.policy_problem = "bad signature"
    assert seen == [("connection", ConnectionState.ONLINE), ("device", DeviceState.ACTIVE),
                    ("lock_seconds_left", 300), ("user", user),
                    ("policy_problem", "bad signature")]


def test_admin_roles():
    assert SignedInUser("a", Role.IT_ADMIN).is_admin
    assert SignedInUser("b", Role.AUDITOR).is_admin
    assert not SignedInUser("c", Role.CLINICIAN).is_admin


def test_is_qt_free():
    code = ("import sys, app.services.app_state\n"
            "print(any(m.startswith(('PySide6', 'qasync')) for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "False"
