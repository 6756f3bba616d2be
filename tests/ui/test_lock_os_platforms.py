"""OS lock and suspend signals on Windows and macOS, tested on Linux (app/ui/os_lock.py).

Windows: the message parsing reads ``MSG`` structures built byte by byte as Windows x64 lays
them out; the real filter runs on the real QApplication and the real window with constructed
messages; only ``WTSRegisterSessionNotification`` (the edge this machine lacks) is replaced.
macOS: the notification-name mapping; on Linux the runtime glue must refuse quietly and leave
the idle lock in charge. The Linux D-Bus path is tested in tests/ui/test_lock.py.
"""

from __future__ import annotations

import ctypes
import struct
import sys

import pytest
from PySide6.QtCore import QByteArray
from PySide6.QtWidgets import QApplication

from app.core.autolock import LockConfig, LockReason, LockState
from app.core.phi import Phi
from app.services.app_state import AppState, ConnectionState, DeviceState, SignedInUser
from app.ui.lock_controller import LockController
from app.ui.os_lock import (
    MAC_DISTRIBUTED,
    MAC_WORKSPACE,
    MSG,
    PBT_APMQUERYSUSPEND,
    PBT_APMSUSPEND,
    WM_POWERBROADCAST,
    WM_WTSSESSION_CHANGE,
    WTS_CONSOLE_DISCONNECT,
    WTS_REMOTE_DISCONNECT,
    WTS_SESSION_LOCK,
    WTS_SESSION_LOGOFF,
    OsEvent,
    OsLockWatcher,
    WindowsMessageFilter,
    macos_notification_event,
    read_windows_msg,
    windows_message_event,
)
from app.ui.phi import PhiLabel, phi_widgets

USER = SignedInUser(user_id="u-1", username="dr.wang", role="physician", device_id="D1")
WM_PAINT = 0x000F
WTS_CONSOLE_CONNECT, WTS_SESSION_UNLOCK, WTS_SESSION_LOGON = 0x1, 0x8, 0x5
PBT_APMRESUMESUSPEND, PBT_APMRESUMEAUTOMATIC, PBT_POWERSETTINGCHANGE = 0x7, 0x12, 0x8013


@pytest.mark.parametrize(("message", "wparam", "event"), [
    (WM_WTSSESSION_CHANGE, WTS_SESSION_LOCK, OsEvent.LOCKED),
    (WM_WTSSESSION_CHANGE, WTS_CONSOLE_DISCONNECT, OsEvent.LOCKED),
    (WM_WTSSESSION_CHANGE, WTS_REMOTE_DISCONNECT, OsEvent.LOCKED),
    (WM_WTSSESSION_CHANGE, WTS_SESSION_LOGOFF, OsEvent.LOCKED),
    (WM_WTSSESSION_CHANGE, WTS_SESSION_UNLOCK, None),
    (WM_WTSSESSION_CHANGE, WTS_CONSOLE_CONNECT, None),
    (WM_WTSSESSION_CHANGE, WTS_SESSION_LOGON, None),
    (WM_POWERBROADCAST, PBT_APMSUSPEND, OsEvent.SUSPENDING),
    (WM_POWERBROADCAST, PBT_APMQUERYSUSPEND, OsEvent.SUSPENDING),
    (WM_POWERBROADCAST, PBT_APMRESUMESUSPEND, None),
    (WM_POWERBROADCAST, PBT_APMRESUMEAUTOMATIC, None),
    (WM_POWERBROADCAST, PBT_POWERSETTINGCHANGE, None),
    (WM_PAINT, WTS_SESSION_LOCK, None),  # the right wParam on the wrong message
    (WM_PAINT, PBT_APMSUSPEND, None),
])
def test_windows_messages(message, wparam, event):
    assert windows_message_event(message, wparam) is event


