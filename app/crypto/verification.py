"""The SAS transactions of one device: routing, bookkeeping, and marking a device verified.

``sas.py`` is one transaction's protocol; this module decides which transaction a message
belongs to, refuses messages from anyone but that transaction's peer, and calls back once
when a transaction ends verified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.crypto.errors import E2EEError, UnknownSenderDevice, VerificationError
from app.crypto.messages import VERIFICATION_CANCEL, VERIFICATION_START, OutgoingToDevice, get_str
from app.crypto.sas import Party, SasState, SasVerification
from app.crypto.store import DeviceRecord

# Finished transactions are kept so a late cancel still finds them; the bound stops a flood
# of starts from growing memory.
MAX_TRANSACTIONS = 32


@dataclass(frozen=True, slots=True)
class VerificationUpdate:
    verification: SasVerification
    outgoing: list[OutgoingToDevice]
    verified_device: DeviceRecord | None = None  # set once, when the transaction verified


class Verifications:
    def __init__(
        self,
        local: Party,
        lookup: Callable[[str, str], DeviceRecord | None],
        mark_verified: Callable[[Party], DeviceRecord],
    ) -> None:
        self._local = local
        self._lookup = lookup
        self._mark_verified = mark_verified
        self._transactions: dict[str, SasVerification] = {}
        self._finished: set[str] = set()

    def start(self, peer: DeviceRecord) -> tuple[SasVerification, OutgoingToDevice]:
        sas, message = SasVerification.start(self._local, _party_of(peer))
        self._remember(sas)
        return sas, message

    def receive(
        self, sender_user: str, sender_device: str, type_: str, content: dict[str, Any],
    ) -> VerificationUpdate:
        if type_ == VERIFICATION_START:
            peer = self._lookup(sender_user, sender_device)
            if peer is None:
                raise UnknownSenderDevice("verification from a device not in our view")
            if get_str(content, "transaction_id", max_len=64) in self._transactions:
                raise VerificationError("verification start replayed")
            sas, accept = SasVerification.accept(self._local, _party_of(peer), content)
            self._remember(sas)
            return VerificationUpdate(sas, [accept])
        sas = self.get(get_str(content, "transaction_id", max_len=64))
        if (sas.peer.user_id, sas.peer.device_id) != (sender_user, sender_device):
            raise VerificationError("verification message from another device")
        try:
            outgoing = sas.receive(type_, content)
        except E2EEError:
            if type_ == VERIFICATION_CANCEL:
                raise
            return VerificationUpdate(sas, [sas.cancellation()])
        return VerificationUpdate(sas, outgoing, self._finish(sas))

    def confirm(self, transaction_id: str) -> VerificationUpdate:
        sas = self.get(transaction_id)
        outgoing = sas.confirm()
        return VerificationUpdate(sas, outgoing, self._finish(sas))

    def cancel(self, transaction_id: str, code: str = "user") -> OutgoingToDevice:
        return self.get(transaction_id).cancel(code)

    def get(self, transaction_id: str) -> SasVerification:
        sas = self._transactions.get(transaction_id)
        if sas is None:
            raise VerificationError("no such verification in progress")
        return sas

    def _finish(self, sas: SasVerification) -> DeviceRecord | None:
        if not sas.verified or sas.transaction_id in self._finished:
            return None
        self._finished.add(sas.transaction_id)
        return self._mark_verified(sas.peer)

    def _remember(self, sas: SasVerification) -> None:
        if len(self._transactions) >= MAX_TRANSACTIONS:
            for txn, old in list(self._transactions.items()):
                if old.state in (SasState.DONE, SasState.CANCELLED):
                    del self._transactions[txn]
                    self._finished.discard(txn)
        if len(self._transactions) >= MAX_TRANSACTIONS:
            oldest = next(iter(self._transactions))
            del self._transactions[oldest]
            self._finished.discard(oldest)
        self._transactions[sas.transaction_id] = sas


def _party_of(record: DeviceRecord) -> Party:
    return Party(record.user_id, record.device_id, record.ed25519)
