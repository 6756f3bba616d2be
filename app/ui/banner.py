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
