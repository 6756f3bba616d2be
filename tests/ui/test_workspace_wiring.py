"""The composition root gives the images view the signed-in user's identity (watermark) and
the session's one audit call (export/print), through the real session and server."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt

from app.config import Paths, Policy, Settings
from app.main import _build_window
from tests.support.clients import create_user, next_totp_code, server_db


def test_images_view_watermarks_and_audits_as_the_signed_in_user(
    qtbot, qapp, qloop, open_server, tmp_path,
):
    creds = create_user(open_server, "dr.osei", role="physician")
    policy = Policy(server_url=open_server.url, pinned_ca_pem=open_server.ca_pem)
    window = _build_window(qapp, policy, "", Paths.under(tmp_path / "c"), Settings(),
                           keys_in_memory=True)
    qtbot.addWidget(window)
    window.observe_state()
    window.show()
    code = asyncio.ensure_future(next_totp_code(open_server, creds.username, creds.totp_secret))
    qtbot.waitUntil(code.done, timeout=40_000)
    window.login.username.setText(creds.username)
    window.login.password.setText(creds.password)
    window.login.totp.setText(code.result())
    qtbot.mouseClick(window.login.submit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace, timeout=30_000)

    images = window.workspace.views["images"]
    link = images._service.audit.__self__  # the SessionLink's bound hook
    assert images.identity.user == "dr.osei"
    assert images.identity.device == link.service.snapshot.device_id

    images._service.audit("image.export", "series-digest-1")
    flushed = asyncio.ensure_future(link.service.audit.flush())
    qtbot.waitUntil(flushed.done, timeout=10_000)
    rows = server_db(open_server).connection().execute(
        "SELECT object_type, object_id FROM audit_log WHERE action = 'client.image.export'"
    ).fetchall()
    assert [tuple(r) for r in rows] == [("series", "series-digest-1")]

    closing = asyncio.ensure_future(window.shutdown())
    qtbot.waitUntil(closing.done, timeout=10_000)
