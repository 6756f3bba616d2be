"""What the window shows after IT's wipe (or a revocation found at sign-in): one plain
message, the whole window, no patient data and nothing to click but the menus.

The data is gone already (app.services.session wipes before it publishes WIPED); the
message only says so and where to turn. A new start of SafeConsult shows the sign-in screen
again -- signing in then enrolls the workstation afresh, which IT must approve.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget


class WipedView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("wipedView")
        self.heading = QLabel()
        self.heading.setProperty("role", "heading")
        self.heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message = QLabel()
        self.message.setObjectName("wipedMessage")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setFixedWidth(620)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.heading, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addSpacing(16)
        row = QHBoxLayout()  # centred by stretches: an aligned item would lose its 2nd line
        row.addStretch(1)
        row.addWidget(self.message)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)
        self.retranslate()

    def retranslate(self) -> None:
        self.heading.setText(self.tr("SafeConsult data removed"))
        self.message.setText(self.tr(
            "This workstation's SafeConsult data was removed on IT's order. "
            "Contact IT to use it again."))
        self.setAccessibleName(self.message.text())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)
