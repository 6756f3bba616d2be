"""Device verification (SAS) end to end: two real clients (own device identities, caches and
keyrings) through the real relay, each with a VerificationService over its ChatService.

Steps are driven one sync at a time so each assertion follows a known order of messages.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from app.core.errors import SafeConsultError
from app.crypto.store import TrustLevel
from app.services.chat import ChatService
from app.services.verification import Phase, VerificationService
from tests.integration.test_chat import Client, new_client, room_with
from tests.support.clients import server_db


class Party:
    def __init__(self, client: Client, *, timeout_s: float = 300.0) -> None:
        self.client = client
        self.chat = client.chat
        self.verify = VerificationService(client.chat, audit=client.ws.session.audit,
                                          timeout_s=timeout_s)
        self.requests: list = []
        self.updates: list = []
        self.verify.requested.connect(self.requests.append)
        self.verify.changed.connect(self.updates.append)

    @property
    def device_id(self) -> str:
        return self.client.ws.session.device.device_id

    def trust_of(self, other: Party):
        return {r.device_id: r.trust for r in self.chat.devices(other.client.user_id)}[
            other.device_id]

    async def close(self) -> None:
        self.verify.close()
        await self.client.close()


async def pair(open_server, tmp_path, a: str, b: str, *, share_room: bool = True,
               timeout_s: float = 300.0) -> tuple[Party, Party]:
    alice = Party(await new_client(open_server, tmp_path, a), timeout_s=timeout_s)
    bob = Party(await new_client(open_server, tmp_path, b), timeout_s=timeout_s)
    if share_room:
        await room_with(alice.client, bob.client)
    return alice, bob


async def start_and_show(alice: Party, bob: Party):
    """Alice asks, bob accepts, keys cross: both show codes. Returns both statuses."""
    started = await alice.verify.start(bob.client.user_id, bob.device_id)
    assert started.phase is Phase.WAITING and not started.incoming
    await bob.chat.sync_once()
    assert [r.phase for r in bob.requests] == [Phase.REQUESTED]
    request = bob.requests[0]
    assert request.transaction_id == started.transaction_id
    assert (request.user_id, request.device_id) == (alice.client.user_id, alice.device_id)
    assert request.incoming
    await bob.verify.accept(request.transaction_id)
    await alice.chat.sync_once()  # accept -> alice sends her key
    await bob.chat.sync_once()  # key -> bob sends his, shows codes
    await alice.chat.sync_once()  # key -> alice shows codes
    txn = started.transaction_id
    return alice.verify.status(txn), bob.verify.status(txn)


def audit_rows(server, device_id: str) -> list[tuple[str, str, dict]]:
    rows = server_db(server).connection().execute(
        "SELECT object_id, outcome, detail FROM audit_log WHERE action = 'client.device.verify'"
        " AND device_id = ? ORDER BY seq", (device_id,)).fetchall()
    return [(r[0], r[1], {k: v for k, v in json.loads(r[2]).items()
                          if k in ("user_id", "result")}) for r in rows]


async def flush_audit(party: Party) -> None:
    """Upload the device's audit queue; a pass that failed (a busy machine) is retried."""
    audit = party.client.ws.session.audit
    for _ in range(50):
        await audit.flush()
        if not audit.pending:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"audit entries not uploaded ({audit.last_error})")


async def test_both_sides_see_the_same_emoji_and_the_devices_become_verified(
    open_server, tmp_path,
):
    alice, bob = await pair(open_server, tmp_path, "dr.vera1", "dr.ben1")
    try:
        assert alice.trust_of(bob) is TrustLevel.TOFU
        a, b = await start_and_show(alice, bob)
        assert a.phase is b.phase is Phase.SHOWING
        assert len(a.emoji) == 7 and a.emoji == b.emoji
        assert a.decimals == b.decimals and all(1000 <= d <= 9191 for d in a.decimals)

        confirmed = await alice.verify.confirm(a.transaction_id)
        assert confirmed.phase is Phase.CONFIRMED  # waiting for bob's check
        await bob.chat.sync_once()  # alice's MAC: bob still has to compare himself
        assert bob.verify.status(a.transaction_id).phase is Phase.SHOWING
        assert bob.trust_of(alice) is TrustLevel.TOFU
        done = await bob.verify.confirm(a.transaction_id)
        assert done.phase is Phase.VERIFIED
        await alice.chat.sync_once()
        assert alice.verify.status(a.transaction_id).phase is Phase.VERIFIED
        assert alice.trust_of(bob) is TrustLevel.VERIFIED
        assert bob.trust_of(alice) is TrustLevel.VERIFIED

        # Persisted in the crypto store: a new chat service on the same cache still knows.
        await bob.chat.stop()
        reopened = ChatService(bob.client.ws.session)
        assert {r.device_id: r.trust for r in reopened.devices(alice.client.user_id)}[
            alice.device_id] is TrustLevel.VERIFIED
        bob.client.chat = reopened

        for party, other in ((alice, bob), (bob, alice)):
            await flush_audit(party)
            assert audit_rows(open_server, party.device_id) == [
                (other.device_id, "ok", {"user_id": other.client.user_id,
                                         "result": "verified"})]
    finally:
        await alice.close()
        await bob.close()


