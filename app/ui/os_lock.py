"""Lock SafeConsult when the operating system locks the screen or goes to sleep.

Each signal below lands in the auto-lock machine's ``os_session_locked()`` / ``suspended()``:
LOCKED at once, PHI hidden before the OS shows its own lock screen or the lid closes. What a
platform does not offer (a container without D-Bus, a failed registration) is skipped and
logged: the idle timer still locks.

**Linux** (D-Bus, through QtDBus from PySide6-Essentials):

* system bus, ``org.freedesktop.login1.Manager.PrepareForSleep(true)`` -- suspend/hibernate;
* system bus, ``org.freedesktop.login1.Session.Lock`` -- ``loginctl lock-session`` and the
  desktops that lock through logind; the object path is this process's session
  (``$XDG_SESSION_ID``), or any session when that is unknown (locking too often is safe);
* session bus, ``org.freedesktop.ScreenSaver.ActiveChanged(true)`` (KDE, Xfce, ...) and
  ``org.gnome.ScreenSaver.ActiveChanged(true)`` (GNOME).

**Windows** (a Qt native event filter on the application, :class:`WindowsMessageFilter`):

* ``WM_WTSSESSION_CHANGE`` with ``WTS_SESSION_LOCK`` (Win+L, Ctrl+Alt+Del -> Lock, the lock
  on screen-off), ``WTS_CONSOLE_DISCONNECT`` / ``WTS_REMOTE_DISCONNECT`` (fast user switching,
  a dropped remote desktop) and ``WTS_SESSION_LOGOFF``; delivered only after
  ``WTSRegisterSessionNotification(hwnd, NOTIFY_FOR_THIS_SESSION)`` on the main window;
* ``WM_POWERBROADCAST`` with ``PBT_APMSUSPEND`` (and the legacy ``PBT_APMQUERYSUSPEND``),
  which every top-level window receives before sleep.

**macOS** (the Objective-C runtime through ctypes -- no PyObjC; :class:`MacNotifications`):

* ``NSDistributedNotificationCenter``: ``com.apple.screenIsLocked`` and
  ``com.apple.screensaver.didstart``, registered with "deliver immediately" so they arrive
  while another application is in front;
* ``NSWorkspace``'s notification centre: ``NSWorkspaceWillSleepNotification`` (suspend),
  ``NSWorkspaceScreensDidSleepNotification`` and
  ``NSWorkspaceSessionDidResignActiveNotification`` (fast user switching) (lock).

What is tested where (docs/device-protection.md): the message parsing and the mapping of
each platform are pure functions (:func:`windows_message_event`, :func:`read_windows_msg`,
:func:`macos_notification_event`), unit-tested on Linux with constructed ``MSG`` structures
and notification names; the Windows filter itself runs in the tests on a real QApplication
with constructed messages, with only ``WTSRegisterSessionNotification`` replaced (the edge
this Linux machine lacks). The macOS runtime glue (:class:`MacNotifications.start`) has
not been run: no macOS machine here.
"""

from __future__ import annotations

import ctypes
import enum
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from PySide6.QtCore import SLOT, QAbstractNativeEventFilter, QCoreApplication, QObject, Slot

if TYPE_CHECKING:
    from PySide6.QtDBus import QDBusConnection

log = logging.getLogger(__name__)

LOGIN1 = "org.freedesktop.login1"
LOGIN1_PATH = "/org/freedesktop/login1"
SCREENSAVERS = (
    ("org.freedesktop.ScreenSaver", "/org/freedesktop/ScreenSaver", "org.freedesktop.ScreenSaver"),
    ("org.gnome.ScreenSaver", "/org/gnome/ScreenSaver", "org.gnome.ScreenSaver"),
)


def logind_session_path(session_id: str | None) -> str:
    """logind's object path of a session id ("" = any session). ``sd_bus_path_encode``:
    every character outside [A-Za-z0-9], and a leading digit, becomes ``_xx``."""
    if not session_id:
        return ""
    encoded = "".join(
        c if (c.isascii() and c.isalnum() and not (i == 0 and c.isdigit())) else f"_{ord(c):02x}"
        for i, c in enumerate(session_id))
    return f"{LOGIN1_PATH}/session/{encoded}"


class OsEvent(enum.Enum):
    LOCKED = "locked"  # the OS locked the screen or the session went away from this screen
    SUSPENDING = "suspending"  # the system is about to sleep


# -- Windows: constants from WinUser.h / WtsApi32.h ---------------------------------------------

