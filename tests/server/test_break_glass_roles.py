"""Separation of duties for the break-glass review list (issue #8): its entries carry the
requester's free-text reason -- audit content -- so only auditors read and sign them off.
IT admins manage users and devices and get ``403 forbidden`` here, like clinicians."""

from __future__ import annotations

from tests.server.relay_support import make_room, refused
from tests.support.clients import new_user_device


async def test_only_auditors_read_and_review_the_break_glass_list(open_server):
    _, owner = await new_user_device(open_server, "alice")
    _, erdoc = await new_user_device(open_server, "erdoc")
    _, it = await new_user_device(open_server, "ivan", role="it_admin")
    _, auditor = await new_user_device(open_server, "audrey", role="auditor")
    try:
        room_id = await make_room(owner)
        granted = await erdoc.transport.post_json(
            f"/v1/rooms/{room_id}/break_glass", {"reason": "Unconscious patient, allergies?"})
        for dev in (it, erdoc, owner):
            for query in ("", "?unreviewed=false"):
                err = await refused(dev.transport.get_json(f"/v1/break_glass{query}"))
                assert (err.status, err.code) == (403, "forbidden"), dev.username
            err = await refused(dev.transport.post_json(
                f"/v1/break_glass/{granted['break_glass_id']}/review", {"note": "fine"}))
            assert (err.status, err.code) == (403, "forbidden"), dev.username
        entries = (await auditor.transport.get_json("/v1/break_glass"))["entries"]
        assert [(e["id"], e["reason"]) for e in entries] == [
            (granted["break_glass_id"], "Unconscious patient, allergies?")]
        reviewed = await auditor.transport.post_json(
            f"/v1/break_glass/{granted['break_glass_id']}/review", {"note": "justified"})
        assert reviewed["reviewed_by"] == auditor.user_id
    finally:
        for dev in (owner, erdoc, it, auditor):
            await dev.aclose()
