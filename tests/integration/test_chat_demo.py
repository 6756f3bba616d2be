"""The demo, as two people use it (``scripts/demo.sh`` and ``--demo --join``): the demo's
own server process with its seeded users; two workstations sign in as two clinicians,
create a room, invite, chat and verify each other's devices."""

from __future__ import annotations

from types import SimpleNamespace

import pyotp

from app.crypto.store import TrustLevel
from app.services.chat import ChatService
from app.services.demo_server import DemoServer
from app.services.verification import Phase, VerificationService
from tests.integration.conftest import Workstation


async def _sign_in(demo: DemoServer, root, username: str):
    user = next(u for u in demo.users if u.username == username)
    ws = Workstation(SimpleNamespace(url=demo.url, ca_pem=demo.ca_pem), root / username)
    await ws.session.sign_in(username, user.password, pyotp.TOTP(user.totp_secret).now())
    chat = ChatService(ws.session)
    await chat.start(background=False)
    return ws, chat, VerificationService(chat, audit=ws.session.audit)


async def test_two_demo_clinicians_chat_and_verify_each_other(tmp_path):
    demo = DemoServer.start(tmp_path / "demo")
    parties = []
    try:
        clinicians = [u.username for u in demo.users if u.role in ("physician", "nurse")]
        assert clinicians == ["dr.demo", "nurse.demo"]  # the seeded users suit a chat
        doctor = await _sign_in(demo, tmp_path, "dr.demo")
        parties.append(doctor)
        nurse = await _sign_in(demo, tmp_path, "nurse.demo")
        parties.append(nurse)
        (_, d_chat, d_verify), (_, n_chat, n_verify) = doctor, nurse

        room = await d_chat.create_room()
        await d_chat.invite(room, "nurse.demo")
        await n_chat.refresh_rooms()
        await n_chat.join(room)
        await d_chat.sync_once()
        await d_chat.send_text(room, "Demo: bed 3 needs a review")
        await n_chat.sync_once()
        assert [m.body.reveal() for m in n_chat.messages(room)] == ["Demo: bed 3 needs a review"]

        nurse_device = n_chat.device.device_id
        started = await d_verify.start(n_chat.user_id, nurse_device)
        requests = []
        n_verify.requested.connect(requests.append)
        await n_chat.sync_once()
        await n_verify.accept(requests[0].transaction_id)
        for chat in (d_chat, n_chat, d_chat):
            await chat.sync_once()
        txn = started.transaction_id
        assert d_verify.status(txn).emoji == n_verify.status(txn).emoji != ()
        await d_verify.confirm(txn)
        await n_chat.sync_once()
        assert (await n_verify.confirm(txn)).phase is Phase.VERIFIED
        await d_chat.sync_once()
        assert d_verify.status(txn).phase is Phase.VERIFIED
        assert [d.trust for d in d_chat.devices(n_chat.user_id)] == [TrustLevel.VERIFIED]
        assert [d.trust for d in n_chat.devices(d_chat.user_id)] == [TrustLevel.VERIFIED]
    finally:
        for ws, chat, verify in parties:
            verify.close()
            await chat.stop()
            await ws.session.aclose()
        demo.stop()


def test_the_demo_policy_offers_a_pin_and_pins_its_own_ca(tmp_path):
    demo = DemoServer.start(tmp_path / "demo")
    try:
        policy = demo.policy()
        assert policy.allow_pin_unlock and policy.pinned_ca_pem == demo.ca_pem
        assert not policy.kiosk
    finally:
        demo.stop()