WM_WTSSESSION_CHANGE = 0x02B1
WM_POWERBROADCAST = 0x0218
WTS_CONSOLE_DISCONNECT = 0x2
WTS_REMOTE_DISCONNECT = 0x4
WTS_SESSION_LOGOFF = 0x6
WTS_SESSION_LOCK = 0x7
PBT_APMQUERYSUSPEND = 0x0000
PBT_APMSUSPEND = 0x0004
NOTIFY_FOR_THIS_SESSION = 0
WINDOWS_EVENT_TYPES = (b"windows_generic_MSG", b"windows_dispatcher_MSG")

_WTS_LOCKING = frozenset({WTS_SESSION_LOCK, WTS_CONSOLE_DISCONNECT, WTS_REMOTE_DISCONNECT,
                          WTS_SESSION_LOGOFF})
_PBT_SUSPENDING = frozenset({PBT_APMSUSPEND, PBT_APMQUERYSUSPEND})


class MSG(ctypes.Structure):
    """WinUser.h ``MSG`` (the head Qt hands the filter a pointer to): HWND, UINT, WPARAM
    (UINT_PTR), LPARAM (LONG_PTR), DWORD time, POINT pt. The C types make ctypes lay it out
    as the platform's compiler does, 32- or 64-bit."""

    _fields_ = (("hwnd", ctypes.c_void_p), ("message", ctypes.c_uint),
                ("wParam", ctypes.c_size_t), ("lParam", ctypes.c_ssize_t),
                ("time", ctypes.c_uint32), ("pt_x", ctypes.c_int32), ("pt_y", ctypes.c_int32))


def windows_message_event(message: int, wparam: int) -> OsEvent | None:
    """What one window message means for the lock (None: nothing)."""
    if message == WM_WTSSESSION_CHANGE and wparam in _WTS_LOCKING:
        return OsEvent.LOCKED
    if message == WM_POWERBROADCAST and wparam in _PBT_SUSPENDING:
        return OsEvent.SUSPENDING
    return None


def read_windows_msg(address: int) -> tuple[int, int]:
    """``(message, wParam)`` of the ``MSG`` at ``address`` (0: none)."""
    if not address:
        return 0, 0
    msg = MSG.from_address(address)
    return int(msg.message), int(msg.wParam)


class WindowsMessageFilter(QAbstractNativeEventFilter):
    """Installed on the application: sees every native message Qt dispatches. Observes only;
    never consumes a message."""

    def __init__(self, on_event: Callable[[OsEvent], None]) -> None:
        super().__init__()
        self._on_event = on_event

    def nativeEventFilter(self, eventType, message) -> tuple[bool, int]:
        if bytes(eventType) in WINDOWS_EVENT_TYPES:
            event = windows_message_event(*read_windows_msg(int(message)))
            if event is not None:
                self._on_event(event)
        return False, 0


def register_wts_notification(hwnd: int) -> bool:
    """``WTSRegisterSessionNotification(hwnd, NOTIFY_FOR_THIS_SESSION)`` (Windows only)."""
    wtsapi32 = ctypes.WinDLL("wtsapi32")  # type: ignore[attr-defined]
    register = wtsapi32.WTSRegisterSessionNotification
    register.argtypes = (ctypes.c_void_p, ctypes.c_uint32)
    register.restype = ctypes.c_int
    return bool(register(hwnd, NOTIFY_FOR_THIS_SESSION))


# -- macOS ----------------------------------------------------------------------------------------

MAC_DISTRIBUTED = ("com.apple.screenIsLocked", "com.apple.screensaver.didstart")
MAC_WORKSPACE = ("NSWorkspaceWillSleepNotification", "NSWorkspaceScreensDidSleepNotification",
                 "NSWorkspaceSessionDidResignActiveNotification")
_MAC_EVENTS = {
    "com.apple.screenIsLocked": OsEvent.LOCKED,
    "com.apple.screensaver.didstart": OsEvent.LOCKED,
    "NSWorkspaceScreensDidSleepNotification": OsEvent.LOCKED,
    "NSWorkspaceSessionDidResignActiveNotification": OsEvent.LOCKED,
    "NSWorkspaceWillSleepNotification": OsEvent.SUSPENDING,
}
NS_DELIVER_IMMEDIATELY = 4  # NSNotificationSuspensionBehaviorDeliverImmediately


def macos_notification_event(name: str) -> OsEvent | None:
    return _MAC_EVENTS.get(name)


