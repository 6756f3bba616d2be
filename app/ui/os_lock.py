"""Lock SafeConsult when the operating system locks the screen or goes to sleep.

Linux (D-Bus, through QtDBus from PySide6-Essentials):

* system bus, ``org.freedesktop.login1.Manager.PrepareForSleep(true)`` -- suspend/hibernate;
* system bus, ``org.freedesktop.login1.Session.Lock`` -- ``loginctl lock-session`` and the
  desktops that lock through logind; the object path is this process's session
  (``$XDG_SESSION_ID``), or any session when that is unknown (locking too often is safe);
* session bus, ``org.freedesktop.ScreenSaver.ActiveChanged(true)`` (KDE, Xfce, ...) and
  ``org.gnome.ScreenSaver.ActiveChanged(true)`` (GNOME).

Each lands in the auto-lock machine's ``os_session_locked()`` / ``suspended()``: LOCKED at
once, PHI hidden before the OS shows its own lock screen or the lid closes. A bus that is not
there (a container, a minimal desktop, no D-Bus at all) is skipped quietly: the idle timer
still locks.

Not wired yet:

* Windows: ``WTSRegisterSessionNotification`` and ``WM_WTSSESSION_CHANGE`` with
  ``WTS_SESSION_LOCK`` (a native event filter on the main window), and
  ``WM_POWERBROADCAST`` / ``PBT_APMSUSPEND`` for sleep.
* macOS: the distributed notification ``com.apple.screenIsLocked`` and
  ``NSWorkspaceWillSleepNotification`` (needs PyObjC or a small native helper).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import SLOT, QObject, Slot

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
              session_bus: QDBusConnection | None = None) -> list[str]:
        """Subscribe to what the buses offer; quietly nothing where there is no bus."""
        try:
            from PySide6.QtDBus import QDBusConnection
        except ImportError:  # a Qt build without D-Bus (Windows, macOS)
            return self.connected
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
        log.info("OS lock signals", extra={"event": "os_lock_signals",
                                           "count": len(self.connected)})
        return self.connected

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
