"""The persistent "Shared device" banner shown when policy puts the workstation in kiosk mode.

It cannot be dismissed: on a shared cart, everyone who walks up must see that closing the
window ends their session and that nothing stays on this computer.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


class SharedDeviceBanner(QFrame):
    """Also carries *Switch user* while someone is signed in: the next person at the cart
    ends the previous session completely (kiosk clean-up included) and gets an empty form."""

    switchUserRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sharedDeviceBanner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.switch_user = QPushButton()
        self.switch_user.setObjectName("bannerSwitchUser")
        self.switch_user.clicked.connect(self.switchUserRequested)
        self.switch_user.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 8, 16, 8)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.switch_user)
        self.retranslate()

    def set_signed_in(self, signed_in: bool) -> None:
        self.switch_user.setVisible(signed_in)

    def retranslate(self) -> None:
        self.label.setText(self.tr(
            "Shared device: you are signed out when this window closes, "
            "and nothing is kept on this computer."
        ))
        self.setAccessibleName(self.tr("Shared device"))
        self.switch_user.setText(self.tr("Switch user"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)


class EmergencyAccessBanner(QFrame):
    """Shown while the user holds emergency (break-glass) access: "Emergency access active
    until HH:MM -- reviewed afterwards". It cannot be dismissed; it hides itself when the
    last grant ends (a timer set to the earliest expiry) and follows
    :meth:`set_grants`. No patient data: times only."""

    expired = Signal()  # a grant's time is up: the owner drops it and calls set_grants again

    def __init__(self, parent: QWidget | None = None) -> None:
        from PySide6.QtCore import QTimer

        super().__init__(parent)
        self.setObjectName("emergencyAccessBanner")
        self.setStyleSheet(
            "QFrame#emergencyAccessBanner { background: #a3241a; }"
            "QFrame#emergencyAccessBanner QLabel { color: #ffffff; font-weight: 600; }")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 8, 16, 8)
        layout.addWidget(self.label, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        # A coarse timer may fire up to 5 % early; _tick re-arms for what is left anyway.
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._grants: dict[str, int] = {}
        self._now_ms = _wall_clock_ms
        self.hide()

    def set_grants(self, grants: dict[str, int], *, now_ms: int | None = None) -> None:
        """Room id -> expiry (ms since the epoch) of each active emergency grant."""
        now = self._now_ms() if now_ms is None else now_ms
        self._grants = {room: expiry for room, expiry in grants.items() if expiry > now}
        self._timer.stop()
        if self._grants:
            # Wake at the earliest end (+ a little, so the owner sees it as past).
            self._timer.start(max(0, min(self._grants.values()) - now) + 50)
        self.setVisible(bool(self._grants))
        self.retranslate()

    def _tick(self) -> None:
        """Drop the grants whose time is up (hiding the banner after the last), re-arm for
        the others, and tell the owner."""
        before = set(self._grants)
        self.set_grants(self._grants)
        if set(self._grants) != before:
            self.expired.emit()

    def until_ms(self) -> int | None:
        return max(self._grants.values()) if self._grants else None

    def retranslate(self) -> None:
        from app.ui.audit.texts import clock_time
        from app.ui.i18n import fill

        until = self.until_ms()
        if until is None:
            self.label.clear()
            return
        text = fill(self.tr("Emergency access active until %1 — reviewed afterwards"),
                    clock_time(until))
        if len(self._grants) > 1:
            text += " " + fill(self.tr("(%1 consults)"), str(len(self._grants)))
        self.label.setText(text)
        self.setAccessibleName(self.tr("Emergency access"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)


def _wall_clock_ms() -> int:
    import time

    return int(time.time() * 1000)