class MacNotifications:
    """Observes the macOS notifications above through the Objective-C runtime (ctypes): a
    small NSObject subclass whose one method forwards the notification's name here.

    One observer class per process; each started instance adds its callback to
    ``_targets``. Not run on this project's Linux machines (see the module docstring).
    """

    _imp: ClassVar[object] = None  # the C callback; must outlive every observer
    _targets: ClassVar[list[Callable[[OsEvent], None]]] = []

    def __init__(self, on_event: Callable[[OsEvent], None]) -> None:
        self._on_event = on_event

    def start(self) -> list[str]:
        import ctypes.util

        if sys.platform != "darwin":
            raise OSError("the macOS notification centres exist only on macOS")
        c_void_p, c_char_p = ctypes.c_void_p, ctypes.c_char_p
        libraries = {name: ctypes.util.find_library(name)
                     for name in ("objc", "Foundation", "AppKit")}
        missing = [name for name, path in libraries.items() if not path]
        if missing:
            raise OSError(f"not found: {', '.join(missing)}")
        objc = ctypes.cdll.LoadLibrary(libraries["objc"])
        for framework in ("Foundation", "AppKit"):
            ctypes.cdll.LoadLibrary(libraries[framework])
        objc.objc_getClass.restype, objc.objc_getClass.argtypes = c_void_p, (c_char_p,)
        objc.sel_registerName.restype, objc.sel_registerName.argtypes = c_void_p, (c_char_p,)
        objc.objc_allocateClassPair.restype = c_void_p
        objc.objc_allocateClassPair.argtypes = (c_void_p, c_char_p, ctypes.c_size_t)
        objc.objc_registerClassPair.restype = None
        objc.objc_registerClassPair.argtypes = (c_void_p,)
        objc.class_addMethod.restype = ctypes.c_bool
        objc.class_addMethod.argtypes = (c_void_p, c_void_p, c_void_p, c_char_p)

        def send(restype, *argtypes):
            # objc_msgSend cast to the exact prototype (required on arm64: not variadic).
            return ctypes.CFUNCTYPE(restype, c_void_p, c_void_p, *argtypes)(
                ("objc_msgSend", objc))

        sel, cls = objc.sel_registerName, objc.objc_getClass
        get_object = send(c_void_p)
        get_text = send(c_char_p)
        nsstring = send(c_void_p, c_char_p)

        def notified(_self, _cmd, notification) -> None:
            try:
                raw = get_text(get_object(notification, sel(b"name")), sel(b"UTF8String"))
                event = macos_notification_event((raw or b"").decode("utf-8", "replace"))
                if event is not None:
                    for target in list(MacNotifications._targets):
                        target(event)
            except Exception:  # never raise into the Objective-C runtime
                log.exception("macOS lock notification", extra={"event": "os_lock_signal"})

        name = b"SafeConsultLockObserver"
        observer_class = cls(name)
        if not observer_class:
            imp_type = ctypes.CFUNCTYPE(None, c_void_p, c_void_p, c_void_p)
            MacNotifications._imp = imp_type(notified)
            observer_class = objc.objc_allocateClassPair(cls(b"NSObject"), name, 0)
            objc.class_addMethod(observer_class, sel(b"safeConsultNotified:"),
                                 ctypes.cast(MacNotifications._imp, c_void_p), b"v@:@")
            objc.objc_registerClassPair(observer_class)
        observer = get_object(get_object(observer_class, sel(b"alloc")), sel(b"init"))
        method = sel(b"safeConsultNotified:")
        wired: list[str] = []

        def text(value: str) -> int:
            return nsstring(cls(b"NSString"), sel(b"stringWithUTF8String:"), value.encode())

        distributed = get_object(cls(b"NSDistributedNotificationCenter"), sel(b"defaultCenter"))
        add_immediate = send(None, c_void_p, c_void_p, c_void_p, c_void_p, ctypes.c_ulong)
        for note in MAC_DISTRIBUTED:
            add_immediate(distributed, sel(b"addObserver:selector:name:object:suspensionBehavior:"),
                          observer, method, text(note), None, NS_DELIVER_IMMEDIATELY)
            wired.append(note)
        workspace = get_object(cls(b"NSWorkspace"), sel(b"sharedWorkspace"))
        centre = get_object(workspace, sel(b"notificationCenter"))
        add = send(None, c_void_p, c_void_p, c_void_p, c_void_p)
        for note in MAC_WORKSPACE:
            add(centre, sel(b"addObserver:selector:name:object:"), observer, method, text(note),
                None)
            wired.append(note)
        MacNotifications._targets.append(self._on_event)
        return wired


