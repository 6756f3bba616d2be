"""Status bar indicators: connection, device and time left before auto-lock.

They observe :class:`~app.services.app_state.AppState` and never poll. A certificate problem
and a revoked device are shown as alarms (not as a plain "offline"): both mean "call IT".
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from app.services.app_state import AppState, ConnectionState, DeviceState
from app.ui.i18n import fill
from app.ui.observe import observe


def connection_text(state: ConnectionState) -> str:
    translate = QCoreApplication.translate
    return {
        ConnectionState.OFFLINE: translate("StatusIndicators", "Offline"),
        ConnectionState.CONNECTING: translate("StatusIndicators", "Connecting…"),
        ConnectionState.ONLINE: translate("StatusIndicators", "Online"),
        ConnectionState.CERTIFICATE_ERROR: translate(
            "StatusIndicators", "Server certificate not trusted: contact IT"),
    }[state]


def device_text(state: DeviceState) -> str:
    translate = QCoreApplication.translate
    return {
        DeviceState.UNENROLLED: translate("StatusIndicators", "Device not enrolled"),
        DeviceState.PENDING: translate("StatusIndicators", "Device awaiting IT approval"),
        DeviceState.ACTIVE: translate("StatusIndicators", "Device approved"),
        DeviceState.REVOKED: translate("StatusIndicators", "Device revoked: contact IT"),
        DeviceState.WIPED: translate("StatusIndicators", "SafeConsult data removed by IT"),
    }[state]


def lock_text(seconds: int | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(max(0, seconds), 60)
    return fill(QCoreApplication.translate("StatusIndicators", "Locks in %1"),
                f"{minutes}:{secs:02d}")


def _state_tag(bad: bool, ok: bool) -> str:
    return "bad" if bad else "ok" if ok else ""


class StatusIndicators:
    """Adds three labels to ``status_bar`` and keeps them in step with ``state``.

    The countdown turns to an alarm in the last ``warning_s`` seconds (the policy's lock
    warning). The owning window calls :meth:`retranslate` on a language change.
    """

    def __init__(self, state: AppState, status_bar: QStatusBar, *, warning_s: int = 30,
                 observe_state: bool = True) -> None:
        self._state = state
        self._warning_s = warning_s
        self.connection = QLabel()
        self.device = QLabel()
        self.lock = QLabel()
        for label, name in ((self.connection, "connectionStatus"),
                            (self.device, "deviceStatus"), (self.lock, "lockCountdown")):
            label.setObjectName(name)
            status_bar.addPermanentWidget(label)
        self._observing = False
        if observe_state:
            self.observe_state()
        self.retranslate()

    def observe_state(self) -> None:
        """Follow the state from now on (idempotent; the window may call it after painting)."""
        if self._observing:
            return
        self._observing = True
        state = self._state
        observe(state.events.connection, self._show_connection, self.connection)
        observe(state.events.device, self._show_device, self.device)
        observe(state.events.lock_seconds_left, self._show_lock, self.lock)
        self.retranslate()

    def retranslate(self) -> None:
        self._show_connection(self._state.connection)
        self._show_device(self._state.device)
        self._show_lock(self._state.lock_seconds_left)

    def _show_connection(self, state: ConnectionState) -> None:
        text = connection_text(state)
        self.connection.setText(text)
        self.connection.setAccessibleName(text)
        _restyle(self.connection, _state_tag(
            state == ConnectionState.CERTIFICATE_ERROR, state == ConnectionState.ONLINE))

    def _show_device(self, state: DeviceState) -> None:
        text = device_text(state)
        self.device.setText(text)
        self.device.setAccessibleName(text)
        _restyle(self.device, _state_tag(
            state in (DeviceState.REVOKED, DeviceState.WIPED), state == DeviceState.ACTIVE))

    def _show_lock(self, seconds: int | None) -> None:
        text = lock_text(seconds)
        self.lock.setText(text)
        self.lock.setAccessibleName(text)
        self.lock.setVisible(seconds is not None)
        _restyle(self.lock, _state_tag(seconds is not None and seconds <= self._warning_s, False))


def _restyle(widget: QWidget, state: str) -> None:
    """Dynamic properties only restyle after a re-polish. An unset property and "" look the
    same (no rule matches either): no re-polish then, which keeps the style's Python wrapper
    -- and its enums -- out of the start-up (docs/performance.md)."""
    if (widget.property("state") or "") != state:
        widget.setProperty("state", state)
        widget.style().unpolish(widget)
        widget.style().polish(widget)