async def test_codes_that_do_not_match_verify_nothing_and_both_sides_are_told(
    open_server, tmp_path,
):
    alice, bob = await pair(open_server, tmp_path, "dr.vera2", "dr.ben2")
    try:
        a, _ = await start_and_show(alice, bob)
        await alice.verify.confirm(a.transaction_id)  # alice thinks they match...
        ended = await bob.verify.mismatch(a.transaction_id)  # ...bob sees otherwise
        assert (ended.phase, ended.reason, ended.by_peer) == (Phase.CANCELLED, "mismatch", False)
        await alice.chat.sync_once()
        seen = alice.verify.status(a.transaction_id)
        assert (seen.phase, seen.reason, seen.by_peer) == (Phase.CANCELLED, "mismatch", True)
        assert alice.trust_of(bob) is TrustLevel.TOFU
        assert bob.trust_of(alice) is TrustLevel.TOFU
        with pytest.raises(SafeConsultError):
            await bob.verify.confirm(a.transaction_id)  # too late: nothing to confirm

        await flush_audit(bob)
        await flush_audit(alice)
        assert audit_rows(open_server, bob.device_id) == [
            (alice.device_id, "refused", {"user_id": alice.client.user_id,
                                          "result": "mismatch"})]
        assert audit_rows(open_server, alice.device_id) == [
            (bob.device_id, "refused", {"user_id": bob.client.user_id,
                                        "result": "peer_mismatch"})]
    finally:
        await alice.close()
        await bob.close()


async def test_a_request_from_someone_not_met_yet_can_be_declined_or_withdrawn(
    open_server, tmp_path,
):
    # No shared room: bob has never fetched alice's devices; the request still reaches him.
    alice, bob = await pair(open_server, tmp_path, "dr.vera3", "dr.ben3", share_room=False)
    try:
        await alice.chat.refresh_device_lists([bob.client.user_id])
        first = await alice.verify.start(bob.client.user_id, bob.device_id)
        await bob.chat.sync_once()
        assert [r.transaction_id for r in bob.requests] == [first.transaction_id]
        declined = await bob.verify.cancel(first.transaction_id)
        assert (declined.phase, declined.reason) == (Phase.CANCELLED, "user")
        await alice.chat.sync_once()
        assert alice.verify.status(first.transaction_id).by_peer

        # Withdrawn by the asker before bob answered: his request closes, with no accept.
        second = await alice.verify.start(bob.client.user_id, bob.device_id)
        await bob.chat.sync_once()
        assert bob.verify.status(second.transaction_id).phase is Phase.REQUESTED
        await alice.verify.cancel(second.transaction_id)
        await bob.chat.sync_once()
        gone = bob.verify.status(second.transaction_id)
        assert (gone.phase, gone.reason, gone.by_peer) == (Phase.CANCELLED, "user", True)
        with pytest.raises(SafeConsultError):
            await bob.verify.accept(second.transaction_id)
        assert bob.verify.active() == [] and alice.verify.active() == []
    finally:
        await alice.close()
        await bob.close()


async def test_an_unanswered_verification_times_out_on_both_sides(open_server, tmp_path):
    alice, bob = await pair(open_server, tmp_path, "dr.vera4", "dr.ben4", timeout_s=0.5)
    try:
        bob.verify.timeout_s = 300.0  # bob is still deciding when alice's side gives up
        started = await alice.verify.start(bob.client.user_id, bob.device_id)
        await bob.chat.sync_once()
        assert bob.requests
        for _ in range(50):
            if alice.verify.status(started.transaction_id).finished:
                break
            await asyncio.sleep(0.05)
        ended = alice.verify.status(started.transaction_id)
        assert (ended.phase, ended.reason) == (Phase.CANCELLED, "timeout")
        await bob.chat.sync_once()
        seen = bob.verify.status(started.transaction_id)
        assert (seen.phase, seen.reason, seen.by_peer) == (Phase.CANCELLED, "timeout", True)
        assert alice.trust_of(bob) is TrustLevel.TOFU
    finally:
        await alice.close()
        await bob.close()


async def test_verifying_a_contacts_new_device_lets_it_receive_room_keys(open_server, tmp_path):
    alice, bob = await pair(open_server, tmp_path, "dr.vera5", "dr.ben5")
    bob2 = None
    try:
        room_id = (await alice.chat.create_room())
        await alice.chat.invite(room_id, bob.client.creds.username)
        await bob.chat.refresh_rooms()
        await bob.chat.join(room_id)
        await alice.chat.sync_once()
        bob2 = Party(await new_client(open_server, tmp_path, "dr.ben5",
                                      creds=bob.client.creds))
        await alice.chat.check_device_lists()
        assert [r.device_id for r in alice.chat.flagged_devices(room_id)] == [bob2.device_id]
        a, b = await start_and_show(alice, bob2)
        assert a.emoji == b.emoji
        await alice.verify.confirm(a.transaction_id)
        await bob2.chat.sync_once()
        await bob2.verify.confirm(a.transaction_id)
        await alice.chat.sync_once()
        assert alice.trust_of(bob2) is TrustLevel.VERIFIED
        assert alice.chat.flagged_devices(room_id) == []
        await alice.chat.send_text(room_id, "for both of your workstations")
        await bob2.chat.sync_once()
        assert bob2.client.texts(room_id)[-1] == "for both of your workstations"
    finally:
        for party in (alice, bob, *([bob2] if bob2 else [])):
            await party.close()
