"""PIN unlock in the session service, signed in against the real server (pinned TLS, real
cache, real audit chain); the OS keyring is the test double.

Right and wrong PIN, trivial PINs refused, no PIN step or PIN entry when policy says no,
three wrong PINs leave the password only, wrong PINs and passwords together end the session
at the policy's N, the offline guard's lock needs the password, every PIN event audited,
and nothing of the PIN on disk (ordinary and kiosk).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import replace

import pytest

from app.config import Paths, Policy
from app.core.pin import PIN_MAX_FAILURES, PinOffer, PinProblem, PinRefused
from app.security.keystore import KeyringKeyStore
from app.security.testing import InMemoryTestKeyring
from app.services.session import SessionService, SessionState, SignInRefused
from tests.support.clients import create_user, next_totp_code, server_db

PIN = "482913"


class Desk:
    def __init__(self, server, root, policy: Policy, *, kiosk_keys: bool = False) -> None:
        self.server, self.paths = server, Paths.under(root)
        self.keyring = InMemoryTestKeyring()
        self.policy = replace(policy, server_url=server.url, pinned_ca_pem=server.ca_pem)
        if kiosk_keys:
            from app.security.kiosk import session_keys
            keystore_for = session_keys
        else:
            def keystore_for(user, device_id):
                return KeyringKeyStore.open(user, device_id, backend=self.keyring,
                                            allow_test_backend=True)
        self.session = SessionService(self.policy, self.paths, keystore_for)

    async def sign_in(self, name: str):
        self.creds = create_user(self.server, name)
        code = await next_totp_code(self.server, self.creds.username, self.creds.totp_secret)
        await self.session.sign_in(self.creds.username, self.creds.password, code)
        return self.session

    async def client_audit(self) -> list[tuple[str, str, dict]]:
        await self.session.audit.flush()
        rows = server_db(self.server).connection().execute(
            "SELECT action, outcome, detail FROM audit_log WHERE device_id = ? AND action LIKE "
            "'client.%' ORDER BY seq", (self.session.snapshot.device_id,)).fetchall()
        keep = ("method", "attempt", "pin_dropped")
        return [(r[0], r[1], {k: v for k, v in json.loads(r[2] or "{}").items() if k in keep})
                for r in rows]


async def refused(call) -> str:
    with pytest.raises(SignInRefused) as exc:
        await call
    return exc.value.code


async def test_pin_disabled_by_policy_offers_nothing(open_server, tmp_path):
    desk = Desk(open_server, tmp_path / "ws", Policy(allow_pin_unlock=False))
    session = await desk.sign_in("dr.nopin")
    assert session.pin_offer() is None
    with pytest.raises(PinRefused) as exc:
        await session.set_pin(PIN)
    assert exc.value.code == "pin_not_allowed"
    session.lock()
    assert not session.pin_unlock_offered
    assert await refused(session.unlock_pin(PIN)) == "pin_unavailable"
    assert session.unlock_failures == 0  # asking for a PIN that is not offered costs nothing
    await session.unlock(desk.creds.password)
    assert session.snapshot.state is SessionState.SIGNED_IN
    await session.aclose()


async def test_right_and_wrong_pin_trivial_refused_audited(open_server, tmp_path):
    desk = Desk(open_server, tmp_path / "ws", Policy(allow_pin_unlock=True, pin_min_length=6))
    session = await desk.sign_in("dr.pin")
    offer = session.pin_offer()
    assert isinstance(offer, PinOffer) and offer.min_length == 6
    for bad, problem in (("123456", PinProblem.TRIVIAL), ("000000", PinProblem.TRIVIAL),
                         ("4829", PinProblem.TOO_SHORT), ("48a913", PinProblem.NOT_DIGITS)):
        with pytest.raises(PinRefused) as exc:
            await offer.set_pin(bad)
        assert exc.value.code == problem
    assert not session.pin.is_set
    session.lock()
    with pytest.raises(PinRefused):  # locked: the user has not proven it is them
        await session.set_pin(PIN)
    await session.unlock(desk.creds.password)

    await offer.set_pin(PIN)
    assert session.pin.is_set and session.pin_offer() is None  # one set-PIN step
    session.lock()
    assert session.pin_unlock_offered
    assert await refused(session.unlock_pin("482914")) == "pin_failed"
    assert session.snapshot.state is SessionState.LOCKED and session.unlock_failures == 1
    await session.unlock_pin(PIN)
    assert session.snapshot.state is SessionState.SIGNED_IN and session.unlock_failures == 0
    await session.unlock_pin(PIN)  # not locked: nothing happens
    assert session.snapshot.state is SessionState.SIGNED_IN

    assert await desk.client_audit() == [
        ("client.session.lock", "ok", {}),
        ("client.session.unlock", "ok", {"method": "password"}),
        ("client.session.pin_set", "ok", {}),
        ("client.session.lock", "ok", {}),
        ("client.session.unlock", "refused", {"method": "pin", "attempt": 1}),
        ("client.session.unlock", "ok", {"method": "pin"}),
    ]
    await session.aclose()


async def test_wrong_pins_fall_back_to_password_then_the_limit_signs_out(open_server, tmp_path):
    desk = Desk(open_server, tmp_path / "ws",
                Policy(allow_pin_unlock=True, max_unlock_failures=PIN_MAX_FAILURES + 1))
    session = await desk.sign_in("dr.fallback")
    await session.set_pin(PIN)
    session.lock()
    codes = [await refused(session.unlock_pin(f"93057{n}")) for n in range(PIN_MAX_FAILURES)]
    assert codes == ["pin_failed"] * (PIN_MAX_FAILURES - 1) + ["pin_dropped"]
    assert not session.pin_unlock_offered and not session.pin.is_set
    # Even the right PIN no longer unlocks, and asking costs no attempt.
    assert await refused(session.unlock_pin(PIN)) == "pin_unavailable"
    assert session.unlock_failures == PIN_MAX_FAILURES
    rows = await desk.client_audit()
    assert rows[-1] == ("client.session.unlock", "refused",
                        {"method": "pin", "attempt": PIN_MAX_FAILURES, "pin_dropped": True})
    # PIN failures count with password failures: one wrong password now ends the session.
    assert await refused(session.unlock("not-my-password")) == "unlock_failed_final"
    assert session.snapshot.state is SessionState.SIGNED_OUT and session.cache is None
    assert not session.pin.is_set
    await session.aclose()


async def test_the_pin_limit_holds_across_locks_and_the_password_still_works(
        open_server, tmp_path):
    desk = Desk(open_server, tmp_path / "ws", Policy(allow_pin_unlock=True))
    session = await desk.sign_in("dr.acrosslocks")
    await session.set_pin(PIN)
    for _ in range(PIN_MAX_FAILURES - 1):
        session.lock()
        assert await refused(session.unlock_pin("739204")) == "pin_failed"
        await session.unlock_pin(PIN)  # the right PIN: unlocked, but no new guesses
        assert session.snapshot.state is SessionState.SIGNED_IN
    session.lock()
    assert await refused(session.unlock_pin("739204")) == "pin_dropped"
    await session.unlock(desk.creds.password)
    assert session.snapshot.state is SessionState.SIGNED_IN
    session.lock()
    assert not session.pin_unlock_offered  # dropped for the rest of the session
    await session.aclose()


async def test_offline_guard_lock_needs_the_password(open_server, tmp_path):
    desk = Desk(open_server, tmp_path / "ws", Policy(allow_pin_unlock=True, offline_grace_s=1))
    session = await desk.sign_in("dr.offline")
    await session.set_pin(PIN)
    await asyncio.sleep(1.2)
    session.offline_guard.check()  # what a failed status poll does
    assert session.snapshot.state is SessionState.LOCKED
    assert session.pin.is_set and not session.pin_unlock_offered
    assert await refused(session.unlock_pin(PIN)) == "pin_unavailable"
    await session.unlock(desk.creds.password)
    session.offline_guard.note_contact()
    session.lock()  # an ordinary lock again: the PIN is offered
    assert session.pin_unlock_offered
    await session.unlock_pin(PIN)
    assert session.snapshot.state is SessionState.SIGNED_IN
    await session.aclose()


@pytest.mark.parametrize("kiosk", [False, True])
async def test_nothing_of_the_pin_reaches_the_disk(open_server, tmp_path, kiosk):
    root = tmp_path / "ws"
    desk = Desk(open_server, root, Policy(allow_pin_unlock=True, kiosk=kiosk), kiosk_keys=kiosk)
    session = await desk.sign_in(f"dr.disk{int(kiosk)}")
    await session.set_pin(PIN)
    verifier = session.pin.verifier
    session.lock()
    await refused(session.unlock_pin("739204"))
    await session.unlock_pin(PIN)
    session.cache.checkpoint()
    await session.audit.flush()
    needles = [PIN.encode(), PIN.encode("utf-16-le"), verifier.key, verifier.salt,
               hashlib.sha256(PIN.encode()).digest(), hashlib.sha256(PIN.encode()).hexdigest()
               .encode(), verifier.key.hex().encode()]

    def leaks() -> list[str]:
        found = []
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                found += [f"{path.name}:{i}" for i, n in enumerate(needles) if n in data]
        return found

    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "cache.db" for p in files)  # the scan saw the cache (and its WAL)
    assert leaks() == []
    stored = " ".join(v for v in desk.keyring._data.values())
    assert PIN not in stored and verifier.key.hex() not in stored
    await session.sign_out()
    assert leaks() == []
    assert not session.pin.is_set
    await session.aclose()
