"""The notification area: where errors from background work are told to the user.

Messages here are already user-safe (see ``app.ui.asyncbridge.user_message``). A message stays
until dismissed or replaced: an error that vanishes before a busy clinician looks up is an
error nobody saw.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


class NotificationArea(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notification")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dismiss = QPushButton()
        self.dismiss.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 8, 6)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.dismiss)
        self.hide()
        self.retranslate()

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        # Screen readers announce the new text through the accessible description.
        self.setAccessibleDescription(text)
        self.show()

    def clear(self) -> None:
        self.message.clear()
        self.setAccessibleDescription("")
        self.hide()

    def retranslate(self) -> None:
        self.dismiss.setText(self.tr("Dismiss"))
        self.setAccessibleName(self.tr("Notification"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)
