"""IT administration of devices over HTTP (``/v1/admin/devices``): what the admin command
line does, for the ``it_admin`` role only, audited with the administrator as actor."""

from __future__ import annotations

import json

from tests.server.relay_support import refused
from tests.support.clients import create_user, enroll, login, new_user_device, server_db


def _audit_rows(server, action: str) -> list[dict]:
    """Entries made over HTTP (the fixtures approve their own devices with the CLI's code)."""
    rows = server_db(server).connection().execute(
        "SELECT actor_user_id, device_id, object_id, source, detail FROM audit_log"
        " WHERE action = ? AND source != 'admin-cli' ORDER BY seq", (action,)).fetchall()
    return [dict(r) for r in rows]


async def test_it_admin_approves_logs_out_and_wipes_a_clinicians_device(server):
    _, admin = await new_user_device(server, "ivan", role="it_admin")
    nurse = create_user(server, "nora", role="nurse")
    cart = await enroll(server, "nora", nurse.password, nurse.totp_secret,
                        display_name="Ward 3 cart")
    try:
        assert cart.session is None  # this server requires approval
        pending = (await admin.transport.get_json("/v1/admin/devices?state=pending"))["devices"]
        assert [(d["device_id"], d["username"], d["display_name"], d["state"])
                for d in pending] == [(cart.device_id, "nora", "Ward 3 cart", "pending")]
        assert pending[0]["ed25519"] == cart.identity.ed25519

        approved = await admin.transport.post_json(
            f"/v1/admin/devices/{cart.device_id}/approve", {})
        assert (approved["state"], approved["order"]) == ("active", "none")
        await login(server, cart, nurse.password, nurse.totp_secret)

        out = await admin.transport.post_json(f"/v1/admin/devices/{cart.device_id}/logout", {})
        assert (out["state"], out["order"]) == ("active", "logout")
        status = await cart.transport.get_json("/v1/devices/self/status")
        assert (status["order"], status["order_id"]) == ("logout", out["order_id"])

        wiped = await admin.transport.post_json(f"/v1/admin/devices/{cart.device_id}/wipe", {})
        assert (wiped["state"], wiped["order"]) == ("revoked", "wipe")
        status = await cart.transport.get_json("/v1/devices/self/status")
        assert (status["state"], status["order"]) == ("revoked", "wipe")

        for action in ("device.approve", "device.logout", "device.wipe"):
            [row] = _audit_rows(server, action)
            assert (row["actor_user_id"], row["device_id"], row["object_id"]) == (
                admin.user_id, admin.device_id, cart.device_id), action
        assert json.loads(_audit_rows(server, "device.wipe")[0]["detail"])["order_id"] == \
            wiped["order_id"]
    finally:
        await cart.aclose()
        await admin.aclose()


async def test_refusals_name_the_case(server):
    _, admin = await new_user_device(server, "ivan", role="it_admin")
    _, doctor = await new_user_device(server, "dora")
    _, auditor = await new_user_device(server, "audrey", role="auditor")
    try:
        for dev in (doctor, auditor):
            err = await refused(dev.transport.get_json("/v1/admin/devices"))
            assert (err.status, err.code) == (403, "forbidden"), dev.username
            err = await refused(dev.transport.post_json(
                f"/v1/admin/devices/{admin.device_id}/wipe", {}))
            assert (err.status, err.code) == (403, "forbidden"), dev.username
        err = await refused(admin.transport.post_json(
            f"/v1/admin/devices/{admin.device_id}/revoke", {}))
        assert (err.status, err.code) == (409, "own_device")
        err = await refused(admin.transport.post_json(f"/v1/admin/devices/{'A' * 22}/wipe", {}))
        assert (err.status, err.code) == (404, "not_found")
        err = await refused(admin.transport.post_json(
            f"/v1/admin/devices/{doctor.device_id}/approve", {}))
        assert (err.status, err.code) == (409, "wrong_state")  # already active
        err = await refused(admin.transport.post_json(
            f"/v1/admin/devices/{doctor.device_id}/format", {}))
        assert err.status == 422
        err = await refused(admin.transport.get_json("/v1/admin/devices?state=lost"))
        assert err.status == 422
        # Nothing above changed anything: no device.* entries were written.
        for action in ("device.approve", "device.revoke", "device.wipe", "device.logout"):
            assert _audit_rows(server, action) == []
        listed = (await admin.transport.get_json("/v1/admin/devices"))["devices"]
        assert {d["username"] for d in listed} == {"ivan", "dora", "audrey"}
        revoked = await admin.transport.post_json(
            f"/v1/admin/devices/{doctor.device_id}/revoke", {})
        assert (revoked["state"], revoked["order"]) == ("revoked", "none")
        err = await refused(doctor.transport.get_json("/v1/rooms"))
        assert err.status in (401, 403)
    finally:
        for dev in (admin, doctor, auditor):
            await dev.aclose()
