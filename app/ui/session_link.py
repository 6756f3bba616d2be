"""Connects the session service (app.services.session) to the shell's AppState.

The service is created at the first sign-in, not at start-up: importing it loads the crypto,
cache and network libraries. Its snapshots become ``state.user`` / ``state.locked`` /
``state.device``; the outcome of each sign-in attempt becomes ``state.connection``.

Qt-free on purpose (it lives in ``app.ui`` because it adapts a service to the shell's view
state): the tests drive it with the real service and the real server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from app.config import Paths, Policy

if TYPE_CHECKING:
    from app.core.pin import PinOffer
    from app.security.keystore import KeyStore
    from app.services.app_state import AppState
    from app.services.session import SessionService, SessionSnapshot

KeyStoreFor = Callable[[str, str], "KeyStore"]


class SessionLink:
    def __init__(self, state: AppState, policy: Policy, paths: Paths, *,
                 keystore_for: KeyStoreFor) -> None:
        self._state, self._policy, self._paths = state, policy, paths
        self._keystore_for = keystore_for
        self.service: SessionService | None = None
        self._unlocker = SessionUnlock(self)

    @property
    def state(self) -> AppState:
        return self._state

    def record_series_action(self, action: str, object_id: str,
                             detail: dict | None = None) -> None:
        """The imaging view's audit hook (export, print, snapshot with where it went):
        through the session's one audit call, so the entry is hash-chained, device-signed
        and uploaded like every other."""
        if self.service is not None and self.service.audit is not None:
            self.service.audit.record(action, object_type="series", object_id=object_id,
                                      detail=detail)

    def _service(self) -> SessionService:
        if self.service is None:
            from app.services.session import SessionService

            self.service = SessionService(self._policy, self._paths, self._keystore_for)
            self.service.changed.connect(self._show)
        return self.service

    async def sign_in(self, username: str, password: str, totp: str) -> PinOffer | None:
        """Sign in; returns the set-PIN offer where policy allows a PIN (the sign-in view
        then shows the set-PIN step), else None."""
        from app.core.errors import CertificateNotPinned
        from app.services.app_state import ConnectionState

        service = self._service()
        self._state.connection = ConnectionState.CONNECTING
        try:
            await service.sign_in(username, password, totp)
        except CertificateNotPinned:
            self._state.connection = ConnectionState.CERTIFICATE_ERROR
            raise
        except BaseException:
            # Unreachable, refused (wrong code, pending device...) or cancelled: no session.
            self._state.connection = ConnectionState.OFFLINE
            raise
        self._state.connection = ConnectionState.ONLINE
        service.start_polling()  # logout/wipe orders; they go on while locked
        service.start_push()
        return service.pin_offer()

    def _show(self, snapshot: SessionSnapshot) -> None:
        from app.services.app_state import ConnectionState, DeviceState
        from app.services.session import SessionState

        state = self._state
        if snapshot.state in (SessionState.SIGNED_IN, SessionState.LOCKED):
            state.device, state.device_fingerprint = DeviceState.ACTIVE, ""
            # Locked first, user second: a window that follows ``user`` must never show the
            # workspace of a session that is already locked.
            state.locked = snapshot.state is SessionState.LOCKED
            state.user = snapshot.user
        elif snapshot.state is SessionState.PENDING_APPROVAL:
            state.locked, state.user = False, None
            state.device, state.device_fingerprint = DeviceState.PENDING, snapshot.fingerprint
        else:
            state.locked, state.user = False, None
            state.connection = ConnectionState.OFFLINE
            if snapshot.state is SessionState.WIPED:
                state.device, state.device_fingerprint = DeviceState.WIPED, ""

    # -- lock ------------------------------------------------------------------------------

    def lock(self) -> None:
        """Lock the session (PHI hidden; polling and push go on so a wipe still lands)."""
        if self.service is not None:
            self.service.lock()

    @property
    def unlock(self) -> SessionUnlock:
        """What the lock screen calls: ``await link.unlock(password)``, and the PIN."""
        return self._unlocker

    # -- ending ----------------------------------------------------------------------------

    async def sign_out(self) -> None:
        """Ends the session completely; on a kiosk the service also erases what it left."""
        if self.service is not None:
            await self.service.sign_out()

    async def aclose(self) -> None:
        if self.service is not None:
            if self._policy.kiosk:
                # Logout-on-close: nothing of the session outlives the window.
                with contextlib.suppress(Exception):
                    await self.service.sign_out()
            await self.service.aclose()


class SessionUnlock:
    """The lock screen's port to the session (app.ui.lock_screen.Unlock and PinUnlock).

    Each call returns None when unlocked, else the attempts left before the session ends.
    The last failure signs out (the service does it) and raises ``SignInRefused`` with code
    ``unlock_failed_final``; the window then shows the sign-in screen.
    """

    def __init__(self, link: SessionLink) -> None:
        self._link = link

    async def __call__(self, password: str) -> int | None:
        service = self._link.service
        if service is None:
            return None
        return await self._attempt(service.unlock(password), ("unlock_failed",))

    def pin_offered(self) -> bool:
        service = self._link.service
        return service is not None and service.pin_unlock_offered

    async def unlock_pin(self, pin: str) -> int | None:
        """As ``__call__``; after a wrong PIN ask :meth:`pin_offered` whether the PIN may
        still be used (too many wrong PINs: the password only)."""
        service = self._link.service
        if service is None:
            return None
        return await self._attempt(service.unlock_pin(pin),
                                   ("pin_failed", "pin_dropped", "pin_unavailable"))

    async def _attempt(self, attempt: Awaitable[None], retry_codes: tuple[str, ...]) -> int | None:
        from app.services.session import SignInRefused

        try:
            await attempt
        except SignInRefused as exc:
            service = self._link.service
            if exc.code not in retry_codes or service is None:
                raise
            return max(0, service.policy.max_unlock_failures - service.unlock_failures)
        return None
