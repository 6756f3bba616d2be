"""Auto-lock in the window: idle lock hides every PHI widget (widget tree, pixels, OCR),
the warning before it, input resets it, unlock, OS lock signals, wipe message, switch user.

The auto-lock machine runs on a fake clock; the timer is real but the tests call ``tick()``
themselves after moving the clock, as the timer would.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication, QDialog, QVBoxLayout, QWidget

from app.config import Policy
from app.core.autolock import LockConfig, LockState
from app.core.phi import Phi
from app.services.app_state import AppState, ConnectionState, DeviceState, SignedInUser
from app.ui.lock_controller import LockController
from app.ui.main_window import MainWindow
from app.ui.os_lock import OsLockWatcher, logind_session_path
from app.ui.phi import PhiLabel, phi_widgets

MRN = "MRN 4711-0815"
PATIENT = "Zhang Wei"
TIMEOUT, WARNING = 300, 30
USER = SignedInUser(user_id="u-1", username="dr.wang", role="physician", device_id="D1")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeSession:
    """lock / unlock / sign_out as SessionLink offers them, on AppState."""

    def __init__(self, state: AppState, *, password: str = "right", max_failures: int = 3):
        self.state, self.password, self.max_failures = state, password, max_failures
        self.failures = 0
        self.locks = 0
        self.signed_out = 0

    def lock(self) -> None:
        self.locks += 1
        self.state.locked = True

    async def unlock(self, password: str) -> int | None:
        from app.services.session import REFUSALS, SignInRefused

        if password == self.password:
            self.failures = 0
            self.state.locked = False
            return None
        self.failures += 1
        if self.failures >= self.max_failures:
            await self.sign_out()
            raise SignInRefused("unlock_failed_final", REFUSALS["unlock_failed_final"])
        return self.max_failures - self.failures

    async def sign_out(self) -> None:
        self.signed_out += 1
        self.state.locked, self.state.user = False, None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def locking(make_window, qapp, clock):
    """A signed-in window with a patient's MRN on screen, its lock controller and session."""

    def build(*, policy: Policy | None = None, max_failures: int = 3):
        state = AppState()
        session = FakeSession(state, max_failures=max_failures)
        window: MainWindow = make_window(policy=policy, state=state, sign_out=session.sign_out,
                                         lock=session.lock, unlock=session.unlock)
        state.connection, state.device = ConnectionState.ONLINE, DeviceState.ACTIVE
        state.user = USER
        view = window.workspace.views["consults"]
        label = PhiLabel(Phi(MRN))
        label.setObjectName("mrn")
        font = label.font()
        font.setPointSize(28)
        label.setFont(font)
        view.layout().insertWidget(0, label)
        controller = LockController(
            qapp, state, lambda: LockConfig(TIMEOUT, WARNING, max_failures), window.lock_now,
            clock=clock, parent=window)
        window.show()
        window.raise_()
        return window, controller, session, label

    return build


def visible_phi() -> list[QWidget]:
    return [w for top in QApplication.topLevelWidgets() for w in phi_widgets(top)
            if w.isVisible()]