_VALID_PATH = re.compile(r"^(/[A-Za-z0-9_]+)+$")


class OsLockWatcher(QObject):
    """Calls ``os_locked()`` when the OS locks the session or starts its screen saver, and
    ``suspending()`` before the system sleeps."""

    def __init__(self, os_locked: Callable[[], None], suspending: Callable[[], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._os_locked = os_locked
        self._suspending = suspending
        self.connected: list[str] = []  # what was wired, for the log and the tests

    def start(self, *, system_bus: QDBusConnection | None = None,
              session_bus: QDBusConnection | None = None, platform: str = sys.platform,
              register_session: Callable[[int], bool] | None = None) -> list[str]:
        """Subscribe to what this platform offers; quietly less where it offers less.

        ``platform`` and ``register_session`` (``WTSRegisterSessionNotification``) are for
        the tests: the Windows path runs on Linux with only the registration replaced.
        """
        try:
            if platform.startswith("win"):
                self._start_windows(register_session or register_wts_notification)
            elif platform == "darwin":
                self._start_macos()
            else:
                self._start_dbus(system_bus, session_bus)
        except Exception as exc:  # a missing API must not stop the app: the idle lock holds
            log.warning("OS lock signals unavailable", extra={
                "event": "os_lock_signals", "reason_code": exc.__class__.__name__})
        log.info("OS lock signals", extra={"event": "os_lock_signals",
                                           "count": len(self.connected)})
        return self.connected

    def _start_dbus(self, system_bus: QDBusConnection | None,
                    session_bus: QDBusConnection | None) -> None:
        try:
            from PySide6.QtDBus import QDBusConnection
        except ImportError:  # a Qt build without D-Bus
            return
        system = system_bus if system_bus is not None else QDBusConnection.systemBus()
        session = session_bus if session_bus is not None else QDBusConnection.sessionBus()
        if system.isConnected():
            self._connect(system, LOGIN1, LOGIN1_PATH, f"{LOGIN1}.Manager", "PrepareForSleep",
                          SLOT("prepare_for_sleep(bool)"))
            path = logind_session_path(os.environ.get("XDG_SESSION_ID"))
            if path and not _VALID_PATH.match(path):
                path = ""
            self._connect(system, LOGIN1, path, f"{LOGIN1}.Session", "Lock",
                          SLOT("session_lock()"))
        if session.isConnected():
            for service, path, interface in SCREENSAVERS:
                self._connect(session, service, path, interface, "ActiveChanged",
                              SLOT("screensaver_active(bool)"))

    def _start_windows(self, register_session: Callable[[int], bool]) -> None:
        app = QCoreApplication.instance()
        if app is None:
            return
        self.native_filter = WindowsMessageFilter(self.os_event)
        app.installNativeEventFilter(self.native_filter)
        self.connected.append("WM_POWERBROADCAST")
        window = self.parent()
        # Session changes go only to a window registered for them: the main window.
        if window is not None and hasattr(window, "winId"):
            if register_session(int(window.window().winId())):
                self.connected.append("WM_WTSSESSION_CHANGE")
            else:
                log.warning("WTSRegisterSessionNotification failed",
                            extra={"event": "os_lock_signals", "reason_code": "wts_register"})

    def _start_macos(self) -> None:
        self.mac = MacNotifications(self.os_event)
        self.connected.extend(self.mac.start())

    def stop(self) -> None:
        """Remove the Windows filter (the D-Bus and macOS subscriptions end with the
        process; the window they serve lives as long)."""
        native = getattr(self, "native_filter", None)
        app = QCoreApplication.instance()
        if native is not None and app is not None:
            app.removeNativeEventFilter(native)
            self.native_filter = None

    def os_event(self, event: OsEvent) -> None:
        if event is OsEvent.SUSPENDING:
            self._suspending()
        else:
            self._os_locked()

    def _connect(self, bus: QDBusConnection, service: str, path: str, interface: str,
                 name: str, slot: str) -> None:
        # The sender is matched by well-known name; an empty path matches any object.
        if bus.connect(service, path, interface, name, self, slot):
            self.connected.append(f"{interface}.{name}")

    # -- slots (also called directly by the tests) -------------------------------------------

    @Slot(bool)
    def prepare_for_sleep(self, sleeping: bool) -> None:
        if sleeping:
            self._suspending()

    @Slot()
    def session_lock(self) -> None:
        self._os_locked()

    @Slot(bool)
    def screensaver_active(self, active: bool) -> None:
        if active:
            self._os_locked()
