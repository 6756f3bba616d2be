"""Before anyone signs in, the composition root prepares the device (app.services.startup):
the sign-in form is disabled until that is done, and stays disabled if it fails."""

from __future__ import annotations

import asyncio

from app.config import Paths, Policy
from app.main import _prepare_device


def run(qtbot, coro) -> None:
    task = asyncio.ensure_future(coro)
    qtbot.waitUntil(task.done, timeout=20_000)
    task.result()


def test_kiosk_leftovers_are_removed_before_sign_in(qtbot, make_window, tmp_path):
    policy = Policy(kiosk=True)
    paths = Paths.under(tmp_path)
    leftover = paths.data / "cache" / "left-by-a-crash.db"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"ciphertext without a key")
    window = make_window(policy=policy)
    window.login.set_ready(False)
    run(qtbot, _prepare_device(window, policy, paths))
    assert not leftover.exists()
    assert window.login.submit.isEnabled()


def test_with_keys_in_memory_an_earlier_runs_data_is_removed(qtbot, make_window, tmp_path):
    """The demo keeps its keys in memory: what a previous run left cannot be opened again."""
    policy = Policy()
    paths = Paths.under(tmp_path)
    leftover = paths.data / "devices" / "binding-of-an-earlier-run.json"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("{}")
    window = make_window(policy=policy)
    window.login.set_ready(False)
    run(qtbot, _prepare_device(window, policy, paths, keys_in_memory=True))
    assert not leftover.exists()
    assert window.login.submit.isEnabled()


def test_a_failed_preparation_keeps_sign_in_closed(qtbot, make_window, tmp_path, monkeypatch):
    import app.services.startup as startup
    from app.core.errors import SafeConsultError

    def fail(*_args):
        raise SafeConsultError("marker unreadable", user_message="The wipe could not finish.")

    monkeypatch.setattr(startup, "prepare_device", fail)
    window = make_window()
    window.show()
    window.login.set_ready(False)
    run(qtbot, _prepare_device(window, Policy(), Paths.under(tmp_path)))
    assert not window.login.submit.isEnabled()
    assert window.notifications.message.text() == "The wipe could not finish."
