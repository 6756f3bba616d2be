"""Fixtures for the GUI tests: a qasync loop on the test QApplication, compiled translations,
and a main window built the way app/main.py builds it (with fakes for the services)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import qasync

from app.config import Paths, Policy, Settings
from app.services.app_state import AppState
from app.ui.about_info import AboutInfo
from app.ui.asyncbridge import TaskRunner
from app.ui.i18n import ENGLISH, LanguageSwitcher
from app.ui.main_window import MainWindow
from app.ui.pyside_guard import protect_none
from app.ui.theme import ThemeController
from tests.support.signed_in import signed_in_window  # noqa: F401 (fixture for tests/ui)

# Before any test touches Qt: PySide6 6.12.0 on CPython 3.11 leaks references to None, and a
# long test session would abort with "none_dealloc" (app/ui/pyside_guard.py).
protect_none()

ROOT = Path(__file__).resolve().parents[2]
TS_DIR = ROOT / "app" / "ui" / "i18n"
LRELEASE = Path(sys.executable).with_name("pyside6-lrelease")


@pytest.fixture(scope="session")
def _shared_qloop(qapp) -> Iterator[qasync.QEventLoop]:
    """One qasync loop for the whole session. A loop per test crashed now and then: closing
    a qasync loop leaves Qt socket notifiers behind whose events can fire after the loop's
    Python side is gone (segfault in processEvents). The app itself has one loop too."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.events._set_running_loop(None)
    loop._QEventLoop__is_running = False
    yield loop
    loop.close()  # once, at the end: stops its worker-thread executor


@pytest.fixture
def qloop(qapp, _shared_qloop) -> Iterator[asyncio.AbstractEventLoop]:
    """The shared qasync loop, marked running on the test's QApplication for this test.

    Callbacks then run whenever Qt processes events (``qtbot.waitUntil`` / ``waitSignal``),
    exactly as in the app where ``app.exec()`` drives them.
    """
    loop = _shared_qloop
    asyncio.set_event_loop(loop)
    asyncio.events._set_running_loop(loop)
    loop._QEventLoop__is_running = True
    yield loop
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    # Let the cancellations run (clean-up handlers close their sockets) before the next
    # test; bounded, so a task that ignores cancellation cannot hang the run.
    deadline = time.monotonic() + 2.0
    while any(not t.done() for t in tasks) and time.monotonic() < deadline:
        qapp.processEvents()
    asyncio.events._set_running_loop(None)
    # Not loop.stop(): it calls app.exit(), which would make every later QEventLoop in this
    # process (qtbot.waitSignal's included) return at once. Clear qasync's flag instead.
    loop._QEventLoop__is_running = False
    asyncio.set_event_loop(None)


@pytest.fixture(scope="session")
def qm_dir(tmp_path_factory) -> Path:
    """The .ts catalogues compiled the way scripts/bootstrap.sh does it, into a temp dir."""
    out = tmp_path_factory.mktemp("qm")
    for ts in TS_DIR.glob("*.ts"):
        subprocess.run([str(LRELEASE), "-silent", str(ts), "-qm", str(out / f"{ts.stem}.qm")],
                       check=True)
    return out


@pytest.fixture
def languages(qapp, qm_dir) -> Iterator[LanguageSwitcher]:
    switcher = LanguageSwitcher(qapp, qm_dir)
    yield switcher
    switcher.apply(ENGLISH)


@pytest.fixture
def theme(qapp) -> Iterator[ThemeController]:
    controller = ThemeController(qapp)
    controller.apply("light")
    yield controller
    controller.apply("light")
    controller.deleteLater()


class FakeSignIn:
    """Stands in for the session service: records calls, then succeeds or raises."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.error: BaseException | None = None
        self.on_success: Callable[[str], None] | None = None
        self.gate: asyncio.Event | None = None

    async def __call__(self, username: str, password: str, totp: str) -> None:
        self.calls.append((username, password, totp))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        if self.on_success is not None:
            self.on_success(username)


@pytest.fixture
def fake_sign_in() -> FakeSignIn:
    return FakeSignIn()


@pytest.fixture
def make_window(qtbot, qloop, languages, theme, fake_sign_in, tmp_path):
    """Build a MainWindow like the composition root does; keyword arguments override."""

    def build(*, policy: Policy | None = None, problem: str = "",
              state: AppState | None = None, saved: list[Settings] | None = None,
              on_close=None, sign_in=None, sign_out=None, **extra) -> MainWindow:
        paths = Paths.under(tmp_path)
        runner = TaskRunner()
        window = MainWindow(
            state=state or AppState(policy_problem=problem),
            runner=runner,
            sign_in=sign_in or fake_sign_in,
            about=AboutInfo(version="9.9.9", policy=policy or Policy(),
                            policy_problem=problem, data_dir=paths.data),
            settings=Settings(),
            save_settings=(saved.append if saved is not None else lambda _s: None),
            languages=languages,
            theme=theme,
            on_close=on_close,
            sign_out=sign_out,
            **extra,
        )
        runner.setParent(window)
        qtbot.addWidget(window)
        return window

    return build


@pytest.fixture
def save_screenshot() -> Callable[[object, str], Path | None]:
    """Screenshots for docs/screenshots/ -- written only with SAFECONSULT_SCREENSHOTS=1, so an
    ordinary test run leaves the working tree clean."""
    import os

    def save(widget, name: str) -> Path | None:
        if os.environ.get("SAFECONSULT_SCREENSHOTS") != "1":
            return None
        target = ROOT / "docs" / "screenshots" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        assert widget.grab().save(str(target), "PNG")
        return target

    return save

