"""The warning shown when someone in the room has a new or changed device.

Such a device receives nothing (the crypto machine withholds room keys from it) until the
user decides: **verify** it (compare emoji with its owner), **accept** it after reading its
fingerprint, or **block** it. Writing in the room waits for that decision, so nobody sends a
message believing everyone's devices can read it -- or that nobody else can.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.ui.chat.members import DeviceEntry
from app.ui.chat.texts import fingerprint, short_device
from app.ui.i18n import fill


class DeviceWarningBanner(QFrame):
    verifyRequested = Signal(object)  # DeviceEntry
    acceptRequested = Signal(object)
    blockRequested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("deviceWarning")
        self.setStyleSheet(
            "QFrame#deviceWarning { background: #8a4b00; }"
            "QFrame#deviceWarning QLabel { color: #ffffff; }"
            "QLabel#deviceWarningTitle { font-weight: 600; font-size: 13pt; }"
            "QFrame#deviceWarning QPushButton { background: #ffffff; color: #5a3100;"
            " font-weight: 600; }")
        self.title = QLabel()
        self.title.setObjectName("deviceWarningTitle")
        self.title.setWordWrap(True)
        self.body = QLabel()
        self.body.setWordWrap(True)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verify = QPushButton()
        self.verify.setObjectName("warningVerify")
        self.accept = QPushButton()
        self.accept.setObjectName("warningAccept")
        self.block = QPushButton()
        self.block.setObjectName("warningBlock")
        self.verify.clicked.connect(lambda: self._emit(self.verifyRequested))
        self.accept.clicked.connect(lambda: self._emit(self.acceptRequested))
        self.block.clicked.connect(lambda: self._emit(self.blockRequested))
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.title)
        text.addWidget(self.body)
        row = QHBoxLayout(self)
        row.setContentsMargins(16, 10, 16, 10)
        row.setSpacing(8)
        row.addLayout(text, 1)
        for button in (self.verify, self.accept, self.block):
            row.addWidget(button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.devices: list[tuple[DeviceEntry, str]] = []
        self.hide()
        self.retranslate()

    def set_devices(self, devices: list[tuple[DeviceEntry, str]]) -> None:
        """(device, its owner's name) for every flagged device; empty hides the banner."""
        self.devices = devices
        self.setVisible(bool(devices))
        self._fill()

    @property
    def current(self) -> DeviceEntry | None:
        return self.devices[0][0] if self.devices else None

    def _emit(self, signal: Signal) -> None:
        if self.current is not None:
            signal.emit(self.current)  # type: ignore[attr-defined]

    def _fill(self) -> None:
        if not self.devices:
            return
        translate = QCoreApplication.translate
        device, owner = self.devices[0]
        self.title.setText(fill(translate(
            "DeviceWarning", "%1 has a new or changed device (%2)"), owner,
            short_device(device.device_id)))
        body = fill(translate(
            "DeviceWarning", "It receives no messages until you decide. Verify it with %1 "
            "(best), or accept it after checking its fingerprint with them: %2"),
            owner, fingerprint(device.ed25519))
        more = len(self.devices) - 1
        if more:
            body += " " + fill(translate("DeviceWarning", "(%1 more after this one)"), str(more))
        self.body.setText(body)
        self.setAccessibleDescription(self.title.text() + ". " + body)

    def retranslate(self) -> None:
        translate = QCoreApplication.translate
        self.verify.setText(translate("DeviceWarning", "Verify…"))
        self.accept.setText(translate("DeviceWarning", "Accept"))
        self.accept.setToolTip(translate(
            "DeviceWarning", "Trust this device without comparing emoji (you checked its "
            "fingerprint)"))
        self.block.setText(translate("DeviceWarning", "Block"))
        self.block.setToolTip(translate("DeviceWarning", "Never send messages to this device"))
        self._fill()