def ocr(image: QImage, tmp_path, name: str) -> str:
    png = tmp_path / f"{name}.png"
    assert image.save(str(png), "PNG")
    result = subprocess.run(["tesseract", str(png), "stdout"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def idle_until_locked(controller: LockController, clock: FakeClock) -> None:
    clock.now += TIMEOUT - WARNING
    controller.tick()
    clock.now += WARNING
    controller.tick()


def test_idle_lock_hides_every_phi_widget(qtbot, locking, clock, tmp_path, save_screenshot):
    window, controller, session, label = locking()
    # PHI in a second window too (an image viewer, a dialog): it goes as well.
    dialog = QDialog(window)
    QVBoxLayout(dialog).addWidget(PhiLabel(Phi(PATIENT)))
    dialog.show()
    qtbot.waitExposed(window)
    assert label.isVisible() and label.text() == MRN
    before = window.grab().toImage()

    idle_until_locked(controller, clock)

    assert controller.machine.state is LockState.LOCKED
    assert session.locks == 1 and window.locked
    assert visible_phi() == []
    assert label.isHidden() and label.text() == ""  # the text left the widget too
    assert not dialog.isVisible()
    assert window.pages.currentWidget() is window.lock_screen
    assert window.lock_screen.user.text() == "Signed in as dr.wang"
    QApplication.processEvents()  # what the next frame shows (layout of the new page done)
    after = window.grab().toImage()
    assert after != before
    save_screenshot(window, "locked.png")
    if shutil.which("tesseract"):
        seen_before = ocr(before, tmp_path, "before")
        assert "4711" in seen_before  # the OCR can read the MRN where it is shown ...
        seen_after = ocr(after, tmp_path, "after")
        assert "Locked" in seen_after
        assert "4711" not in seen_after and "0815" not in seen_after  # ... and it is gone


def test_lock_screen_in_chinese(qtbot, locking, clock, languages, save_screenshot):
    window, controller, _session, _label = locking()
    assert languages.apply("zh_CN")
    idle_until_locked(controller, clock)
    assert window.lock_screen.heading.text() == "已锁定"
    assert window.lock_screen.unlock_button.text() == "解锁"
    QApplication.processEvents()
    save_screenshot(window, "locked-zh_CN.png")


def test_warning_comes_before_the_lock(qtbot, locking, clock, save_screenshot):
    window, controller, session, _label = locking()
    assert controller.timer.isActive()
    assert controller.timer.timerType() is Qt.TimerType.PreciseTimer
    clock.now += TIMEOUT - WARNING - 1
    controller.tick()
    assert not window.lock_warning.isVisible()
    clock.now += 1
    controller.tick()
    assert window.state.lock_seconds_left == WARNING
    assert window.lock_warning.isVisible()
    assert window.lock_warning.label.text() == (
        "Locking in 30 s – move the mouse to stay signed in")
    assert window.indicators.lock.isVisible() and window.indicators.lock.text() == "Locks in 0:30"
    assert controller.timer.remainingTime() <= 1000  # the countdown ticks each second
    QApplication.processEvents()
    save_screenshot(window, "lock-warning.png")
    clock.now += 12.5
    controller.tick()
    assert window.state.lock_seconds_left == 18
    assert "Locking in 18 s" in window.lock_warning.label.text()
    assert session.locks == 0 and not window.locked


def test_input_anywhere_resets_the_timer(qtbot, locking, clock):
    window, controller, session, _label = locking()
    qtbot.waitExposed(window)
    clock.now += TIMEOUT - 5
    controller.tick()
    assert window.lock_warning.isVisible()
    qtbot.mouseMove(window.workspace.navigation, window.workspace.navigation.rect().center())
    qtbot.keyClick(window.workspace.navigation, Qt.Key.Key_Down)
    assert controller.machine.state is LockState.ACTIVE
    assert not window.lock_warning.isVisible() and window.state.lock_seconds_left is None
    clock.now += TIMEOUT - WARNING - 1  # a full period counts from the input, not from before
    controller.tick()
    assert controller.machine.state is LockState.ACTIVE and session.locks == 0


def test_events_the_program_sends_itself_do_not_count(qtbot, locking, clock):
    window, controller, _session, _label = locking()
    clock.now += TIMEOUT - 5
    controller.tick()
    fake = QMouseEvent(QEvent.Type.MouseMove, QPointF(5, 5), QPointF(5, 5),
                       Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, fake)  # not spontaneous: not a person
    assert controller.machine.state is LockState.WARNING


def test_unlock_right_and_wrong_password(qtbot, locking, clock):
    window, controller, _session, label = locking(max_failures=3)
    idle_until_locked(controller, clock)
    screen = window.lock_screen
    screen.password.setText("wrong")
    qtbot.mouseClick(screen.unlock_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(screen.error.isVisible)
    assert screen.error.text() == (
        "The password is not correct. Attempts left before you are signed out: 2")
    assert screen.password.text() == "" and window.locked and visible_phi() == []

    screen.password.setText("right")
    qtbot.keyClick(screen.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.locked)
    assert window.pages.currentWidget() is window.workspace
    assert label.isVisible() and label.text() == MRN
    assert controller.machine.state is LockState.ACTIVE
    assert controller.timer.isActive()  # the idle lock is armed again


def test_too_many_failures_end_at_the_sign_in_screen(qtbot, locking, clock):
    window, controller, session, _label = locking(max_failures=2)
    idle_until_locked(controller, clock)
    screen = window.lock_screen
    for _ in range(2):
        screen.password.setText("wrong")
        qtbot.mouseClick(screen.unlock_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: screen.unlock_button.isEnabled())
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.login)
    assert session.signed_out == 1 and window.state.user is None
    assert window.login.error.text() == "Too many failed attempts: you have been signed out."
    assert controller.machine is None and not controller.timer.isActive()
    assert visible_phi() == []


def test_os_lock_and_suspend_lock_at_once(qtbot, locking, clock):
    for signal in ("session_lock", "prepare_for_sleep", "screensaver_active"):
        window, controller, session, _label = locking()
        watcher = OsLockWatcher(controller.os_session_locked, controller.suspended,
                                parent=window)
        if signal == "session_lock":
            watcher.session_lock()
        else:
            getattr(watcher, signal)(False)  # waking up / screen saver off: nothing
            assert not window.locked
            getattr(watcher, signal)(True)
        assert window.locked and session.locks == 1 and visible_phi() == [], signal
        window.close()


def test_logind_session_paths():
    assert logind_session_path("2") == "/org/freedesktop/login1/session/_32"
    assert logind_session_path("c1") == "/org/freedesktop/login1/session/c1"
    assert logind_session_path(None) == ""


@pytest.mark.skipif(not shutil.which("dbus-daemon"), reason="no dbus-daemon")
def test_os_lock_signals_arrive_over_dbus(qtbot, locking, tmp_path):
    """A private bus plays both buses: the screen saver and logind's suspend signal."""
    from PySide6.QtDBus import QDBusConnection, QDBusMessage

    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                              stdout=subprocess.PIPE, text=True)
    try:
        address = daemon.stdout.readline().strip()
        for name, interface, path, member in (
            ("org.freedesktop.ScreenSaver", "org.freedesktop.ScreenSaver",
             "/org/freedesktop/ScreenSaver", "ActiveChanged"),
            ("org.freedesktop.login1", "org.freedesktop.login1.Manager",
             "/org/freedesktop/login1", "PrepareForSleep"),
        ):
            window, controller, _session, _label = locking()
            bus = QDBusConnection.connectToBus(address, f"watch-{member}")
            watcher = OsLockWatcher(controller.os_session_locked, controller.suspended,
                                    parent=window)
            assert f"{interface}.{member}" in watcher.start(system_bus=bus, session_bus=bus)
            emitter = QDBusConnection.connectToBus(address, f"emit-{member}")
            assert emitter.registerService(name)
            message = QDBusMessage.createSignal(path, interface, member)
            message.setArguments([True])
            assert emitter.send(message)
            qtbot.waitUntil(lambda window=window: window.locked, timeout=5000)
            assert visible_phi() == []
            emitter.unregisterService(name)
            QDBusConnection.disconnectFromBus(f"emit-{member}")
            QDBusConnection.disconnectFromBus(f"watch-{member}")
            window.close()
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_wipe_shows_a_plain_message_without_phi(qtbot, locking, save_screenshot):
    window, _controller, _session, _label = locking()
    window.state.device = DeviceState.WIPED  # as SessionLink shows a WIPED snapshot
    window.state.connection = ConnectionState.OFFLINE
    window.state.user = None
    assert window.pages.currentWidget() is window.wiped
    assert window.wiped.message.text() == (
        "This workstation's SafeConsult data was removed on IT's order. "
        "Contact IT to use it again.")
    assert visible_phi() == [] and window._workspace is None
    assert not window.sign_out_action.isEnabled()
    QApplication.processEvents()
    save_screenshot(window, "wiped.png")


def test_wipe_while_locked_replaces_the_lock_screen(qtbot, locking, clock):
    """Polling goes on while locked: a wipe order lands and the lock screen gives way."""
    window, controller, _session, _label = locking()
    idle_until_locked(controller, clock)
    window.state.device = DeviceState.WIPED
    window.state.locked, window.state.user = False, None
    assert window.pages.currentWidget() is window.wiped and visible_phi() == []


def test_kiosk_switch_user_ends_the_session_with_an_empty_form(qtbot, locking):
    window, _controller, session, _label = locking(policy=Policy(kiosk=True))
    assert window.banner.switch_user.isVisible() and window.switch_user_action.isVisible()
    window.login.username.setText("dr.wang")  # what the form held when they signed in
    qtbot.mouseClick(window.banner.switch_user, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.login)
    assert session.signed_out == 1
    assert window.login.username.text() == "" and window.login.password.text() == ""
    assert not window.banner.switch_user.isVisible()
    assert window._workspace is None


def test_switch_user_is_a_kiosk_action(qtbot, locking):
    window, _controller, _session, _label = locking()
    assert not window.switch_user_action.isVisible() and not window.banner.isVisible()


def test_lock_now_action(qtbot, locking):
    window, controller, session, _label = locking()
    window.lock_action.trigger()
    assert window.locked and session.locks == 1 and visible_phi() == []
    assert controller.machine.state is LockState.LOCKED  # the machine follows the service
    assert not window.lock_action.isEnabled()
