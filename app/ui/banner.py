"""The persistent "Shared device" banner shown when policy puts the workstation in kiosk mode.

It cannot be dismissed: on a shared cart, everyone who walks up must see that closing the
window ends their session and that nothing stays on this computer.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget


class SharedDeviceBanner(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sharedDeviceBanner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 8, 16, 8)
        layout.addWidget(self.label)
        self.retranslate()

    def retranslate(self) -> None:
        self.label.setText(self.tr(
            "Shared device: you are signed out when this window closes, "
            "and nothing is kept on this computer."
        ))
        self.setAccessibleName(self.tr("Shared device"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)