def windows_x64_msg(hwnd: int, message: int, wparam: int, lparam: int) -> ctypes.Array:
    """A MSG as Windows x64 lays it out: HWND at 0, UINT at 8 (4 bytes padding after),
    WPARAM at 16, LPARAM at 24, DWORD time at 32, POINT at 36, 48 bytes in all."""
    raw = struct.pack("<QI4xQqIiiI", hwnd, message, wparam, lparam, 123456, 10, 20, 0)
    return ctypes.create_string_buffer(raw, len(raw))


@pytest.mark.skipif(ctypes.sizeof(ctypes.c_void_p) != 8 or sys.byteorder != "little",
                    reason="the constructed bytes are the 64-bit little-endian layout")
def test_msg_structure_has_the_windows_x64_layout():
    assert MSG.message.offset == 8 and MSG.wParam.offset == 16 and MSG.lParam.offset == 24
    assert MSG.time.offset == 32 and ctypes.sizeof(MSG) >= 44
    buffer = windows_x64_msg(0xABCD, WM_WTSSESSION_CHANGE, WTS_SESSION_LOCK, 7)
    assert read_windows_msg(ctypes.addressof(buffer)) == (WM_WTSSESSION_CHANGE, WTS_SESSION_LOCK)
    # A wParam beyond 32 bits is read whole (WPARAM is pointer-sized).
    buffer = windows_x64_msg(1, WM_POWERBROADCAST, 2**40 + PBT_APMSUSPEND, -1)
    assert read_windows_msg(ctypes.addressof(buffer)) == (WM_POWERBROADCAST,
                                                          2**40 + PBT_APMSUSPEND)
    assert windows_message_event(*read_windows_msg(ctypes.addressof(buffer))) is None
    assert read_windows_msg(0) == (0, 0)


def test_filter_reacts_to_windows_messages_only(qapp):
    events: list[OsEvent] = []
    native = WindowsMessageFilter(events.append)
    lock = MSG(hwnd=1, message=WM_WTSSESSION_CHANGE, wParam=WTS_SESSION_LOCK)
    sleep = MSG(hwnd=1, message=WM_POWERBROADCAST, wParam=PBT_APMSUSPEND)
    unlock = MSG(hwnd=1, message=WM_WTSSESSION_CHANGE, wParam=WTS_SESSION_UNLOCK)
    for kind in (b"xcb_generic_event_t", b"mac_generic_NSEvent"):
        assert native.nativeEventFilter(QByteArray(kind), ctypes.addressof(lock)) == (False, 0)
    assert events == []
    for msg in (lock, sleep, unlock):
        handled = native.nativeEventFilter(QByteArray(b"windows_generic_MSG"),
                                           ctypes.addressof(msg))
        assert handled == (False, 0)  # observed, never swallowed
    assert native.nativeEventFilter(b"windows_dispatcher_MSG", ctypes.addressof(lock)) == (
        False, 0)
    assert events == [OsEvent.LOCKED, OsEvent.SUSPENDING, OsEvent.LOCKED]


@pytest.fixture
def signed_in_window(make_window, qapp):
    """A real window with a PHI label, its lock controller, signed in (no session service:
    the window locks itself; the service's part is tested elsewhere)."""
    built = []

    def build():
        state = AppState()
        window = make_window(state=state)
        state.connection, state.device = ConnectionState.ONLINE, DeviceState.ACTIVE
        state.user = USER
        window.workspace.views["consults"].layout().insertWidget(0, PhiLabel(Phi("MRN 4711")))
        controller = LockController(qapp, state, lambda: LockConfig(300, 30, 3),
                                    window.lock_now, clock=lambda: 1000.0, parent=window)
        window.show()
        built.append(window)
        return window, controller

    yield build
    for window in built:
        for watcher in window.findChildren(OsLockWatcher):
            watcher.stop()


def visible_phi() -> list:
    return [w for top in QApplication.topLevelWidgets() for w in phi_widgets(top)
            if w.isVisible()]


