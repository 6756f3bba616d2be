"""AppState (Qt-free): the events the shell observes. Lives with the UI tests it serves."""

from __future__ import annotations

import subprocess
import sys

from app.core.session import ROLES
from app.services.app_state import (
    ADMIN_ROLES,
    AppState,
    ConnectionState,
    DeviceState,
    SignedInUser,
    is_admin,
)


def test_each_field_emits_on_change_only():
    state = AppState()
    seen: list[tuple[str, object]] = []

    def recorder(name: str):
        return lambda value: seen.append((name, value))

    for name in ("connection", "device", "lock_seconds_left", "user", "policy_problem"):
        getattr(state.events, name).connect(recorder(name))
    user = SignedInUser("u1", "dr.chen", "physician", "d1")
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
    assert ADMIN_ROLES.issubset(ROLES)  # named as the domain names them
    admins = {role for role in ROLES if is_admin(SignedInUser("u", "x", role, "d"))}
    assert admins == {"it_admin", "auditor"}
    assert not is_admin(None)


def test_is_qt_free():
    code = ("import sys, app.services.app_state\n"
            "print(any(m.startswith(('PySide6', 'qasync')) for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "False"
