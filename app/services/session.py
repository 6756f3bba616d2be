"""Sign-in and device lifecycle: enroll, log in, open the cache, obey logout/wipe orders.

The one place that turns the server's refusal codes into what a clinician reads, without
revealing whether an account exists (docs/protocol.md, "Login").
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import platform
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from psygnal import Signal

from app.config import Paths, Policy
from app.core.errors import SafeConsultError, ServerError
from app.core.pin import PinAttempt, PinGate, PinOffer, PinRefused, PinVerifier, pin_problem
from app.core.session import DeviceState, Order, SignedInUser, Tokens
from app.crypto.identity import DeviceIdentity
from app.crypto.proof import ProofSigner
from app.net import audit_api, auth_api
from app.net.events import Closed, push_frames
from app.net.transport import Transport
from app.security.device_binding import DeviceBindings, KeyStoreFor, LocalDevice
from app.security.kiosk import logout_cleanup
from app.security.wiper import Wiper
from app.services.audit import AuditService, FinalEntries, send_final_entries
from app.services.offline_guard import OfflineGuard
from app.storage.cache import Cache, cache_dir
from app.storage.errors import CacheUnreadable
from app.storage.secrets import SecretRepository

log = logging.getLogger(__name__)

# How often a signed-in session bumps the cache's rollback counter (app/storage/cache.py):
# bounds what a crash-then-restore-an-old-copy can roll back.
CHECKPOINT_INTERVAL_S = 60.0
# How long a remotely wiped device spends sending its last audit entries (after the erase,
# before the acknowledgement): entries not sent by then are a gap the server names.
WIPE_AUDIT_BUDGET_S = 10.0


class SessionState(StrEnum):
    SIGNED_OUT = "signed_out"
    PENDING_APPROVAL = "pending_approval"
    SIGNED_IN = "signed_in"
    LOCKED = "locked"  # signed in, PHI hidden; polling and push go on so a wipe still lands
    WIPED = "wiped"


# A session that is signed in, locked or not: the server connection stays up in both.
LIVE_STATES = (SessionState.SIGNED_IN, SessionState.LOCKED)


class SignInRefused(SafeConsultError):
    """Sign-in did not succeed; ``code`` says why, ``user_message`` says it to a person."""

    def __init__(self, code: str, user_message: str) -> None:
        super().__init__(code, user_message=user_message)
        self.code = code


# Refusal codes -> what the clinician reads. "invalid_credentials" covers unknown users,
# wrong passwords and wrong codes alike, so the screen never says which.
REFUSALS: dict[str, str] = {
    "invalid_credentials": "The username, password or authenticator code is not correct.",
    "account_locked": "Too many failed attempts: this account is locked for a while. "
                      "Try again later or contact IT.",
    "rate_limited": "Too many attempts. Wait a moment, then try again.",
    "account_disabled": "This account is disabled. Contact IT.",
    "device_pending": "This workstation is enrolled and waiting for IT's approval. "
                      "Give IT the device fingerprint shown below.",
    "device_revoked": "IT has revoked this workstation. Its SafeConsult data has been removed.",
    "device_wiped": "This workstation's SafeConsult data was removed on IT's order.",
    "malformed": "Enter a username, a password and the 6-digit authenticator code.",
    "unlock_failed": "The password is not correct.",
    "unlock_failed_final": "Too many failed attempts: you have been signed out.",
}
# Unlocking with a PIN (app/core/pin.py); the lock screen shows its own sentence per code.
PIN_UNLOCK_REFUSALS: dict[str, str] = {
    "pin_failed": "The PIN is not correct.",
    "pin_dropped": "Too many wrong PINs: enter your password.",
    "pin_unavailable": "Enter your password to unlock.",
}


@dataclass(frozen=True)
class SessionSnapshot:
    state: SessionState
    user: SignedInUser | None = None
    device_id: str = ""
    fingerprint: str = ""


def fingerprint(ed25519_b64: str) -> str:
    """The device key in groups of four, for IT to compare by eye or phone."""
    return " ".join(ed25519_b64[i:i + 4] for i in range(0, len(ed25519_b64), 4))


TransportFactory = Callable[[DeviceIdentity], Transport]


class SessionService:
    changed = Signal(object)  # SessionSnapshot

    def __init__(
        self, policy: Policy, paths: Paths, keystore_for: KeyStoreFor, *,
        transport_factory: TransportFactory | None = None, display_name: str = "",
    ) -> None:
        self.policy = policy
        self.paths = paths
        self._keystore_for = keystore_for
        self.bindings = DeviceBindings(paths, keystore_for)
        self._transport_factory = transport_factory or self._default_transport
        self.display_name = display_name or f"SafeConsult on {platform.node() or 'workstation'}"
        self.snapshot = SessionSnapshot(SessionState.SIGNED_OUT)
        self.device: LocalDevice | None = None
        self.transport: Transport | None = None
        self.cache: Cache | None = None
        self.tokens: Tokens | None = None
        self._poller: asyncio.Task | None = None
        self.last_attestation: tuple[bool, bytes] | None = None
        # Unlock checks the password against this, in memory only: no server round trip
        # (works offline) and nothing about the password ever reaches the disk.
        self._unlock_verifier: tuple[bytes, bytes] | None = None
        self.audit: AuditService | None = None
        # Wrong passwords and wrong PINs since the last unlock; the policy's N-th signs out.
        self.unlock_failures = 0
        # The session's unlock PIN, where policy allows one: a memory-hard verifier in memory
        # only, dropped after PIN_MAX_FAILURES wrong PINs (app/core/pin.py).
        self.pin = PinGate()
        self._pusher: asyncio.Task | None = None
        self._checkpointer: asyncio.Task | None = None
        # Lock after policy.offline_grace_s without the server, wipe after offline_wipe_s.
        self.offline_guard = OfflineGuard.from_policy(policy, lock=self._lock_password_only,
                                                      wipe=self._offline_wipe)
        self._offline_wiper: asyncio.Task | None = None
        self._wiping = False
        self.wipe_audit_budget_s = WIPE_AUDIT_BUDGET_S

    def _default_transport(self, identity: DeviceIdentity) -> Transport:
        return Transport(self.policy.server_url, self.policy.pinned_ca_pem,
                         signer=ProofSigner(identity))

    def _publish(self, snapshot: SessionSnapshot) -> None:
        self.snapshot = snapshot
        self.changed.emit(snapshot)

    # -- sign in ---------------------------------------------------------------------------

    async def sign_in(self, username: str, password: str, totp_code: str) -> SignedInUser:
        username = username.strip().lower()
        if not username or not password or not totp_code.strip().isdigit():
            raise SignInRefused("malformed", REFUSALS["malformed"])
        await self._drop_transport()
        device = self.bindings.load(username)
        # Ready before the session is announced: a lock in the first moments after sign-in
        # must find something to unlock against.
        self._unlock_verifier = await asyncio.to_thread(_new_verifier, password)
        self.unlock_failures = 0
        self.pin = PinGate()
        try:
            if device is None:
                return await self._enroll(username, password, totp_code.strip())
            return await self._login(device, password, totp_code.strip())
        except ServerError as exc:
            self._unlock_verifier = None
            await self._refused(username, device, exc)
            raise AssertionError("unreachable") from None
        except BaseException:
            self._unlock_verifier = None
            raise

    async def _enroll(self, username: str, password: str, code: str) -> SignedInUser:
        identity = DeviceIdentity.generate()
        transport = self._transport_factory(identity)
        self.transport = transport
        result = await auth_api.enroll(
            transport, identity, username=username, password=password, totp_code=code,
            display_name=self.display_name,
        )
        device = LocalDevice(username, identity, result.user_id, result.state)
        self.bindings.save(device)
        log.info("device enrolled", extra={"event": "enroll", "device_id": device.device_id,
                                           "state": result.state.value})
        if result.tokens is None:
            self._pending(device)
        self.device = device
        transport.token = result.tokens.access_token
        user = await auth_api.session_info(transport)
        return self._signed_in(device, user, result.tokens)

    async def _login(self, device: LocalDevice, password: str, code: str) -> SignedInUser:
        transport = self._transport_factory(device.identity)
        self.transport = transport
        self.device = device
        user, tokens = await auth_api.login(
            transport, username=device.username, password=password, totp_code=code,
        )
        transport.token = tokens.access_token
        if device.state is not DeviceState.ACTIVE:
            device.state = DeviceState.ACTIVE
            self.bindings.save(device)
        return self._signed_in(device, user, tokens)

    async def _refresh(self) -> str:
        """Rotate the token pair (the transport calls this when the access token expired)."""
        if self.tokens is None or self.transport is None or self.device is None:
            raise SignInRefused("unauthenticated", "Your session has ended. Sign in again.")
        tokens = await auth_api.refresh(self.transport, self.tokens.refresh_token)
        self.tokens = tokens
        self._keystore_for(self.device.username, self.device.device_id).set_token(
            tokens.refresh_token)
        return tokens.access_token

    def _pending(self, device: LocalDevice) -> None:
        self._publish(SessionSnapshot(SessionState.PENDING_APPROVAL, None, device.device_id,
                                      fingerprint(device.identity.ed25519)))
        raise SignInRefused("device_pending", REFUSALS["device_pending"])

    def _signed_in(self, device: LocalDevice, user: SignedInUser, tokens: Tokens) -> SignedInUser:
        store = self._keystore_for(device.username, device.device_id)
        store.set_token(tokens.refresh_token)
        self.tokens = tokens
        if self.transport is not None:
            self.transport.refresher = self._refresh
        self.cache, rebuilt_because = self._open_cache(user, device)
        self.audit = AuditService(self.cache, device.identity.sign, device_id=device.device_id,
                                  transport=self.transport,
                                  on_contact=self.offline_guard.note_contact)
        self.audit.start()
        if rebuilt_because:
            self.audit.record("cache.rebuilt", object_type="device", object_id=device.device_id,
                              outcome="failed", detail={"reason": rebuilt_because})
        self.offline_guard.attach(SecretRepository(self.cache))
        self.offline_guard.note_contact()
        self._checkpointer = asyncio.get_running_loop().create_task(self._checkpoint_loop())
        self._publish(SessionSnapshot(SessionState.SIGNED_IN, user, device.device_id,
                                      fingerprint(device.identity.ed25519)))
        log.info("signed in", extra={"event": "login", "device_id": device.device_id})
        return user

    def _open_cache(self, user: SignedInUser, device: LocalDevice) -> tuple[Cache, str]:
        """The open cache, and why it had to be rebuilt ("" when it opened as it was)."""
        directory = cache_dir(self.paths.data, user.user_id, device.device_id)
        store = self._keystore_for(device.username, device.device_id)
        memory_security = self.policy.cache_memory_security
        try:
            return Cache.open(directory, store, memory_security=memory_security), ""
        except CacheUnreadable as exc:
            # Recovery path: the server holds everything the cache held (ciphertext).
            log.warning("cache rebuilt", extra={"event": "cache_rebuilt",
                                                "reason_code": exc.__class__.__name__})
            rebuilt = Cache.rebuild(directory, store, memory_security=memory_security)
            return rebuilt, exc.__class__.__name__

    async def _refused(self, username: str, device: LocalDevice | None, exc: ServerError) -> None:
        code = exc.code
        log.info("sign-in refused", extra={"event": "login_refused", "reason_code": code})
        if code == "device_pending" and device is not None:
            self._pending(device)
        if code == "device_revoked" and device is not None:
            # Signed out when IT ordered the wipe: carry the order out as the poll would,
            # with the audit chain left in the cache from earlier sessions.
            order_id = await self._pending_wipe_order()
            if order_id is not None:
                self._open_chain_for_wipe(device)
            await self.wipe(reason="remote" if order_id else "revoked",
                            acknowledge=order_id is not None, order_id=order_id)
            raise SignInRefused(code, REFUSALS[code])
        if code == "device_unknown" and device is not None:
            # The server no longer knows this device (e.g. it was deleted): drop the local
            # binding so the next sign-in enrolls afresh.
            self.bindings.forget(username)
            raise SignInRefused(code, "This workstation is not known to the server. "
                                      "Sign in again to enroll it.")
        if code in REFUSALS:
            raise SignInRefused(code, REFUSALS[code])
        raise exc

    # -- lock ------------------------------------------------------------------------------

    def lock(self) -> None:
        """Hide PHI until the user proves it is still them (idle, OS lock, suspend)."""
        if self.snapshot.state is SessionState.SIGNED_IN:
            self._publish(replace(self.snapshot, state=SessionState.LOCKED))
            self._record("session.lock")
            log.info("session locked", extra={"event": "lock"})

    def _lock_password_only(self) -> None:
        """The offline guard's lock: a device that has not seen the server for hours is
        unlocked by the password only, not by the PIN."""
        self.pin.password_only = True
        self.lock()

    async def unlock(self, password: str) -> None:
        """Unlock with the sign-in password; the policy's N-th failure ends the session."""
        if self.snapshot.state is not SessionState.LOCKED or self._unlock_verifier is None:
            return
        salt, expected = self._unlock_verifier
        actual = await asyncio.to_thread(_derive, password, salt)
        if self.snapshot.state is not SessionState.LOCKED:
            return  # signed out, wiped or unlocked while the key was derived
        if hmac.compare_digest(actual, expected):
            self._unlocked("password")
            return
        await self._unlock_refused("password")
        raise SignInRefused("unlock_failed", REFUSALS["unlock_failed"])

    # -- PIN -------------------------------------------------------------------------------

    def pin_offer(self) -> PinOffer | None:
        """The set-PIN step after sign-in, where policy allows a PIN (None: no such step)."""
        if (self.policy.allow_pin_unlock and self.snapshot.state is SessionState.SIGNED_IN
                and not self.pin.is_set and self.pin.failures == 0):
            return PinOffer(self.policy.pin_min_length, self.set_pin)
        return None

    async def set_pin(self, pin: str) -> None:
        """Set the session's unlock PIN (signed in and unlocked only). Raises
        :class:`PinRefused` for a PIN the policy or the rules refuse."""
        if not self.policy.allow_pin_unlock:
            raise PinRefused("pin_not_allowed")
        if self.snapshot.state is not SessionState.SIGNED_IN \
                or self.pin.failures >= self.pin.max_failures:
            raise PinRefused("pin_unavailable")
        problem = pin_problem(pin, self.policy.pin_min_length)
        if problem is not None:
            raise PinRefused(problem)
        verifier = await asyncio.to_thread(PinVerifier.create, pin)
        if self.snapshot.state is not SessionState.SIGNED_IN:
            raise PinRefused("pin_unavailable")  # locked or signed out meanwhile
        self.pin.set(verifier)
        self._record("session.pin_set")
        log.info("unlock PIN set", extra={"event": "pin_set"})

    @property
    def pin_unlock_offered(self) -> bool:
        """A PIN may unlock this session's lock -- the current one, or the one being shown
        (the window prepares the lock screen before the service publishes LOCKED): set,
        not dropped, not a password-only lock, and policy allows it."""
        return (self.policy.allow_pin_unlock and self.snapshot.state in LIVE_STATES
                and self.pin.offered)

    async def unlock_pin(self, pin: str) -> None:
        """Unlock with the session's PIN, without a server round trip (like the password).

        A wrong PIN counts as a failed unlock (the policy's N-th ends the session) and towards
        PIN_MAX_FAILURES, after which only the password unlocks: ``SignInRefused`` with code
        ``pin_failed``, ``pin_dropped`` or ``unlock_failed_final``; ``pin_unavailable`` when
        no PIN may unlock this lock.
        """
        if self.snapshot.state is not SessionState.LOCKED:
            return
        gate, verifier = self.pin, self.pin.verifier
        if not self.pin_unlock_offered or verifier is None:
            raise SignInRefused("pin_unavailable", PIN_UNLOCK_REFUSALS["pin_unavailable"])
        matched = await asyncio.to_thread(verifier.matches, pin)
        if self.snapshot.state is not SessionState.LOCKED:
            return
        if gate is not self.pin or gate.verifier is not verifier or not gate.offered:
            # Dropped, replaced or made password-only while the key was derived.
            raise SignInRefused("pin_unavailable", PIN_UNLOCK_REFUSALS["pin_unavailable"])
        attempt = gate.record(matched)
        if attempt is PinAttempt.UNLOCKED:
            self._unlocked("pin")
            return
        await self._unlock_refused("pin", pin_dropped=attempt is PinAttempt.WRONG_PIN_DROPPED)
        code = "pin_dropped" if attempt is PinAttempt.WRONG_PIN_DROPPED else "pin_failed"
        raise SignInRefused(code, PIN_UNLOCK_REFUSALS[code])

    # -- unlock outcomes -------------------------------------------------------------------

    def _unlocked(self, method: str) -> None:
        self.unlock_failures = 0
        if method == "password":
            self.pin.password_only = False
        self._record("session.unlock", detail={"method": method})
        self._publish(replace(self.snapshot, state=SessionState.SIGNED_IN))
        log.info("session unlocked", extra={"event": "unlock", "method": method})

    async def _unlock_refused(self, method: str, *, pin_dropped: bool = False) -> None:
        """Count, audit and log one failed unlock; the policy's N-th signs out (and raises)."""
        self.unlock_failures += 1
        detail: dict[str, str | int | bool] = {"method": method, "attempt": self.unlock_failures}
        if pin_dropped:
            detail["pin_dropped"] = True
        self._record("session.unlock", outcome="refused", detail=detail)
        log.info("unlock refused", extra={"event": "unlock_refused", "method": method,
                                          "attempt": self.unlock_failures})
        if self.unlock_failures >= self.policy.max_unlock_failures:
            await self.sign_out()
            raise SignInRefused("unlock_failed_final", REFUSALS["unlock_failed_final"])

    def _record(self, action: str, **fields) -> None:
        """The session's own audit entries (the device id is the object)."""
        if self.audit is not None and self.device is not None and self.cache is not None:
            self.audit.record(action, object_type="device", object_id=self.device.device_id,
                              **fields)

    # -- orders and sign-out -----------------------------------------------------------------

    async def poll_status(self) -> None:
        """Ask the server for orders (the policy's interval; also called on push)."""
        if self.transport is None or self.device is None:
            return
        status = await auth_api.device_status(self.transport)
        self.offline_guard.note_contact()
        if self.audit is not None:
            self.audit.kick()  # the server answers: entries queued while offline go now
        if status.state is DeviceState.REVOKED or status.order is Order.WIPE:
            ordered = status.order is Order.WIPE
            await self.wipe(reason="remote" if ordered else "revoked", acknowledge=ordered,
                            order_id=status.order_id if ordered else None)
        elif status.order is Order.LOGOUT:
            if status.order_id:
                with contextlib.suppress(SafeConsultError):
                    await auth_api.acknowledge_order(self.transport, self.device.identity,
                                                     Order.LOGOUT, status.order_id)
            await self.sign_out(tell_server=False)

    def start_polling(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll_loop())

    async def _poll_loop(self) -> None:
        while self.snapshot.state in (*LIVE_STATES, SessionState.PENDING_APPROVAL):
            await asyncio.sleep(self.policy.wipe_poll_interval_s)
            try:
                await self.poll_status()
            except SafeConsultError as exc:
                log.info("status poll failed", extra={"event": "poll_failed",
                                                      "reason_code": exc.__class__.__name__})
                self.offline_guard.check()

    def start_push(self) -> None:
        """Listen on the push socket; an order or a server-side close triggers a status
        check at once, so a wipe arrives in about a second instead of a poll interval."""
        if self._pusher is None or self._pusher.done():
            self._pusher = asyncio.get_running_loop().create_task(self._push_loop())

    async def _push_loop(self) -> None:
        backoff = 1.0
        while self.snapshot.state in LIVE_STATES and self.transport is not None:
            try:
                frames = push_frames(self.transport)
                try:
                    async for frame in frames:
                        backoff = 1.0
                        self.offline_guard.note_contact()
                        if isinstance(frame, Closed) or frame.get("type") == "order":
                            await self.poll_status()
                            if self.snapshot.state not in LIVE_STATES:
                                return
                finally:
                    await frames.aclose()  # close the socket here, not in the GC
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the listener must outlive any one bad connection
                log.info("push connection lost", extra={"event": "push_lost",
                                                        "reason_code": exc.__class__.__name__})
            # Whatever ended the connection, ask for orders now (the socket may have been
            # refused because the device was revoked), then reconnect with backoff.
            with contextlib.suppress(SafeConsultError):
                await self.poll_status()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def sign_out(self, *, tell_server: bool = True) -> None:
        if self.device is not None:
            self._keystore_for(self.device.username, self.device.device_id).set_token(None)
        await self._close_cache()
        if self.policy.kiosk:
            # Shared device: nothing of this session may remain. Erase, check, and leave a
            # signed attestation in the audit while the session can still write to it.
            await self._kiosk_attest(tell_server)
        if tell_server and self.transport is not None and self.tokens is not None:
            with contextlib.suppress(SafeConsultError):
                await auth_api.logout(self.transport)
        await self._drop_transport()
        self.tokens = None
        self._unlock_verifier = None
        self.pin.clear()
        self._publish(SessionSnapshot(SessionState.SIGNED_OUT))

    async def _kiosk_attest(self, tell_server: bool) -> None:
        device_id = self.device.device_id if self.device is not None else ""
        clean, report = logout_cleanup(self.paths, device_id=device_id)
        self.last_attestation = (clean, report)
        log.info("kiosk data removed", extra={"event": "kiosk_attest",
                                              "state": "clean" if clean else "left_over"})
        if not (tell_server and self.device and self.transport and self.tokens):
            return
        # Not through AuditService: its log lived in the cache just erased. The attestation
        # is signed by the device key instead, so it stands on its own.
        fields = json.loads(report)
        detail = {k: fields[k] for k in ("clean", "files", "bytes", "plaintext_databases",
                                         "listing_sha256", "checked_ms")}
        detail["signature"] = self.device.identity.sign(report)
        with contextlib.suppress(SafeConsultError):
            await audit_api.record_client_event(
                self.transport, "kiosk.attest", object_type="device", object_id=device_id,
                outcome="ok" if clean else "failed", detail=detail)

    async def wipe(self, *, reason: str, acknowledge: bool, order_id: str | None = None) -> None:
        """Crypto-erase this device's data; then tell the server, signed with the identity
        still in memory (its keys are gone from disk by then).

        The audit chain ends with one ``wipe.local`` entry (the reason; the order's id). Its
        queue is taken out of the cache before the erase; after it, for a wipe order, what
        the server does not have yet is sent (for at most ``wipe_audit_budget_s``) and the
        acknowledgement carries the chain's final head, so anything still missing is a gap
        the server names (docs/protocol.md, "Device status and orders")."""
        if self._wiping:
            return  # the poll and the push both saw the order: one wipe
        self._wiping = True
        try:
            await self._wipe(reason, acknowledge, order_id)
        finally:
            self._wiping = False

    async def _wipe(self, reason: str, acknowledge: bool, order_id: str | None) -> None:
        device = self.device
        final: FinalEntries | None = None
        if self.audit is not None and self.cache is not None and self.cache.conn is not None:
            detail: dict[str, str | int | bool] = {"reason": reason}
            if order_id:
                detail["order_id"] = order_id
            try:
                self._record("wipe.local", detail=detail)
                final = await self.audit.take_for_wipe()
            except SafeConsultError as exc:  # the log is unreadable: the head is unknown
                log.warning("audit log unreadable at wipe", extra={
                    "event": "wipe", "reason_code": exc.__class__.__name__})
        await self._close_cache()
        owners = [(device.username, device.device_id)] if device is not None else []
        started = time.monotonic()
        report = Wiper(self.paths, self._keystore_for).wipe(reason, owners)
        log.warning("device wiped", extra={"event": "wipe", "state": reason,
                                           "duration_ms": int((time.monotonic() - started) * 1000)})
        if acknowledge and order_id and device is not None and self.transport is not None:
            if final is not None and final.entries:
                await send_final_entries(self.transport, final.entries,
                                         budget_s=self.wipe_audit_budget_s)
            with contextlib.suppress(SafeConsultError):
                await auth_api.acknowledge_wipe(self.transport, device.identity, order_id,
                                                final.head if final is not None else None)
        await self._drop_transport()
        self.device, self.tokens, self._unlock_verifier = None, None, None
        self.pin.clear()
        self._publish(SessionSnapshot(SessionState.WIPED))
        if not report.complete:
            log.error("wipe incomplete", extra={"event": "wipe", "state": "incomplete"})

    async def _pending_wipe_order(self) -> str | None:
        """The id of a wipe order pending for this device (asked with its proof alone)."""
        if self.transport is None:
            return None
        try:
            status = await auth_api.device_status(self.transport)
        except SafeConsultError:
            return None
        return status.order_id if status.order is Order.WIPE else None

    def _open_chain_for_wipe(self, device: LocalDevice) -> None:
        """Open the cache (not the session) so a wipe ordered while signed out still records
        ``wipe.local`` and sends the entries earlier sessions left queued. A cache that does
        not open is wiped all the same (the acknowledgement then says the head is unknown)."""
        directory = cache_dir(self.paths.data, device.user_id, device.device_id)
        if not directory.exists():
            return
        try:
            store = self._keystore_for(device.username, device.device_id)
            cache = Cache.open(directory, store,
                               memory_security=self.policy.cache_memory_security)
        except SafeConsultError as exc:
            log.warning("audit log unreadable at wipe", extra={
                "event": "wipe", "reason_code": exc.__class__.__name__})
            return
        self.cache = cache
        self.audit = AuditService(cache, device.identity.sign, device_id=device.device_id,
                                  transport=self.transport)

    def _offline_wipe(self) -> None:
        # Called from the poll loop, which the wipe cancels: the wipe runs as its own task.
        self._offline_wiper = asyncio.get_running_loop().create_task(
            self.wipe(reason="offline", acknowledge=False))

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            if self.cache is None:
                return
            try:
                self.cache.checkpoint()
            except SafeConsultError as exc:  # busy or disk full: try again next time
                log.warning("cache checkpoint failed", extra={
                    "event": "cache_checkpoint", "reason_code": exc.__class__.__name__})

    async def _close_cache(self) -> None:
        if self.audit is not None:
            # Queued entries stay in the cache and go out after the next sign-in.
            await self.audit.aclose()
            self.audit = None
        if self.cache is not None:
            self.offline_guard.detach()
            self.cache.close()
            self.cache = None

    async def _drop_transport(self) -> None:
        for name in ("_poller", "_pusher", "_checkpointer"):
            task = getattr(self, name)
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                setattr(self, name, None)
        if self.transport is not None:
            await self.transport.aclose()
            self.transport = None

    async def aclose(self) -> None:
        await self._close_cache()
        await self._drop_transport()


def _derive(password: str, salt: bytes) -> bytes:
    # scrypt from the standard library: memory-hard, ~50 ms, so a stolen memory image
    # does not give the password away cheaply.
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


def _new_verifier(password: str) -> tuple[bytes, bytes]:
    salt = secrets.token_bytes(16)
    return salt, _derive(password, salt)
