"""A closable one-line notice above the workspace's views, for this sign-in: information
(an update ready) or a warning (an update refused, the machine policy refused). No patient
data is ever shown in one."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

_WARNING = "#a3241a"


class NoticeBanner(QFrame):
    dismissed = Signal()

    def __init__(self, object_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self.kind = ""
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.close_button = QToolButton()
        self.close_button.setText("×")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self._close)
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 6, 6, 6)
        row.addWidget(self.label, 1)
        row.addWidget(self.close_button)
        self.hide()

    def show_notice(self, kind: str, text: str, *, warning: bool) -> None:
        self.kind = kind
        self.label.setText(text)
        accent = _WARNING if warning else "palette(highlight)"
        self.setStyleSheet(f"QFrame#{self.objectName()} {{ border: 1px solid {accent}; "
                           f"border-left: 6px solid {accent}; border-radius: 4px; }}")
        self.close_button.setToolTip(self.tr("Close"))
        self.show()

    def clear(self) -> None:
        self.kind = ""
        self.hide()

    def _close(self) -> None:
        self.hide()
        self.dismissed.emit()