@pytest.mark.parametrize(("message", "wparam", "reason"), [
    (WM_WTSSESSION_CHANGE, WTS_SESSION_LOCK, LockReason.OS_LOCK),
    (WM_POWERBROADCAST, PBT_APMSUSPEND, LockReason.SUSPEND),
])
def test_windows_path_locks_the_window(qtbot, signed_in_window, message, wparam, reason):
    window, controller = signed_in_window()
    registered: list[int] = []

    def register(hwnd: int) -> bool:  # WTSRegisterSessionNotification's stand-in
        registered.append(hwnd)
        return True

    watcher = OsLockWatcher(controller.os_session_locked, controller.suspended, parent=window)
    wired = watcher.start(platform="win32", register_session=register)
    assert wired == ["WM_POWERBROADCAST", "WM_WTSSESSION_CHANGE"]
    assert registered == [int(window.winId())]  # the main window's handle
    assert len(visible_phi()) == 1

    ignored = MSG(hwnd=registered[0], message=WM_WTSSESSION_CHANGE, wParam=WTS_SESSION_UNLOCK)
    watcher.native_filter.nativeEventFilter(QByteArray(b"windows_generic_MSG"),
                                            ctypes.addressof(ignored))
    assert not window.locked
    msg = MSG(hwnd=registered[0], message=message, wParam=wparam)
    watcher.native_filter.nativeEventFilter(QByteArray(b"windows_generic_MSG"),
                                            ctypes.addressof(msg))
    assert window.locked and visible_phi() == []
    assert window.pages.currentWidget() is window.lock_screen
    assert controller.machine.state is LockState.LOCKED
    assert controller.last_transition.reason is reason
    window.close()


def test_windows_registration_failure_keeps_the_power_signal(qtbot, signed_in_window):
    window, controller = signed_in_window()
    watcher = OsLockWatcher(controller.os_session_locked, controller.suspended, parent=window)
    assert watcher.start(platform="win32", register_session=lambda _hwnd: False) == [
        "WM_POWERBROADCAST"]
    sleep = MSG(message=WM_POWERBROADCAST, wParam=PBT_APMSUSPEND)
    watcher.native_filter.nativeEventFilter(b"windows_generic_MSG", ctypes.addressof(sleep))
    assert window.locked
    watcher.stop()
    assert watcher.native_filter is None
    window.close()


@pytest.mark.parametrize(("name", "event"), [
    ("com.apple.screenIsLocked", OsEvent.LOCKED),
    ("com.apple.screensaver.didstart", OsEvent.LOCKED),
    ("NSWorkspaceScreensDidSleepNotification", OsEvent.LOCKED),
    ("NSWorkspaceSessionDidResignActiveNotification", OsEvent.LOCKED),
    ("NSWorkspaceWillSleepNotification", OsEvent.SUSPENDING),
    ("com.apple.screenIsUnlocked", None),
    ("com.apple.screensaver.didstop", None),
    ("NSWorkspaceDidWakeNotification", None),
    ("NSWorkspaceSessionDidBecomeActiveNotification", None),
    ("", None),
])
def test_macos_notifications(name, event):
    assert macos_notification_event(name) is event


def test_every_observed_macos_notification_means_something():
    assert all(macos_notification_event(n) is not None for n in MAC_DISTRIBUTED + MAC_WORKSPACE)


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the refusal off macOS")
def test_macos_path_off_macos_refuses_quietly(qtbot, signed_in_window, caplog):
    window, controller = signed_in_window()
    watcher = OsLockWatcher(controller.os_session_locked, controller.suspended, parent=window)
    with caplog.at_level("WARNING"):
        assert watcher.start(platform="darwin") == []
    assert any(r.getMessage() == "OS lock signals unavailable" for r in caplog.records)
    assert not window.locked
    watcher.os_event(OsEvent.LOCKED)  # what the observer calls: locks like the others
    assert window.locked and visible_phi() == []
    window.close()
