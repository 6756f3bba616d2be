"""A view that says plainly what will appear here and what to do meanwhile.

Feature views (consults, chat, images, admin) start as these and are replaced by their owners.
No patient data: these texts are the same for every user.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class PlaceholderView(QWidget):
    """Subclasses give their (translated) texts in :meth:`texts`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.heading = QLabel()
        self.heading.setProperty("role", "heading")
        self.body = QLabel()
        self.body.setWordWrap(True)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setProperty("role", "subtle")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(40, 36, 40, 36)
        layout.setSpacing(14)
        for label in (self.heading, self.body, self.hint):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
            layout.addWidget(label)
        layout.addStretch(1)
        self.retranslate()

    @staticmethod
    def title() -> str:
        """The name of this area in the navigation."""
        raise NotImplementedError

    def texts(self) -> tuple[str, str, str]:
        """(heading, what the user will find here, what to do now)."""
        raise NotImplementedError

    def retranslate(self) -> None:
        heading, body, hint = self.texts()
        self.heading.setText(heading)
        self.body.setText(body)
        self.hint.setText(hint)
        self.setAccessibleName(self.title())

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)
