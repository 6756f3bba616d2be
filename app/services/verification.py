"""Device verification (SAS) between two people's devices, over the chat service's to-device
channel (docs/e2ee.md, "Device verification in the app").

The protocol is ``app.crypto.sas``; the machine's :class:`~app.crypto.verification.Verifications`
route its messages. This service adds what a person needs around it:

* an incoming request waits for its user to **accept** (the chat service holds the accept
  message back until then) or decline;
* both sides see the same seven emoji (or three numbers) and say whether they match:
  ``confirm`` sends our MAC, ``mismatch`` cancels (and the other side is told why);
* a transaction that is not finished after ``timeout_s`` is cancelled (``timeout``);
* the outcome -- verified, codes did not match, cancelled, timed out -- is recorded with the
  one audit call (``device.verify``), as are a user's accept/block decisions on a flagged
  device. The verified trust itself is persisted in the crypto store by the machine, in the
  same cache transaction as the MAC that completed it.

Async and Qt-free; the view observes :attr:`changed` and :attr:`requested`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from psygnal import Signal

from app.core.errors import SafeConsultError
from app.crypto.sas import SasState, SasVerification
from app.crypto.verification import VerificationUpdate

if TYPE_CHECKING:
    from app.crypto.machine import CryptoMachine
    from app.crypto.messages import OutgoingToDevice
    from app.services.audit import AuditService
    from app.services.chat import ChatService

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0  # five minutes to compare codes; then the transaction is cancelled


class Phase(StrEnum):
    REQUESTED = "requested"  # incoming: waiting for our user to accept or decline
    WAITING = "waiting"  # waiting for the other device (accept, keys)
    SHOWING = "showing"  # codes known: the users compare them
    CONFIRMED = "confirmed"  # our user said they match; waiting for the other side's MAC
    VERIFIED = "verified"
    CANCELLED = "cancelled"


FINISHED = (Phase.VERIFIED, Phase.CANCELLED)


@dataclass(frozen=True, slots=True)
class VerificationStatus:
    """One verification as the user should see it. No secrets: emoji and numbers are
    meant to be read aloud."""

    transaction_id: str
    user_id: str
    username: str
    device_id: str
    ed25519: str
    incoming: bool
    phase: Phase
    emoji: tuple[tuple[str, str], ...] = ()
    decimals: tuple[int, int, int] | None = None
    # Why it was cancelled: "user", "mismatch", "timeout", a protocol code; ``by_peer``
    # when the other side ended it.
    reason: str | None = None
    by_peer: bool = False

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED


class VerificationService:
    changed = Signal(object)  # VerificationStatus, after every step of any transaction
    requested = Signal(object)  # VerificationStatus: another device asks to verify with us

    def __init__(self, chat: ChatService, *, audit: AuditService | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._chat = chat
        self._audit = audit
        self.timeout_s = timeout_s
        self._statuses: dict[str, VerificationStatus] = {}
        self._transactions: dict[str, SasVerification] = {}
        self._held: dict[str, list[OutgoingToDevice]] = {}  # accepts awaiting our user
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        chat.to_device.connect(self._on_to_device)

    # -- queries ---------------------------------------------------------------------------

    def status(self, transaction_id: str) -> VerificationStatus:
        return self._statuses[transaction_id]

    def active(self) -> list[VerificationStatus]:
        return [s for s in self._statuses.values() if not s.finished]

    # -- the user's actions ----------------------------------------------------------------

    async def start(self, user_id: str, device_id: str) -> VerificationStatus:
        """Ask ``user_id``'s device ``device_id`` to verify with this one."""
        def step(machine: CryptoMachine) -> tuple[SasVerification, list[OutgoingToDevice]]:
            sas, message = machine.start_verification(user_id, device_id)
            return sas, [message]

        sas = await self._chat.verification_step(step)
        self._arm_timer(sas.transaction_id)
        return self._publish(sas, incoming=False)

    async def accept(self, transaction_id: str) -> VerificationStatus:
        """Our user agreed to an incoming request: send the accept held back until now."""
        held = self._held.pop(transaction_id, None)
        if held is None:
            raise SafeConsultError("no verification request to accept",
                                   user_message="This verification request has ended.")
        sas = self._sas(transaction_id)
        await self._chat.verification_step(lambda _m: (None, held))
        return self._publish(sas, incoming=True)

    async def confirm(self, transaction_id: str) -> VerificationStatus:
        """Our user compared the codes and they match."""
        update = await self._chat.verification_step(
            lambda m: self._with_outgoing(m.confirm_verification(transaction_id)))
        return self._handle(update)

    async def mismatch(self, transaction_id: str) -> VerificationStatus:
        """Our user says the codes differ: someone may be in between. Cancel, nothing trusted."""
        return await self.cancel(transaction_id, "mismatch")

    async def cancel(self, transaction_id: str, code: str = "user") -> VerificationStatus:
        """Decline a request, or stop a verification in progress."""
        self._held.pop(transaction_id, None)
        sas = self._sas(transaction_id)
        if sas.state in (SasState.DONE, SasState.CANCELLED):
            return self._statuses[transaction_id]
        await self._chat.verification_step(
            lambda m: (None, [m.cancel_verification(transaction_id, code)]))
        return self._publish(sas, incoming=self._incoming(transaction_id))

    def accept_device(self, user_id: str, device_id: str, ed25519: str) -> None:
        """Trust a flagged device without SAS, after its fingerprint was shown (audited)."""
        self._chat.accept_device(user_id, device_id, ed25519)
        self._record(device_id, user_id, "ok", "accepted")

    def block_device(self, user_id: str, device_id: str) -> None:
        """Never send keys to this device again (audited)."""
        self._chat.block_device(user_id, device_id)
        self._record(device_id, user_id, "refused", "blocked")

    def close(self) -> None:
        self._chat.to_device.disconnect(self._on_to_device)
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()

    # -- incoming --------------------------------------------------------------------------

    def _on_to_device(self, item: Any) -> None:
        if not isinstance(item, VerificationUpdate):
            return
        sas = item.verification
        txn = sas.transaction_id
        if txn not in self._statuses and not sas.starter and sas.state is SasState.ACCEPTED:
            self._held[txn] = list(item.outgoing)
            self._arm_timer(txn)
            status = self._publish(sas, incoming=True)
            log.info("verification requested", extra={"event": "verification_requested"})
            self.requested.emit(status)
            return
        if txn not in self._statuses:
            return  # a transaction of another process's lifetime (they are in memory only)
        self._handle(item)

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _with_outgoing(update: VerificationUpdate) -> tuple[VerificationUpdate,
                                                            list[OutgoingToDevice]]:
        return update, list(update.outgoing)

    def _handle(self, update: VerificationUpdate) -> VerificationStatus:
        sas = update.verification
        return self._publish(sas, incoming=self._incoming(sas.transaction_id),
                             verified=update.verified_device is not None)

    def _incoming(self, transaction_id: str) -> bool:
        known = self._statuses.get(transaction_id)
        return known.incoming if known is not None else False

    def _sas(self, transaction_id: str) -> SasVerification:
        sas = self._transactions.get(transaction_id)
        if sas is None:
            raise SafeConsultError("unknown verification",
                                   user_message="This verification has ended.")
        return sas

    def _publish(self, sas: SasVerification, *, incoming: bool,
                 verified: bool = False) -> VerificationStatus:
        txn = sas.transaction_id
        self._transactions[txn] = sas
        before = self._statuses.get(txn)
        phase = _phase(sas, held=txn in self._held)
        emoji: tuple[tuple[str, str], ...] = ()
        decimals = None
        if phase in (Phase.SHOWING, Phase.CONFIRMED, Phase.VERIFIED):
            emoji, decimals = tuple(sas.emoji), sas.decimals
        by_peer = sas.cancel_code == "remote"
        reason = (sas.remote_code or "user") if by_peer else sas.cancel_code
        status = VerificationStatus(
            txn, sas.peer.user_id, self._chat.username(sas.peer.user_id) or sas.peer.user_id,
            sas.peer.device_id, sas.peer.ed25519, incoming, phase, emoji, decimals,
            reason if phase is Phase.CANCELLED else None, by_peer)
        self._statuses[txn] = status
        if status.finished and (before is None or not before.finished):
            self._finished(status, verified=verified)
        if status != before:
            self.changed.emit(status)
        return status

    def _finished(self, status: VerificationStatus, *, verified: bool) -> None:
        self._held.pop(status.transaction_id, None)
        handle = self._timers.pop(status.transaction_id, None)
        if handle is not None:
            handle.cancel()
        if status.phase is Phase.VERIFIED:
            if verified:
                self._record(status.device_id, status.user_id, "ok", "verified")
            return
        outcome = "refused" if status.reason in ("mismatch", "key_mismatch",
                                                 "commitment_mismatch") else "failed"
        result = ("peer_" if status.by_peer else "") + (status.reason or "user")
        self._record(status.device_id, status.user_id, outcome, result[:64])
        log.info("verification ended", extra={"event": "verification_ended",
                                               "reason_code": result})

    def _record(self, device_id: str, user_id: str, outcome: str, result: str) -> None:
        if self._audit is None:
            return
        try:
            self._audit.record("device.verify", object_type="device", object_id=device_id,
                               outcome=outcome, detail={"user_id": user_id, "result": result})
        except SafeConsultError as exc:  # signed out meanwhile: nothing to append to
            log.warning("verification not audited", extra={
                "event": "verification_audit_failed", "reason_code": exc.__class__.__name__})

    def _arm_timer(self, transaction_id: str) -> None:
        loop = asyncio.get_running_loop()
        self._timers[transaction_id] = loop.call_later(self.timeout_s, self._expire,
                                                       transaction_id)

    def _expire(self, transaction_id: str) -> None:
        self._timers.pop(transaction_id, None)
        status = self._statuses.get(transaction_id)
        if status is None or status.finished:
            return

        async def run() -> None:
            with contextlib.suppress(SafeConsultError):
                await self.cancel(transaction_id, "timeout")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _phase(sas: SasVerification, *, held: bool) -> Phase:
    state = sas.state
    if state is SasState.DONE:
        return Phase.VERIFIED
    if state is SasState.CANCELLED:
        return Phase.CANCELLED
    if state is SasState.SHOWING:
        return Phase.SHOWING
    if state is SasState.CONFIRMED:
        return Phase.CONFIRMED
    if state is SasState.ACCEPTED and held:
        return Phase.REQUESTED
    return Phase.WAITING
