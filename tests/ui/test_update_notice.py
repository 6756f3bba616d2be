"""The signed-in window checks for updates once, in the background, against IT's TUF
repository served by the real server: a newer signed release is staged and announced; a
tampered one is refused, announced as a problem to report, and nothing is staged. Each
outcome is one ``update.check`` entry in the device's audit chain, uploaded to the server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.tools.updates import UpdateRepository
from tests.support.clients import server_db

VERSION = "99.0.0"  # newer than any running build


@pytest.fixture
def repo(open_server, tmp_path, monkeypatch) -> UpdateRepository:
    repository = UpdateRepository(open_server.data_dir / "updates", tmp_path / "it-keys")
    repository.init()
    build = tmp_path / "safeconsult_99.0.0_amd64.deb"
    build.write_bytes(b"installer 99" * 1000)
    repository.add(build, VERSION)
    # The trust root IT installs beside the machine policy (/etc/safeconsult/ here).
    monkeypatch.setattr("app.services.updates.update_root_path",
                        lambda: repository.metadata_dir / "1.root.json")
    monkeypatch.setattr("app.services.updates.this_platform", lambda: "linux-deb")
    return repository


def _entries(server, username: str) -> list[dict]:
    rows = server_db(server).connection().execute(
        "SELECT a.outcome, a.object_id, a.detail FROM audit_log a JOIN users u"
        " ON u.id = a.actor_user_id WHERE a.action = 'client.update.check' AND u.username = ?",
        (username,)).fetchall()
    return [dict(r) for r in rows]


def test_a_verified_release_is_staged_and_announced(qtbot, open_server, repo,
                                                     signed_in_window, save_screenshot):
    window = signed_in_window(open_server, "dr.amara", "physician")
    banner = window.workspace.update_banner
    qtbot.waitUntil(lambda: banner.kind == "ready", timeout=30_000)
    assert banner.isVisible() and VERSION in banner.label.text()
    staged = next(Path(window_data(window)).rglob("pending.json"))
    assert json.loads(staged.read_text())["version"] == VERSION
    save_screenshot(window, "update-ready.png")
    qtbot.waitUntil(lambda: len(_entries(open_server, "dr.amara")) == 1, timeout=30_000)
    [entry] = _entries(open_server, "dr.amara")
    assert (entry["outcome"], entry["object_id"]) == ("ok", VERSION)
    assert json.loads(entry["detail"])["status"] == "staged"
    banner.close_button.click()
    assert not banner.isVisible()


def test_a_tampered_release_is_refused_and_nothing_is_staged(qtbot, open_server, repo,
                                                            signed_in_window):
    stored = next((repo.targets_dir / "linux-deb" / VERSION).iterdir())
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 1
    stored.write_bytes(bytes(data))
    window = signed_in_window(open_server, "dr.bell", "physician")
    banner = window.workspace.update_banner
    qtbot.waitUntil(lambda: banner.kind == "refused", timeout=30_000)
    assert "did not pass its security checks" in banner.label.text()
    assert not list(Path(window_data(window)).rglob("pending.json"))
    qtbot.waitUntil(lambda: len(_entries(open_server, "dr.bell")) == 1, timeout=30_000)
    [entry] = _entries(open_server, "dr.bell")
    assert entry["outcome"] == "refused"
    assert json.loads(entry["detail"])["reason"] == "tampered"


def window_data(window) -> Path:
    return window._about.data_dir
