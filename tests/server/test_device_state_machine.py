"""Model-based check of the device/session state machine on a real SQLite database:
random sequences of enroll, approve, login, refresh, revoke, wipe, logout orders,
acknowledgements and user disabling, with invariants checked after every step."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from server_stub import admin
from server_stub.core.config import ServerSettings
from server_stub.core.security import new_id
from server_stub.crud import devices as devices_crud
from server_stub.crud import sessions as sessions_crud
from server_stub.crud import users as users_crud
from server_stub.crud.audit import verify_chain

SETTINGS = ServerSettings(data_dir=Path("/nonexistent"))
KEYS = iter(range(10**9))


def _fake_key() -> str:
    # Unique 32-byte-shaped values; signatures are not checked at this layer.
    return f"{next(KEYS):043d}"


class DeviceLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="sc-sm-"))
        self.db = admin.open_database(self.dir)
        self.settings = replace(SETTINGS, data_dir=self.dir)
        self.users = [admin.add_user(self.db, name, "physician", "a long enough password")
                      for name in ("ann", "ben")]
        self.devices: list[str] = []
        self.refresh: dict[str, str] = {}  # session id -> current refresh token
        self.spent: dict[str, str] = {}  # session id -> a spent refresh token
        self.versions = {u.user_id: 0 for u in self.users}
        self.active_sets = {u.user_id: frozenset() for u in self.users}

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _device(self, index: int) -> devices_crud.Device:
        device_id = self.devices[index % len(self.devices)]
        device = devices_crud.get_device(self.db.connection(), device_id)
        assert device is not None
        return device

    @rule(user=st.integers(0, 1), active=st.booleans())
    def enroll(self, user, active):
        with self.db.transaction() as conn:
            device = devices_crud.create_device(
                conn, device_id=new_id(), user_id=self.users[user].user_id, ed25519=_fake_key(),
                curve25519=_fake_key(), display_name="d", enroll_ts_ms=0,
                enroll_signature="s", active=active)
        self.devices.append(device.device_id)

    @precondition(lambda self: self.devices)
    @rule(i=st.integers(0, 50))
    def approve(self, i):
        device = self._device(i)
        try:
            admin.approve_device(self.db, device.device_id)
            assert device.state == "pending"
        except admin.AdminRefused:
            assert device.state != "pending"

    @precondition(lambda self: self.devices)
    @rule(i=st.integers(0, 50))
    def login(self, i):
        device = self._device(i)
        user = users_crud.get_user(self.db.connection(), device.user_id)
        if device.state != "active" or user.disabled:
            return  # the login route refuses before creating a session
        with self.db.transaction() as conn:
            tokens = sessions_crud.start_login_session(
                conn, self.settings, user_id=device.user_id, device_id=device.device_id)
        self.refresh[tokens.session_id] = tokens.refresh_token

    @precondition(lambda self: self.refresh)
    @rule(data=st.data(), reuse=st.booleans())
    def refresh_tokens(self, data, reuse):
        session_id = data.draw(st.sampled_from(sorted(self.refresh)))
        token = self.spent.get(session_id) if reuse else self.refresh[session_id]
        if token is None:
            return
        session = sessions_crud.get_session(self.db.connection(), session_id)
        with self.db.transaction() as conn:
            try:
                issued = sessions_crud.rotate_refresh_token(
                    conn, self.settings, refresh_token=token, device_id=session.device_id)
            except sessions_crud.RefreshRefused as exc:
                assert reuse or session.revoked_ms is not None, exc.code
                if reuse:
                    assert exc.code == "refresh_reused"
                return
        assert not reuse and session.revoked_ms is None
        self.spent[session_id] = token
        self.refresh[session_id] = issued.refresh_token

    @precondition(lambda self: self.devices)
    @rule(i=st.integers(0, 50), wipe=st.booleans())
    def revoke(self, i, wipe):
        device = self._device(i)
        try:
            admin.revoke_device(self.db, device.device_id, wipe=wipe)
        except admin.AdminRefused:
            assert device.state == "wiped"

    @precondition(lambda self: self.devices)
    @rule(i=st.integers(0, 50))
    def order_logout(self, i):
        device = self._device(i)
        try:
            admin.logout_device(self.db, device.device_id)
        except admin.AdminRefused:
            assert device.state in ("revoked", "wiped") or device.pending_order == "wipe"

    @precondition(lambda self: self.devices)
    @rule(i=st.integers(0, 50))
    def acknowledge(self, i):
        device = self._device(i)
        if device.pending_order == "none":
            return
        with self.db.transaction() as conn:
            if device.pending_order == "wipe":
                devices_crud.mark_wiped(conn, device.device_id)
            else:
                devices_crud.clear_order(conn, device.device_id)
            sessions_crud.revoke_device_sessions(conn, device.device_id, "ack")

    @rule(user=st.integers(0, 1))
    def disable(self, user):
        admin.disable_user(self.db, self.users[user].username)

    @invariant()
    def no_live_session_on_an_unusable_device_or_disabled_user(self):
        conn = self.db.connection()
        rows = conn.execute(
            "SELECT d.state, d.pending_order, u.disabled FROM sessions s"
            " JOIN devices d ON d.device_id = s.device_id JOIN users u ON u.id = s.user_id"
            " WHERE s.revoked_ms IS NULL").fetchall()
        for state, order, disabled in rows:
            assert state == "active" and order == "none" and not disabled

    @invariant()
    def orders_match_states(self):
        for device in devices_crud.list_devices(self.db.connection()):
            if device.pending_order == "wipe":
                assert device.state == "revoked" and device.order_id
            if device.state == "wiped":
                assert device.pending_order == "none"
            if device.pending_order == "none":
                assert device.order_id is None or device.state == "revoked"

    @invariant()
    def device_list_version_moves_with_the_active_set(self):
        conn = self.db.connection()
        for user in self.users:
            active = frozenset(d.device_id for d in devices_crud.list_devices(
                conn, user_id=user.user_id, states=("active",)))
            version = users_crud.device_list_version(conn, user.user_id)
            assert version >= self.versions[user.user_id]
            if active != self.active_sets[user.user_id]:
                assert version > self.versions[user.user_id]
            self.versions[user.user_id], self.active_sets[user.user_id] = version, active

    @invariant()
    def audit_chain_holds(self):
        assert verify_chain(self.db.connection()).ok


DeviceLifecycle.TestCase.settings = settings(max_examples=40, stateful_step_count=25,
                                             deadline=None)
test_device_lifecycle = DeviceLifecycle.TestCase
