"""Kiosk (shared cart) sessions: keys in memory only, nothing left after sign-out, and a
signed "nothing left" attestation in the server's audit log."""

import json

from app.config import Policy
from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.crypto.identity import verify_ed25519
from app.security.kiosk import ATTESTATION_KIND, session_keys
from app.services.session import SessionService, SessionState
from app.storage.messages import MessageRepository
from tests.integration.conftest import Workstation
from tests.support.clients import create_user, next_totp_code, server_db

MARKER = "KIOSK-MARKER-Bed12-Testpatient"


class Kiosk(Workstation):
    def __init__(self, server, root):
        super().__init__(server, root)
        self.policy = Policy(server_url=server.url, pinned_ca_pem=server.ca_pem, kiosk=True)
        self.session = SessionService(self.policy, self.paths, self.keystore_for)

    def keystore_for(self, user, device_id):
        # One memory key store per (user, device) for the life of the process.
        key = (user, device_id)
        stores = self.__dict__.setdefault("_stores", {})
        if key not in stores:
            stores[key] = session_keys(user, device_id)
        return stores[key]


async def test_kiosk_sign_out_leaves_nothing_and_attests_it(open_server, tmp_path):
    creds = create_user(open_server, "nurse.cart")
    kiosk = Kiosk(open_server, tmp_path / "cart")
    code = await next_totp_code(open_server, creds.username, creds.totp_secret)
    await kiosk.session.sign_in(creds.username, creds.password, code)
    device_id = kiosk.session.snapshot.device_id
    identity_key = kiosk.session.device.identity.ed25519
    MessageRepository(kiosk.session.cache).insert(
        CachedMessage("room-1", "ev-1", "nurse.cart", 1, Phi(MARKER)))
    assert any(p.is_file() for p in kiosk.paths.data.rglob("*"))

    await kiosk.session.sign_out()
    assert kiosk.session.snapshot.state is SessionState.SIGNED_OUT
    assert [p for p in kiosk.paths.data.rglob("*") if p.is_file()] == []
    clean, report = kiosk.session.last_attestation
    assert clean
    for root in (kiosk.paths.data, kiosk.paths.config):
        for path in root.rglob("*"):
            if path.is_file():
                assert MARKER.encode() not in path.read_bytes()

    row = server_db(open_server).connection().execute(
        "SELECT detail, outcome FROM audit_log WHERE action = 'client.kiosk.attest' "
        "AND device_id = ?", (device_id,)).fetchone()
    assert row is not None and row["outcome"] == "ok"
    detail = json.loads(row["detail"])
    rebuilt = {"kind": ATTESTATION_KIND, "device_id": device_id,
               **{k: v for k, v in detail.items() if k != "signature"}}
    report_bytes = json.dumps(rebuilt, sort_keys=True, separators=(",", ":")).encode()
    assert report_bytes == report
    assert verify_ed25519(identity_key, report_bytes, detail["signature"])
    await kiosk.session.aclose()
